-- Keep the hold of a live call: push its expiry to now + hold ttl. Idempotent.
-- A hold that is no longer 'held' (settled, released, swept out as expired, reset) is not
-- revived. One that is due but not yet swept is still counted in `held`, so renewing it
-- is safe.
-- KEYS: calls, expiry index. ARGV: call id, hold ttl, record ttl.
-- Returns 1 when the hold was renewed, else 0.
local calls, index = KEYS[1], KEYS[2]
local call_id, hold_ttl, record_ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

local raw = redis.call('HGET', calls, call_id)
if not raw or decode(raw)[1] ~= 'held' then
  return 0
end
local _, t = server_now()
redis.call('ZADD', index, score_at(t, hold_ttl), call_id)
touch(calls, index, int(record_ttl + 1))
return 1
