-- Helpers shared by the budget scripts: costrouter/budget/redis.py puts the ones a script uses
-- (this file holds only top-level local functions) in front of it before registering it.
--
-- Keys of one budget instance, all under the hash tag {prefix:v2:name:scope:id} (= base):
--   base .. ':c'            hash  the call records and their two expiry queues (see below)
--   base .. ':w:' .. window hash  spent, held, holds (count), unheld, alert:<threshold> flags,
--                                 and the process leases (see lease_decode)
-- Amounts are integers of costrouter.money units (nano-dollars).
--
-- The records hash ':c' (one key: a call reads it with one HMGET and writes it with one HSET):
--   'c:' .. call id   the call's record (see decode)
--   'h' .. n          due|call id: the hold queue, one entry a hold taken or renewed
--   'r' .. n          due|call id: the retention queue, one entry a record that is done
--   'hq', 'rq'        head|tail|due|call id: the next entry to pop, the next to write, and the
--                     head entry's due and call id (so that the HMGET alone says when one is
--                     due; the head has no field of its own: a queue of one is its state only)
--   't'               when the hash's TTL was last pushed (to 1.5 record ttl from then; pushed
--                     again once half a record ttl passed, so a record outlives its retention)
-- Every hold entry is written due now + hold ttl and every retention entry now + record ttl, so
-- each queue is in due order and its head is its earliest: a sweep pops only what is due, up
-- to 16 entries a queue, and reads nothing more while nothing is (the record's own due decides:
-- an entry whose record was renewed, settled or rewritten since is dropped when popped).
--
-- Server time matters here (every budgeted call runs a reserve and a settle): each function a
-- script carries is a closure Redis builds on every call of it, so scripts carry only those they
-- use; what runs on every reserve and settle hands redis.call strings, not Lua numbers (Redis
-- formats a number argument with %.17g), and cuts a record in one string.match, not a loop that
-- grows a table.

-- The server's clock: now (seconds, a number), and the TIME reply {seconds, microseconds}.
local function server_now()
  local t = redis.call('TIME')
  return t[1] + t[2] / 1000000, t
end

-- A counter's value held at the largest integer a Lua number keeps exactly (2^53 - 1, as
-- costrouter.money.MAX_COUNTER_UNITS): past it, %d and Redis's integer replies would wrap.
local function sat(x)
  if x > 9007199254740991 then
    return 9007199254740991
  end
  if x < -9007199254740991 then
    return -9007199254740991
  end
  return x
end

-- The text of an integer, saturated (see sat).
local function int(x)
  return string.format('%d', sat(x))
end

-- The window containing `now`: its id and the epoch second it ends (0: never).
local function window_of(kind, seconds, now)
  local t = math.floor(now)
  if kind == 'total' then
    return 'total', 0
  end
  if kind == 'fixed' then
    seconds = tonumber(seconds)
    local start = t - t % seconds
    return int(start), start + seconds
  end
  -- Calendar windows (defined here, so that a script whose budget has none builds no closure
  -- for them): days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's
  -- algorithms).
  local function fdiv(a, b)
    return math.floor(a / b)
  end
  local function days_from_civil(y, m, d)
    if m <= 2 then y = y - 1 end
    local era = fdiv(y, 400)
    local yoe = y - era * 400
    local mp = m > 2 and m - 3 or m + 9
    local doy = fdiv(153 * mp + 2, 5) + d - 1
    local doe = yoe * 365 + fdiv(yoe, 4) - fdiv(yoe, 100) + doy
    return era * 146097 + doe - 719468
  end
  local function civil_from_days(z)
    z = z + 719468
    local era = fdiv(z, 146097)
    local doe = z - era * 146097
    local yoe = fdiv(doe - fdiv(doe, 1460) + fdiv(doe, 36524) - fdiv(doe, 146096), 365)
    local doy = doe - (365 * yoe + fdiv(yoe, 4) - fdiv(yoe, 100))
    local mp = fdiv(5 * doy + 2, 153)
    local d = doy - fdiv(153 * mp + 2, 5) + 1
    local m = mp < 10 and mp + 3 or mp - 9
    local y = yoe + era * 400
    if m <= 2 then y = y + 1 end
    return y, m, d
  end
  local day = fdiv(t, 86400)
  local y, m, d = civil_from_days(day)
  if kind == 'daily' then
    return string.format('%04d-%02d-%02d', y, m, d), (day + 1) * 86400
  end
  local ny, nm = y, m + 1
  if nm == 13 then ny, nm = y + 1, 1 end
  return string.format('%04d-%02d', y, m), days_from_civil(ny, nm, 1) * 86400
end

-- A call record: state|hold|window|window_expiry|granted|spent0|held0|charged|spent1|held1|alerts|due
-- state: held, refused, expired (hold dropped unsettled), settled, released;
-- window_expiry: when the window's counters expire (0: never); spent0/held0: the window
-- before the reserve; charged/spent1/held1/alerts: the outcome of the settle or release;
-- due: when a held record's hold expires, else when the record may be forgotten.
local function decode(raw)
  local a, b, c, d, e, f, g, h, i, j, k, l = string.match(raw,
    '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if a then
    return {a, b, c, d, e, f, g, h, i, j, k, l}
  end
  -- Not a call record's 12 fields (a lease's 4): split on every '|'.
  local r = {}
  for part in string.gmatch(raw .. '|', '([^|]*)|') do
    r[#r + 1] = part
  end
  return r
end

local function encode(r)
  return table.concat(r, '|')
end

local function num(value)
  return tonumber(value) or 0
end

-- Process leases live in the window hash they belong to (see lease.lua):
--   'l:' .. owner  ->  state|hold|expiry|seq   (state l: live, x: gone; seq: last message applied)
--   'lh' the sum of the live leases' holds, 'lx' the earliest expiry of a live lease.
local function lease_decode(raw)
  local state, hold, expiry, seq = string.match(raw, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  if not state then
    local r = decode(raw)
    state, hold, expiry, seq = r[1], r[2], r[3], r[4]
  end
  return state, tonumber(hold), tonumber(expiry), tonumber(seq)
end

-- Drop the expired leases of a window out of 'lh' (kept as tombstones for their seq),
-- and forget tombstones past the record retention; only when the earliest expiry is due.
local function sweep_leases(wkey, now, record_ttl)
  local due = tonumber(redis.call('HGET', wkey, 'lx'))
  if not due or due > now then
    return
  end
  local fields = redis.call('HGETALL', wkey)
  local live, earliest = 0, nil
  for i = 1, #fields, 2 do
    local name = fields[i]
    if string.sub(name, 1, 2) == 'l:' then
      local state, hold, expiry, seq = lease_decode(fields[i + 1])
      if state == 'l' and expiry <= now then
        redis.call('HSET', wkey, name, encode({'x', '0', int(now), int(seq)}))
      elseif state == 'l' then
        live = live + hold
        if not earliest or expiry < earliest then earliest = expiry end
      elseif expiry + record_ttl < now then
        redis.call('HDEL', wkey, name)
      end
    end
  end
  redis.call('HSET', wkey, 'lh', int(live))
  if earliest then
    redis.call('HSET', wkey, 'lx', int(earliest))
  else
    redis.call('HDEL', wkey, 'lx')
  end
end

-- A window's fields spent, held, holds, lh, lx in one read; with `now`, its expired leases
-- are swept first (only when 'lx', the earliest lease expiry, is due: one HMGET otherwise).
local function read_window(wkey, now, record_ttl)
  local v = redis.call('HMGET', wkey, 'spent', 'held', 'holds', 'lh', 'lx')
  local due = v[5] and tonumber(v[5])
  if now and due and due <= now then
    sweep_leases(wkey, now, record_ttl)
    v = redis.call('HMGET', wkey, 'spent', 'held', 'holds', 'lh', 'lx')
  end
  return v
end

-- spent, held (call holds and live leases), holds (calls) of a window, leases swept first.
local function counters(wkey, now, record_ttl)
  local v = read_window(wkey, now, record_ttl)
  return num(v[1]), sat(num(v[2]) + num(v[4])), num(v[3])
end

-- A window's counters for a reserve or settle, healed, in one read: spent, call held, holds,
-- lease held, whether the hash has any of these fields, and the HMGET reply (spent, held, holds,
-- lh, lx as stored; false when missing). `records_live`: the instance's records hash exists
-- (its 't' field was read); with no records hash, no call hold is live, so a counter still
-- showing some is stale.
local function window_state(records_live, wkey, now, record_ttl)
  local v = read_window(wkey, now, record_ttl)
  -- Redis gives a missing field as false (num() inline: a field is mostly there, 'lh' mostly not).
  local held, holds = v[2] and tonumber(v[2]) or 0, v[3] and tonumber(v[3]) or 0
  if (held ~= 0 or holds ~= 0) and not records_live then
    redis.call('HSET', wkey, 'held', '0', 'holds', '0')
    held, holds = 0, 0
  end
  local present = (v[1] or v[2] or v[3] or v[4] or v[5]) and true or false
  return v[1] and tonumber(v[1]) or 0, held, holds, v[4] and tonumber(v[4]) or 0, present, v
end

local function drop_hold(base, r)
  local wkey = base .. ':w:' .. r[3]
  if redis.call('EXISTS', wkey) == 1 then
    if r[2] ~= '0' and redis.call('HINCRBY', wkey, 'held', '-' .. r[2]) < 0 then
      redis.call('HSET', wkey, 'held', '0')
    end
    if redis.call('HINCRBY', wkey, 'holds', '-1') < 0 then
      redis.call('HSET', wkey, 'holds', '0')
    end
  end
end

-- The queue helpers (built only by the scripts that pop or rebuild a queue: a sweep, a reset,
-- a migration; a reserve or settle pushes on the state's text with push_text):
-- queue(text) -> q, queue_text(q) -> text, push(q, name, due, id, w), advance(rkey, q, name, gone).
local function queue_tools()
  -- A queue's state from its 'hq'/'rq' field: {head, tail, head due (number or nil), head call
  -- id, head due as text}.
  local function queue(text)
    if text and text ~= '0|0||' then
      local head, tail, due, id = string.match(text, '^(%d+)|(%d+)|([^|]*)|(.*)$')
      if head then
        return {tonumber(head), tonumber(tail), tonumber(due), id, due}
      end
    end
    return {0, 0, nil, '', ''}
  end

  -- The text of a queue's state.
  local function queue_text(q)
    return string.format('%d|%d|', q[1], q[2]) .. q[5] .. '|' .. q[4]
  end

  -- Add an entry (due: text of a time, see due_at) to queue q named `name` ('h' or 'r'): the
  -- head lives in the queue's state only, every later entry in a field of its own, which goes
  -- (with its value) into `w`, the fields of the HSET the script ends with.
  local function push(q, name, due, id, w)
    if q[1] == q[2] then
      q[3], q[4], q[5] = tonumber(due), id, due
    else
      w[#w + 1] = name .. string.format('%d', q[2])
      w[#w + 1] = due .. '|' .. id
    end
    q[2] = q[2] + 1
  end

  -- Drop queue q's head; the next entry becomes the head (its field is read, and goes into `gone`).
  local function advance(rkey, q, name, gone)
    q[1] = q[1] + 1
    if q[1] >= q[2] then
      q[1], q[2], q[3], q[4], q[5] = 0, 0, nil, '', ''
      return
    end
    local field = name .. string.format('%d', q[1])
    local due, id = string.match(redis.call('HGET', rkey, field) or '', '^([^|]*)|(.*)$')
    gone[#gone + 1] = field
    q[3], q[4], q[5] = tonumber(due) or 0, id or '', due or '0'
  end

  return queue, queue_text, push, advance
end

-- push on a queue's state as text (what a reserve or settle read), without a table: the new text.
local function push_text(text, name, due, id, w)
  if not text or text == '0|0||' then
    return '0|1|' .. due .. '|' .. id
  end
  local head, tail, rest = string.match(text, '^(%d+)|(%d+)|(.*)$')
  w[#w + 1] = name .. tail
  w[#w + 1] = due .. '|' .. id
  return head .. '|' .. string.format('%d', tonumber(tail) + 1) .. '|' .. rest
end

-- The text of the moment `offset` (whole seconds) after the TIME reply t, to the microsecond (a
-- hold's expiry), or with `whole`, rounded up to the second (a retention: shorter to keep).
local function due_at(t, offset, whole)
  if whole then
    return string.format('%d', tonumber(t[1]) + 1 + offset)
  end
  return string.format('%d.', tonumber(t[1]) + offset) .. string.sub('00000' .. t[2], -6)
end

-- Pop what is due in the records hash's queues (up to 16 entries each): forget records past
-- their retention, turn holds past their expiry into 'expired' records (dropped out of their
-- window's held). `v`: the hash's {record, hq, rq, t} as read.
local function sweep(rkey, base, v, now, record_ttl, t)
  local queue, queue_text, push, advance = queue_tools()
  local hq, rq = queue(v[2]), queue(v[3])
  local w, gone = {}, {}
  -- Retention first: the hold pass below writes retention entries, never due in this sweep.
  local n = 0
  while rq[1] < rq[2] and rq[3] <= now and n < 16 do
    n = n + 1
    local raw = redis.call('HGET', rkey, 'c:' .. rq[4])
    local r = raw and decode(raw)
    if r and r[1] ~= 'held' and (tonumber(r[12]) or 0) <= now then
      gone[#gone + 1] = 'c:' .. rq[4]
    end
    advance(rkey, rq, 'r', gone)
  end
  n = 0
  local retained = due_at(t, record_ttl, true)
  while hq[1] < hq[2] and hq[3] <= now and n < 16 do
    n = n + 1
    local id = hq[4]
    local raw = redis.call('HGET', rkey, 'c:' .. id)
    local r = raw and decode(raw)
    if r and r[1] == 'held' and (tonumber(r[12]) or 0) <= now then
      drop_hold(base, r)
      r[1], r[12] = 'expired', retained
      w[#w + 1] = 'c:' .. id
      w[#w + 1] = encode(r)
      push(rq, 'r', retained, id, w)
    end
    advance(rkey, hq, 'h', gone)
  end
  if #gone > 0 then
    redis.call('HDEL', rkey, unpack(gone))
  end
  w[#w + 1] = 'hq'
  w[#w + 1] = queue_text(hq)
  w[#w + 1] = 'rq'
  w[#w + 1] = queue_text(rq)
  redis.call('HSET', rkey, unpack(w))
end

-- Whether a queue's state (as text, or false) says its head is due at `now` (no table built).
local function due_by(text, now)
  if not text or text == '0|0||' then
    return false
  end
  local due = tonumber(string.match(text, '^%d+|%d+|([^|]*)|'))
  return due ~= nil and due <= now
end

-- The records hash's fields for call `id`: {record, hq, rq, t} (false when missing), after
-- sweeping what is due.
local function records(rkey, base, id, now, record_ttl, t)
  local v = redis.call('HMGET', rkey, 'c:' .. id, 'hq', 'rq', 't')
  if due_by(v[2], now) or due_by(v[3], now) then
    sweep(rkey, base, v, now, record_ttl, t)
    v = redis.call('HMGET', rkey, 'c:' .. id, 'hq', 'rq', 't')
  end
  return v
end

-- Write the records hash's fields `w` (one HSET) and push its TTL when due: the hash lives 1.5
-- record ttl (+ 1 s) past the push, pushed again once half a record ttl passed (`stamp`: the 't'
-- field as read), so every record outlives its retention by that hash TTL alone.
local function write_records(rkey, w, stamp, now, record_ttl)
  local push_ttl = not stamp or now - tonumber(stamp) >= record_ttl / 2
  if push_ttl then
    w[#w + 1] = 't'
    w[#w + 1] = string.format('%d', now)
  end
  redis.call('HSET', rkey, unpack(w))
  if push_ttl then
    redis.call('EXPIRE', rkey, string.format('%d', record_ttl * 1.5 + 1))
  end
end

local function expire_window(wkey, expiry)
  if expiry > 0 then
    redis.call('EXPIREAT', wkey, int(expiry))
  end
end

-- Check and hold `amount` (text of an integer) for one call in one budget instance (see
-- reserve.lua); `t` is the TIME reply `now` was read from. Returns {granted, spent before,
-- held before, window id, replayed}.
local function reserve_one(base, call_id, amount, limit, enforce, kind, seconds, hold_ttl, record_ttl, now, t)
  local rkey = base .. ':c'
  local rv = records(rkey, base, call_id, now, record_ttl, t)
  if rv[1] then
    local r = decode(rv[1])
    return {tonumber(r[5]), tonumber(r[6]), tonumber(r[7]), r[3], 1}
  end

  local window, window_end = window_of(kind, seconds, now)
  local expiry = 0
  if window_end > 0 then expiry = window_end + hold_ttl end
  local wkey = base .. ':w:' .. window
  local spent, call_held, holds, lease_held, _, v = window_state(rv[4] and true or false, wkey, now, record_ttl)
  local held = call_held + lease_held
  local n = sat(tonumber(amount))
  local granted = spent + held + n <= limit

  -- The counters as read are the record's text (written by int or HINCRBY), unless healed or summed.
  local held_text = '0'
  if lease_held ~= 0 then
    held_text = int(held)
  elseif call_held ~= 0 then
    held_text = v[2]
  end
  local before = '|' .. window .. '|' .. (expiry > 0 and int(expiry) or '0') .. '|' .. (granted and '1' or '0')
    .. '|' .. (v[1] or '0') .. '|' .. held_text .. '|0|0|0||'
  local w
  if granted or not enforce then
    redis.call('HSET', wkey, 'held', int(call_held + n), 'holds', int(holds + 1))
    expire_window(wkey, expiry)
    local due = due_at(t, hold_ttl)
    w = {'hq', false, 'c:' .. call_id, 'held|' .. int(n) .. before .. due}
    w[2] = push_text(rv[2], 'h', due, call_id, w)
  else
    local due = due_at(t, record_ttl, true)
    w = {'rq', false, 'c:' .. call_id, 'refused|0' .. before .. due}
    w[2] = push_text(rv[3], 'r', due, call_id, w)
  end
  write_records(rkey, w, rv[4], now, record_ttl)
  return {granted and 1 or 0, sat(spent), sat(held), window, 0}
end
