-- Accept the store's current epoch after a loss: clients stop refusing and adopt it.
-- KEYS: epoch, lost flag, accepted. Returns the accepted epoch ('' when the store has none).
local current = redis.call('GET', KEYS[1])
if not current then
  return ''
end
redis.call('SET', KEYS[3], current)
redis.call('DEL', KEYS[2])
return current
