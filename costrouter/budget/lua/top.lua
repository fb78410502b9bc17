-- The largest spenders of a budget in its current window.
-- KEYS: the index's hash tag {prefix:top:name}; the index of a window is KEYS[1]:<window>.
-- ARGV: window kind, window seconds, count.
-- Returns {window id, {member, score, ...}}.
local window = window_of(ARGV[1], tonumber(ARGV[2]), server_now())
local count = tonumber(ARGV[3])
if count <= 0 then
  return {window, {}}
end
return {window, redis.call('ZREVRANGE', KEYS[1] .. ':' .. window, 0, count - 1, 'WITHSCORES')}
