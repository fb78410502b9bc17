-- Check and hold an amount for one call.
-- KEYS: calls, expiry index (base .. ':calls', base .. ':expiry'). ARGV: base, call id,
-- amount, limit, enforce (1/0), window kind, window seconds, hold ttl, record ttl.
-- Returns {granted, spent before, held before, window id, replayed}.
return reserve_one(ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1', ARGV[6], tonumber(ARGV[7]),
  tonumber(ARGV[8]), tonumber(ARGV[9]), server_now())
