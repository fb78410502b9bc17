-- Charge the actual amount of a call in place of its hold, or release the hold.
-- KEYS: the records hash (base .. ':c'), and (standalone Redis only) the largest-spender index base.
-- ARGV: base, call id, amount, release (1/0), window kind, window seconds, hold ttl,
-- record ttl, scope id, then pairs of alert threshold label and units.
-- Returns {state, charged, spent after, held after, window id, alerts (comma list),
-- replayed, window expiry, unheld (1: a charge that found no live hold: expired, reset or
-- never taken; counted in the window's 'unheld' field)}.
local rkey, base = KEYS[1], ARGV[1]
local call_id, release = ARGV[2], ARGV[4] == '1'
local amount = sat(tonumber(ARGV[3]))
local amount_text = int(amount)
local kind, seconds = ARGV[5], ARGV[6]
local hold_ttl, record_ttl = tonumber(ARGV[7]), tonumber(ARGV[8])

local now, t = server_now()
local rv = records(rkey, base, call_id, now, record_ttl, t)
local r = rv[1] and decode(rv[1])
if r and (r[1] == 'settled' or r[1] == 'released') then
  return {r[1], tonumber(r[8]), tonumber(r[9]), tonumber(r[10]), r[3], r[11], 1, tonumber(r[4]), 0}
end

-- A settle lands in the hold's window while that window's counters live, else in the current one.
local window, expiry
if r and (r[4] == '0' or tonumber(r[4]) > now) then
  window, expiry = r[3], tonumber(r[4])
else
  local window_end
  window, window_end = window_of(kind, seconds, now)
  expiry = 0
  if window_end > 0 then expiry = window_end + hold_ttl end
end
local wkey = base .. ':w:' .. window
local live = r and r[1] == 'held'
local spent, call_held, holds, lease_held, present = window_state(rv[4] and true or false, wkey, now, record_ttl)
-- The window's counters after the settle, written in one HSET (a dropped hold and the charge).
local dropped = false
if live and r[3] == window then
  -- The hold is in this window: drop it with the charge below, in one write (not into a
  -- hash that is gone: a reset or an expiry already dropped it).
  if present or redis.call('EXISTS', wkey) == 1 then
    call_held = math.max(call_held - tonumber(r[2]), 0)
    holds = math.max(holds - 1, 0)
    dropped = true
  end
elseif live then
  drop_hold(base, r)
end

local state, charged, unheld = 'released', 0, 0
local alerts = ''
local held_text = dropped and int(call_held)
if not release then
  state, charged = 'settled', amount
  spent = sat(spent + amount)
end
local spent_text = int(spent)
if dropped and not release then
  redis.call('HSET', wkey, 'held', held_text, 'holds', int(holds), 'spent', spent_text)
elseif dropped then
  redis.call('HSET', wkey, 'held', held_text, 'holds', int(holds))
elseif not release then
  redis.call('HSET', wkey, 'spent', spent_text)
end
if not release then
  if not live then
    unheld = 1
    redis.call('HINCRBY', wkey, 'unheld', '1')
  end
  expire_window(wkey, expiry)
end
local held = sat(call_held + lease_held)
if not release then
  for i = 10, #ARGV, 2 do
    if spent >= tonumber(ARGV[i + 1]) and redis.call('HSETNX', wkey, 'alert:' .. ARGV[i], '1') == 1 then
      alerts = alerts == '' and ARGV[i] or alerts .. ',' .. ARGV[i]
    end
  end
end

local granted, spent0, held0 = '0', '0', '0'
if r then granted, spent0, held0 = r[5], r[6], r[7] end
-- On Redis Cluster the index lives in another slot: the client updates it instead.
if KEYS[2] and charged > 0 then
  local top = KEYS[2] .. ':' .. window
  redis.call('ZINCRBY', top, amount_text, ARGV[9])
  if expiry > 0 then redis.call('EXPIREAT', top, int(expiry)) end
end

local due = due_at(t, record_ttl, true)
local w = {'c:' .. call_id, state .. '|' .. (r and r[2] or '0') .. '|' .. window .. '|'
  .. (expiry > 0 and int(expiry) or '0') .. '|' .. granted .. '|' .. spent0 .. '|' .. held0 .. '|'
  .. (charged > 0 and amount_text or '0') .. '|' .. spent_text .. '|'
  .. ((lease_held == 0 and held_text) or int(held)) .. '|' .. alerts .. '|' .. due, 'rq', false}
w[4] = push_text(rv[3], 'r', due, call_id, w)
-- A hold queue of this call's entry alone is emptied now (a session's calls one at a time); an
-- entry behind others is dropped when it comes due, its record no longer held.
if live and rv[2] == '0|1|' .. r[12] .. '|' .. call_id then
  w[#w + 1] = 'hq'
  w[#w + 1] = '0|0||'
end
write_records(rkey, w, rv[4], now, record_ttl)
return {state, charged, spent, held, window, alerts, 0, expiry, unheld}
