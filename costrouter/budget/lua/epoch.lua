-- The store's epoch: a random id written at first use, gone when the server loses its data.
-- KEYS: epoch, lost flag, accepted (one hash tag of their own: {prefix:epoch}; never a budget's).
-- ARGV: candidate (a fresh random id), known (the epoch this client saw before; '' for none).
-- An epoch other than the known one means the data the client counted on is gone: the lost
-- flag names the new epoch until an operator accepts it (`costrouter budget accept-loss`).
-- Returns {current epoch, 1 when it is lost and not accepted else 0}.
local epoch, lost, accepted = KEYS[1], KEYS[2], KEYS[3]
local candidate, known = ARGV[1], ARGV[2]

redis.call('SET', epoch, candidate, 'NX')
local current = redis.call('GET', epoch)
local ok = redis.call('GET', accepted)
if known ~= '' and known ~= current and ok ~= current then
  redis.call('SET', lost, current)
end
local flag = redis.call('GET', lost)
if flag == current and ok ~= current then
  return {current, 1}
end
return {current, 0}
