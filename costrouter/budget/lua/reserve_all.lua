-- Check and hold one call's amount in several budget instances, in their order, in one script
-- (standalone Redis: their keys may lie in different cluster slots). The same as one reserve
-- script per budget run back to back: it stops after the first enforcing budget that refuses,
-- and the client releases the holds taken before it, as it does after separate reserves.
-- KEYS: the records hash of each budget, in order.
-- ARGV: call id, amount, hold ttl, record ttl, then per budget: base, limit, enforce (1/0),
-- window kind, window seconds.
-- Returns one reserve reply per budget tried (see reserve.lua).
local call_id, amount = ARGV[1], ARGV[2]
local hold_ttl, record_ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local now, t = server_now()
local replies = {}
for i = 5, #ARGV, 5 do
  local enforce = ARGV[i + 2] == '1'
  local reply = reserve_one(ARGV[i], call_id, amount, tonumber(ARGV[i + 1]), enforce, ARGV[i + 3],
    ARGV[i + 4], hold_ttl, record_ttl, now, t)
  replies[#replies + 1] = reply
  if enforce and reply[1] == 0 then
    break
  end
end
return replies
