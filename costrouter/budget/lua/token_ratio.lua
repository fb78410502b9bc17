-- Teach one deployment's prompt-token ratio (provider's prompt_tokens / costrouter's count).
-- KEYS[1]  {prefix:token-ratios}  hash  deployment id -> ratio|observations|updated at (server time)
-- ARGV     deployment id, observed ratio, decay, step, cap, prior, half-life seconds ('' for none)
-- The rule of costrouter.pricing.ratio_rule.next_token_ratio: the stored ratio first ages toward
-- the prior by the half-life (and never passes the cap); an observation above it raises it at most
-- `step` times (the first one from the prior), within the cap; one below pulls it `decay` of the
-- way down. A record that does not parse counts as none. Returns the new ratio as text, since
-- Redis would truncate a Lua number to an integer.
local now = server_now()
local observed = tonumber(ARGV[2])
local decay, step, cap, prior = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local half_life = tonumber(ARGV[7])
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local stored, count, at = nil, 0, now
if raw then
  local r = {}
  for part in string.gmatch(raw .. '|', '([^|]*)|') do
    r[#r + 1] = part
  end
  stored, count, at = tonumber(r[1]), tonumber(r[2]) or 0, tonumber(r[3]) or now
  if stored and not (stored > 0 and stored < math.huge) then stored = nil end
end
local learned
if stored == nil then
  count = 0
  learned = math.min(observed, prior * step, cap)
else
  local age = math.max(now - at, 0)
  local base = stored
  if half_life and age > 0 then
    base = prior + (stored - prior) * math.pow(0.5, age / half_life)
  end
  base = math.min(base, cap)
  if observed >= base then
    learned = math.min(observed, base * step, cap)
  else
    learned = base - (base - observed) * decay
  end
end
local text = string.format('%.17g', learned)
redis.call('HSET', KEYS[1], ARGV[1], text .. '|' .. string.format('%d', count + 1) .. '|' .. string.format('%.17g', now))
return text
