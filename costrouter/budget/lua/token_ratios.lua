-- Every learned prompt-token ratio, with the server's clock to age them by.
-- KEYS[1]  {prefix:token-ratios}  hash  deployment id -> ratio|observations|updated at
-- Returns {now (text), {deployment id, record, ...}}.
local now = server_now()
return {string.format('%.17g', now), redis.call('HGETALL', KEYS[1])}
