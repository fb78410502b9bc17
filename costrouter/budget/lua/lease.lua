-- One message of a process's lease on a budget instance: charge what its calls settled,
-- drop the old hold, and hold again what its calls in flight need plus a fresh slice.
-- KEYS: the records hash (the call holds' sweep), and (standalone Redis only) the
-- largest-spender index base.
-- ARGV: base, lease field ('l:' .. owner), lease window ('' for none), seq, charge, in flight, need, enforce (1/0),
-- extra max, fraction (millionths), extra min, lease ttl, window kind, window seconds,
-- hold ttl, record ttl, limit, scope id, then pairs of alert threshold label and units.
-- A message whose seq is not above the lease's last applied seq was applied already (a
-- resend after a timeout): it changes nothing and returns the lease as it stands, with the
-- grant the message had (see `replay`).
-- Sizing: free = limit - spent - held (every call hold and every other lease); the new hold
-- is inflight + need + extra with extra = min(extra max, floor((free - inflight - need) *
-- fraction)), and 0 when that is below extra min (near the limit a lease covers only the
-- calls that asked for it). need is granted iff free - inflight >= need; inflight is always
-- held (those calls were granted already).
-- Returns {granted, hold, spent, held, window, window end, alerts (comma list), replayed}.
-- The common message takes one read and one write of the lease's window hash (fast path):
-- the lease in the current window, no lease expiry due ('lx'), and no call hold in the window
-- (so the records hash has nothing for it to sweep or heal). Any other message takes the
-- general path below, which sweeps the records hash and the leases first; both leave the same
-- fields, and answer the same.
local rkey, base = KEYS[1], ARGV[1]
-- Numbers are read as `text + 0` (one parse; tonumber parses twice): every ARGV number is ours.
local field, old_window, seq_text = ARGV[2], ARGV[3], ARGV[4]
local seq = seq_text + 0
local charge, inflight, need = sat(ARGV[5] + 0), sat(ARGV[6] + 0), sat(ARGV[7] + 0)
local enforce = ARGV[8] == '1'
local limit = ARGV[17] + 0

local now, t = server_now()
local window, window_end = window_of(ARGV[13], ARGV[14], now)
local wkey = base .. ':w:' .. window
local expiry = 0
if window_end > 0 then expiry = window_end + ARGV[15] end
local okey = wkey
if old_window ~= '' then okey = base .. ':w:' .. old_window end

-- The sizing rule (see the top) from free: whether need is granted, and the new hold.
local function size(free)
  local granted = free - inflight >= need
  local new_hold = inflight
  if granted or not enforce then
    new_hold = sat(inflight + need)
    if granted then
      -- floor(room x fraction / 1e6) in two exact parts: room x fraction itself passes 2^53 (a
      -- double's integers) once room is past 9e9 units ($9), and would round.
      local extra_max, fraction, extra_min = ARGV[9] + 0, ARGV[10] + 0, ARGV[11] + 0
      local room = free - inflight - need
      local whole = math.floor(room / 1000000)
      local extra = whole * fraction + math.floor((room - whole * 1000000) * fraction / 1000000)
      if extra > extra_max then extra = extra_max end
      if extra >= extra_min and extra > 0 then new_hold = sat(new_hold + extra) end
    end
  end
  return granted, new_hold
end

-- The answer to a message applied already. Its grant is read off the hold it left: granted,
-- the hold covers in flight and need; refused, at most in flight (nothing when that is 0).
-- A lease expired since holds nothing and answers refused, the safe side. Not enforced, the
-- need was held either way, and the answer says granted.
local function replay(live, spent, held)
  local granted = need == 0 or live >= sat(inflight + need)
  return {granted and 1 or 0, live, spent, held, window, window_end, '', 1}
end

-- Charge `charge` onto `spent` (a number, as read) of key `ckey`: the new spent, the alert
-- thresholds it fired (HSETNX of their flags, into `fired`), and the top index.
local function charged(ckey, spent, fired)
  -- Added in Lua, not by HINCRBY: the counter saturates (sat) where HINCRBY would fail the message.
  spent = sat(spent + charge)
  for i = 19, #ARGV, 2 do
    if spent >= tonumber(ARGV[i + 1]) and redis.call('HSETNX', ckey, 'alert:' .. ARGV[i], 1) == 1 then
      fired[#fired + 1] = ARGV[i]
    end
  end
  if KEYS[2] then
    local top = KEYS[2] .. ':' .. string.sub(ckey, #base + 4)
    redis.call('ZINCRBY', top, int(charge), ARGV[18])
    if expiry > 0 then redis.call('EXPIREAT', top, expiry) end
  end
  return spent
end

local v = redis.call('HMGET', wkey, field, 'spent', 'held', 'holds', 'lh', 'lx')
local lx = v[6] and v[6] + 0
local raw = v[1]
local state, hold, applied = 'x', 0, 0
if raw then
  -- state|hold|expiry|seq (see lease_decode; anything else takes the general path)
  local h, a
  state, h, a = string.match(raw, '^([^|]*)|([^|]*)|[^|]*|([^|]*)$')
  if state then hold, applied = h + 0, a + 0 end
end
if state and okey == wkey and not (lx and lx <= now) and (not v[3] or v[3] == '0') and (not v[4] or v[4] == '0') then
  local lh = v[5] and v[5] + 0 or 0
  local spent = v[2] and v[2] + 0 or 0
  if raw and seq <= applied then
    local live = 0
    if state == 'l' then live = hold end
    return replay(live, spent, sat(lh))
  end
  -- The fields of the one HSET (the array part sized at once: no rehash while it fills).
  local w, n = {false, false, false, false, false, false, false, false}, 0
  if state == 'l' then
    lh = lh - hold
    if lh < 0 then lh = 0 end
    w[1], w[2] = 'lh', int(lh); n = 2
  end
  local fired, alerts = nil, ''
  if charge > 0 then
    fired = {}
    spent = charged(wkey, spent, fired)
    w[n + 1], w[n + 2] = 'spent', int(spent); n = n + 2
    alerts = table.concat(fired, ',')
  end
  local held = sat(lh)
  local granted, new_hold = size(limit - spent - held)
  if new_hold > 0 then
    local until_ = now + ARGV[12]
    local until_text = int(until_)
    w[n + 1], w[n + 2] = field, 'l|' .. int(new_hold) .. '|' .. until_text .. '|' .. seq_text; n = n + 2
    if state == 'l' then
      w[2] = int(lh + new_hold)
    else
      w[n + 1], w[n + 2] = 'lh', int(lh + new_hold); n = n + 2
    end
    if not lx or until_ < lx then w[n + 1], w[n + 2] = 'lx', until_text; n = n + 2 end
    held = sat(held + new_hold)
  elseif raw or charge > 0 then
    w[n + 1], w[n + 2] = field, 'x|0|' .. t[1] .. '|' .. seq_text; n = n + 2
  end
  if n > 0 then redis.call('HSET', wkey, unpack(w, 1, n)) end
  expire_window(wkey, expiry)
  return {granted and 1 or 0, new_hold, spent, held, window, window_end, alerts, 0}
end

-- The general path (a function of its own: the functions only it uses are built when it runs).
--@deferred
local record_ttl = tonumber(ARGV[16])
local rv = records(rkey, base, '', now, record_ttl, t)

-- The lease as it was: in its own window's hash (the current one, or the one it was taken in).
sweep_leases(okey, now, record_ttl)
local raw = redis.call('HGET', okey, field)
local state, hold, applied = 'x', 0, 0
if raw then
  local _
  state, hold, _, applied = lease_decode(raw)
end
if raw and seq <= applied then
  local spent, held = counters(wkey, now, record_ttl)
  local live = 0
  if okey == wkey and state == 'l' then live = hold end
  return replay(live, spent, held)
end

-- Charge the settled spend where the lease was (its window's counters live), else here.
local ckey = wkey
if okey ~= wkey and redis.call('EXISTS', okey) == 1 then ckey = okey end
if state == 'l' then
  if redis.call('HINCRBY', okey, 'lh', -hold) < 0 then redis.call('HSET', okey, 'lh', 0) end
end
if raw then
  redis.call('HSET', okey, field, encode({'x', '0', int(now), int(seq)}))
end
local fired = {}
if charge > 0 then
  redis.call('HSET', ckey, 'spent', int(charged(ckey, num(redis.call('HGET', ckey, 'spent')), fired)))
end

-- The new hold, in the current window.
local spent, call_held, _, lease_held = window_state(rv[4] and true or false, wkey, now, record_ttl)
local held = sat(call_held + lease_held)
local granted, new_hold = size(limit - spent - held)
if new_hold > 0 then
  local until_ = now + tonumber(ARGV[12])
  redis.call('HSET', wkey, field, encode({'l', int(new_hold), int(until_), int(seq)}))
  redis.call('HSET', wkey, 'lh', int(num(redis.call('HGET', wkey, 'lh')) + new_hold))
  local lx_ = tonumber(redis.call('HGET', wkey, 'lx'))
  if not lx_ or until_ < lx_ then redis.call('HSET', wkey, 'lx', int(until_)) end
  held = sat(held + new_hold)
elseif raw or charge > 0 then
  redis.call('HSET', wkey, field, encode({'x', '0', int(now), int(seq)}))
end
expire_window(wkey, expiry)
return {granted and 1 or 0, new_hold, spent, held, window, window_end, table.concat(fired, ','), 0}
