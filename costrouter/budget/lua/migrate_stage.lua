-- Set aside the keys of one budget instance (or one top index, or the token ratios) of the
-- unversioned 0.2 layout for `costrouter budget migrate`: each key is renamed under the same hash
-- tag, so a 0.2 process that still writes starts fresh keys (carried over by a later run) and
-- never changes what this run copies.
-- KEYS: the keys to set aside. ARGV: the staged name of each key, in order.
-- Returns the staged names of the keys that existed.
local staged = {}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('RENAME', key, ARGV[i])
    staged[#staged + 1] = ARGV[i]
  end
end
return staged
