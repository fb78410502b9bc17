-- One message of a process's lease on a budget instance: charge what its calls settled,
-- drop the old hold, and hold again what its calls in flight need plus a fresh slice.
-- KEYS: the records hash (the call holds' sweep), and (standalone Redis only) the
-- largest-spender index base.
-- ARGV: base, owner, lease window ('' for none), seq, charge, in flight, need, enforce (1/0),
-- extra max, fraction (millionths), extra min, lease ttl, window kind, window seconds,
-- hold ttl, record ttl, limit, scope id, then pairs of alert threshold label and units.
-- A message whose seq is not above the lease's last applied seq was applied already (a
-- retry after a timeout): it changes nothing and returns the lease as it stands.
-- Sizing: free = limit - spent - held (every call hold and every other lease); the new hold
-- is inflight + need + extra with extra = min(extra max, floor((free - inflight - need) *
-- fraction)), and 0 when that is below extra min (near the limit a lease covers only the
-- calls that asked for it). need is granted iff free - inflight >= need; inflight is always
-- held (those calls were granted already).
-- Returns {granted, hold, spent, held, window, window end, alerts (comma list), replayed}.
local rkey, base = KEYS[1], ARGV[1]
local owner, old_window, seq = ARGV[2], ARGV[3], tonumber(ARGV[4])
local charge, inflight, need = sat(tonumber(ARGV[5])), sat(tonumber(ARGV[6])), sat(tonumber(ARGV[7]))
local enforce = ARGV[8] == '1'
local extra_max, fraction, extra_min = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local lease_ttl, kind, seconds = tonumber(ARGV[12]), ARGV[13], tonumber(ARGV[14])
local hold_ttl, record_ttl, limit = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17])
local field = 'l:' .. owner

local now, t = server_now()
local rv = records(rkey, base, '', now, record_ttl, t)
local window, window_end = window_of(kind, seconds, now)
local wkey = base .. ':w:' .. window
local expiry = 0
if window_end > 0 then expiry = window_end + hold_ttl end

-- The lease as it was: in its own window's hash (the current one, or the one it was taken in).
local okey = wkey
if old_window ~= '' then okey = base .. ':w:' .. old_window end
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
  return {1, live, spent, held, window, window_end, '', 1}
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
  -- Added in Lua, not by HINCRBY: the counter saturates (sat) where HINCRBY would fail the message.
  local spent = sat(num(redis.call('HGET', ckey, 'spent')) + charge)
  redis.call('HSET', ckey, 'spent', int(spent))
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
end

-- The new hold, in the current window.
local spent, call_held, _, lease_held = window_state(rv[4] and true or false, wkey, now, record_ttl)
local held = sat(call_held + lease_held)
local free = limit - spent - held
local granted = free - inflight >= need
local new_hold = inflight
if granted or not enforce then
  new_hold = sat(inflight + need)
  if granted then
    -- floor(room x fraction / 1e6) in two exact parts: room x fraction itself passes 2^53 (a
    -- double's integers) once room is past 9e9 units ($9), and would round.
    local room = free - inflight - need
    local whole = math.floor(room / 1000000)
    local extra = whole * fraction + math.floor((room - whole * 1000000) * fraction / 1000000)
    if extra > extra_max then extra = extra_max end
    if extra >= extra_min and extra > 0 then new_hold = sat(new_hold + extra) end
  end
end
if new_hold > 0 then
  local until_ = now + lease_ttl
  redis.call('HSET', wkey, field, encode({'l', int(new_hold), int(until_), int(seq)}))
  redis.call('HSET', wkey, 'lh', int(num(redis.call('HGET', wkey, 'lh')) + new_hold))
  local lx = tonumber(redis.call('HGET', wkey, 'lx'))
  if not lx or until_ < lx then redis.call('HSET', wkey, 'lx', int(until_)) end
  held = sat(held + new_hold)
elseif raw or charge > 0 then
  redis.call('HSET', wkey, field, encode({'x', '0', int(now), int(seq)}))
end
expire_window(wkey, expiry)
return {granted and 1 or 0, new_hold, spent, held, window, window_end, table.concat(fired, ','), 0}
