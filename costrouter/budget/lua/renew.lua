-- Keep the hold of a live call: push its expiry to now + hold ttl. Idempotent.
-- A hold that is no longer 'held' (settled, released, swept out as expired, reset) is not
-- revived. One that is due but not yet swept is still counted in `held`, so renewing it
-- is safe. The record's due moves; its hold queue entries before this one are dropped when popped.
-- KEYS: the records hash. ARGV: call id, hold ttl, record ttl.
-- Returns 1 when the hold was renewed, else 0.
local rkey = KEYS[1]
local call_id, hold_ttl, record_ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

local v = redis.call('HMGET', rkey, 'c:' .. call_id, 'hq', 't')
local r = v[1] and decode(v[1])
if not r or r[1] ~= 'held' then
  return 0
end
local now, t = server_now()
local due = due_at(t, hold_ttl)
r[12] = due
local w = {'c:' .. call_id, encode(r), 'hq', false}
w[4] = push_text(v[2], 'h', due, call_id, w)
write_records(rkey, w, v[3], now, record_ttl)
return 1
