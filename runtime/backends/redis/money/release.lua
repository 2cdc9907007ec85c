-- release: frees a reservation for a call that was never billed and appends its ledger entry
-- (cost 0), atomically. Releasing a closed reservation returns the entry that closed it; an expired
-- or unknown one only gets its ledger entry.
--
-- KEYS[1] the reservation, KEYS[2] rexp, KEYS[3] ledger stream, KEYS[4] the day's spend rollup,
-- KEYS[5..4+n] budgets of the entry's identity, then the ledger indexes.
-- ARGV after the shared context: reservation id, caller's reserved, entry JSON without
-- reserved/overrun, entry time, rollup field ('' for none), input, cw5m, cw1h, cacheRead, output,
-- n, then the n budget ids.
--
-- Replies {'released', reserved} | {'closed', entryJson} | {'moved', scopes}.

--- @include "includes/context.lua"
--- @include "includes/budget.lua"
--- @include "includes/ledger.lua"
--- @include "includes/rate.lua"
--- @include "includes/reservation.lua"

local resKey, rexpKey, streamKey, rollupKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local resId = ARGV[ARG0 + 1]
local reserved = tonumber(ARGV[ARG0 + 2])
local head = ARGV[ARG0 + 3]
local at = tonumber(ARGV[ARG0 + 4])
local rollupField = ARGV[ARG0 + 5]
local n = tonumber(ARGV[ARG0 + 11])
local IDS = ARG0 + 12

local r = loadReservation(resKey)
-- An expired reservation was charged its worst case when it expired: closed, like a settled one.
if r and r.status ~= 'open' then
  return { 'closed', r.entry }
end

if r and r.status == 'open' then
  local ids = {}
  for i = 1, n do
    ids[i] = ARGV[IDS + i - 1]
  end
  if table.concat(ids, ' ') ~= r.ids then
    return { 'moved', r.scopes }
  end
  reserved = r.amount
  local budgets = {}
  for i = 1, n do
    local b = loadBudget(KEYS[4 + i])
    if b then
      table.insert(budgets, b)
    end
  end
  for _, b in ipairs(budgets) do
    local left = b.reserved - r.amount
    if left < 0 then
      left = 0
    end
    redis.call('HSET', b.key, 'reserved', int(left), 'updatedAt', int(CTX.now))
  end
  -- Its rate limits: freed, nothing charged (includes/rate.lua).
  if r.rates then
    closeRates(r.rates, function()
      return 0
    end)
  end
end

local json = string.sub(head, 1, -2) .. ',"reserved":' .. int(reserved) .. ',"overrun":0}'
local indexKeys = {}
for i = 5 + n, #KEYS do
  table.insert(indexKeys, KEYS[i])
end
appendLedger(streamKey, json, at, indexKeys)
rollUp(rollupKey, rollupField, { 0, 1, tonumber(ARGV[ARG0 + 6]), tonumber(ARGV[ARG0 + 7]),
  tonumber(ARGV[ARG0 + 8]), tonumber(ARGV[ARG0 + 9]), tonumber(ARGV[ARG0 + 10]) })
tombstone(resKey, rexpKey, resId, 'released', json)
return { 'released', int(reserved) }
