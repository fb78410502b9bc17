-- Clear the current window of a budget instance: spend, holds and alert flags.
-- Live holds of that window become 'expired': a later settle still charges, once.
-- KEYS: calls, expiry index. ARGV: base, window kind, window seconds, record ttl.
-- Returns the window id.
local calls, index, base = KEYS[1], KEYS[2], ARGV[1]
local kind, seconds, record_ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local now = server_now()
local window = window_of(kind, seconds, now)
redis.call('DEL', base .. ':w:' .. window)
local entries = redis.call('HGETALL', calls)
for i = 1, #entries, 2 do
  local r = decode(entries[i + 1])
  if r[1] == 'held' and r[3] == window then
    r[1] = 'expired'
    redis.call('HSET', calls, entries[i], encode(r))
    redis.call('ZADD', index, now + record_ttl, entries[i])
  end
end
return window
