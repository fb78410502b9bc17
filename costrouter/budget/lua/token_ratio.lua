-- Teach one deployment's prompt-token ratio (provider's prompt_tokens / costrouter's count).
-- KEYS[1]  {prefix:token-ratios}  hash  deployment id -> ratio
-- ARGV     deployment id, observed ratio, decay
-- Upward at once; a lower observation pulls the ratio `decay` of the way down (the same
-- rule as costrouter.budget.store.next_token_ratio). Returns the new ratio as text, since
-- Redis would truncate a Lua number to an integer.
local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
local observed = tonumber(ARGV[2])
local learned = observed
if stored ~= nil and observed < stored then
  learned = stored - (stored - observed) * tonumber(ARGV[3])
end
local text = string.format('%.17g', learned)
redis.call('HSET', KEYS[1], ARGV[1], text)
return text
