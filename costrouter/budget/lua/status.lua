-- The current window of a budget instance, after sweeping expired holds.
-- KEYS: the records hash. ARGV: base, window kind, window seconds, record ttl.
-- Returns {window id, spent, held, holds, unheld settles}.
local rkey, base = KEYS[1], ARGV[1]
local kind, seconds, record_ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local now, t = server_now()
local rv = records(rkey, base, '', now, record_ttl, t)
local window = window_of(kind, seconds, now)
local wkey = base .. ':w:' .. window
local spent, call_held, holds, lease_held = window_state(rv[4] and true or false, wkey, now, record_ttl)
return {window, spent, sat(call_held + lease_held), holds, num(redis.call('HGET', wkey, 'unheld'))}
