-- Clear the current window of a budget instance: spend, holds and alert flags.
-- Live holds of that window become 'expired': a later settle still charges, once.
-- KEYS: the records hash. ARGV: base, window kind, window seconds, record ttl.
-- Returns the window id.
local rkey, base = KEYS[1], ARGV[1]
local kind, seconds, record_ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local queue, queue_text, push = queue_tools()
local now, t = server_now()
local window = window_of(kind, seconds, now)
redis.call('DEL', base .. ':w:' .. window)
local entries = redis.call('HGETALL', rkey)
local w, rq, stamp = {}, nil, nil
local due = due_at(t, record_ttl, true)
for i = 1, #entries, 2 do
  local name = entries[i]
  if name == 'rq' then
    rq = queue(entries[i + 1])
  elseif name == 't' then
    stamp = entries[i + 1]
  end
end
for i = 1, #entries, 2 do
  local name = entries[i]
  if string.sub(name, 1, 2) == 'c:' then
    local r = decode(entries[i + 1])
    if r[1] == 'held' and r[3] == window then
      r[1], r[12] = 'expired', due
      rq = rq or queue(nil)
      w[#w + 1] = name
      w[#w + 1] = encode(r)
      push(rq, 'r', due, string.sub(name, 3), w)
    end
  end
end
if #w > 0 then
  w[#w + 1] = 'rq'
  w[#w + 1] = queue_text(rq)
  write_records(rkey, w, stamp, now, record_ttl)
end
return window
