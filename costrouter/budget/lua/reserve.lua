-- Check and hold an amount for one call.
-- KEYS: the records hash (base .. ':c'). ARGV: base, call id,
-- amount, limit, enforce (1/0), window kind, window seconds, hold ttl, record ttl.
-- Returns {granted, spent before, held before, window id, replayed}.
-- (The window seconds and ttls stay text: Lua's arithmetic converts them where used.)
return reserve_one(ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1', ARGV[6], ARGV[7], ARGV[8], ARGV[9],
  server_now())
