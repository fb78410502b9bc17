-- Check and hold an amount for one call.
-- KEYS: calls, expiry index. ARGV: base, call id, amount, limit, enforce (1/0),
-- window kind, window seconds, hold ttl, record ttl.
-- Returns {granted, spent before, held before, window id, replayed}.
local calls, index, base = KEYS[1], KEYS[2], ARGV[1]
local call_id, amount, limit, enforce = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1'
local kind, seconds = ARGV[6], tonumber(ARGV[7])
local hold_ttl, record_ttl = tonumber(ARGV[8]), tonumber(ARGV[9])

local now = server_now()
sweep(calls, index, base, now, record_ttl)

local raw = redis.call('HGET', calls, call_id)
if raw then
  local r = decode(raw)
  return {tonumber(r[5]), tonumber(r[6]), tonumber(r[7]), r[3], 1}
end

local window, window_end = window_of(kind, seconds, now)
local expiry = 0
if window_end > 0 then expiry = window_end + hold_ttl end
local wkey = base .. ':w:' .. window
local spent, call_held, holds, lease_held = window_state(index, wkey, now, record_ttl, false)
local held = call_held + lease_held
local granted = spent + held + amount <= limit

local record
if granted or not enforce then
  redis.call('HSET', wkey, 'held', int(call_held + amount), 'holds', int(holds + 1))
  expire_window(wkey, expiry)
  record = {'held', ARGV[3], window, int(expiry), granted and '1' or '0', int(spent), int(held), '0', '0', '0', ''}
  redis.call('ZADD', index, now + hold_ttl, call_id)
else
  record = {'refused', '0', window, int(expiry), '0', int(spent), int(held), '0', '0', '0', ''}
  redis.call('ZADD', index, now + record_ttl, call_id)
end
redis.call('HSET', calls, call_id, encode(record))
touch(calls, index, record_ttl)
return {granted and 1 or 0, spent, held, window, 0}
