-- Add one staged 0.2 budget instance (or top index, or token ratios) to the new layout, once:
-- `costrouter budget migrate` computes the operations (amounts already converted to the new
-- unit); the marker key makes a second run of the same staged snapshot change nothing.
-- KEYS: the marker, then the keys written (one hash tag).
-- ARGV: marker ttl (seconds), then operations of 4 arguments each: name, key index (into KEYS),
-- and two operands ('' when unused):
--   hsetnx  field value   a field kept if the new layout has it already
--   hadd    field amount  a counter added to (saturated, see sat)
--   hmin    field value   the smaller of the stored and given number
--   zincr   amount member a zset score added to
--   record  id record     a call record (the key: the instance's records hash; the record
--                         with its due), queued in its hold or retention queue: added when the
--                         new layout has none; when the new one is still 'held' and this one is
--                         not (a 0.2 process settled the call after an earlier run copied its
--                         hold), it replaces it and the copied hold is dropped
--   expire  ms            the key expires at ms (epoch milliseconds) unless it expires later;
--                         a key that lived before this script and never expires is left so
-- Returns 1 when applied, 0 when the marker shows it was applied already.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local existed = {}
for i = 2, #KEYS do
  existed[i] = redis.call('EXISTS', KEYS[i]) == 1
end
local queue, queue_text, push = queue_tools()
local queues = {}
for i = 2, #ARGV, 4 do
  local op, key, a, b = ARGV[i], KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2], ARGV[i + 3]
  if op == 'record' then
    local q = queues[key]
    if not q then
      local v = redis.call('HMGET', key, 'hq', 'rq', 't')
      q = {queue(v[1]), queue(v[2]), v[3]}
      queues[key] = q
    end
    local current = redis.call('HGET', key, 'c:' .. a)
    local replace = not current
    if current then
      local r = decode(current)
      if r[1] == 'held' and string.sub(b, 1, 5) ~= 'held|' then
        drop_hold(string.sub(key, 1, #key - 2), r)
        replace = true
      end
    end
    if replace then
      local r, w = decode(b), {'c:' .. a, b}
      if r[1] == 'held' then
        push(q[1], 'h', r[12], a, w)
      else
        push(q[2], 'r', r[12], a, w)
      end
      redis.call('HSET', key, unpack(w))
    end
  elseif op == 'hsetnx' then
    redis.call('HSETNX', key, a, b)
  elseif op == 'hadd' then
    redis.call('HSET', key, a, int(num(redis.call('HGET', key, a)) + tonumber(b)))
  elseif op == 'hmin' then
    local stored = tonumber(redis.call('HGET', key, a))
    if not stored or tonumber(b) < stored then
      redis.call('HSET', key, a, b)
    end
  elseif op == 'zincr' then
    redis.call('ZINCRBY', key, a, b)
  elseif op == 'expire' then
    local at = redis.call('PEXPIRETIME', key)
    if (at == -1 and not existed[tonumber(ARGV[i + 1])]) or (at >= 0 and at < tonumber(a)) then
      redis.call('PEXPIREAT', key, a)
    end
  else
    return redis.error_reply('migrate_apply: unknown operation ' .. tostring(op))
  end
end
-- The queues' state; a records hash not stamped yet gets its TTL pushed by its next call.
for key, q in pairs(queues) do
  redis.call('HSET', key, 'hq', queue_text(q[1]), 'rq', queue_text(q[2]), 't', q[3] or '0')
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return 1
