-- The window id and end for a given moment (used by tests to check the Python window math).
-- ARGV: window kind, window seconds, epoch seconds. Returns {window id, end}.
local window, window_end = window_of(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
return {window, window_end}
