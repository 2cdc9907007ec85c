-- settle: replaces a reservation by the call's actual cost and appends its ledger entry, atomically.
-- The full actual cost is charged even when it passes the reservation (the excess is the entry's
-- overrun). A reservation closes once: settling a closed one returns the entry that closed it and
-- changes nothing; an expired one was charged its worst case when it expired and is closed too. An
-- unknown reservation is still charged, to the budgets passed in (the identity's, created if
-- missing), so no cost is ever lost.
--
-- KEYS[1] the reservation, KEYS[2] rexp, KEYS[3] scopes index, KEYS[4] ledger stream,
-- KEYS[5] the day's spend rollup, KEYS[6..5+n] budgets of the entry's identity, then m ledger indexes.
-- ARGV after the shared context: reservation id, cost, caller's reserved, entry JSON without
-- reserved/overrun, entry time, rollup field ('' for none), input, cw5m, cw1h, cacheRead, output,
-- n, then per budget: scope id kind owner ceiling window.
--
-- Replies {'settled', reserved} | {'closed', entryJson} | {'moved', scopes} when the reservation
-- holds other budgets than those passed (the caller retries with its scopes).

--- @include "includes/context.lua"
--- @include "includes/budget.lua"
--- @include "includes/ledger.lua"
--- @include "includes/rate.lua"
--- @include "includes/reservation.lua"

local resKey, rexpKey, scopesKey, streamKey, rollupKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local resId = ARGV[ARG0 + 1]
local cost = tonumber(ARGV[ARG0 + 2])
local reserved = tonumber(ARGV[ARG0 + 3])
local head = ARGV[ARG0 + 4]
local at = tonumber(ARGV[ARG0 + 5])
local rollupField = ARGV[ARG0 + 6]
local n = tonumber(ARGV[ARG0 + 12])
local SPECS = ARG0 + 13

local r = loadReservation(resKey)
-- Closed once: an expired reservation was charged its worst case when it expired, which stands
-- (never less than the call cost) until reconciliation corrects it.
if r and r.status ~= 'open' then
  return { 'closed', r.entry }
end

local budgets = {}
local held = 0
if r and r.status == 'open' then
  local ids = {}
  for i = 1, n do
    ids[i] = ARGV[SPECS + (i - 1) * 6 + 1]
  end
  if table.concat(ids, ' ') ~= r.ids then
    return { 'moved', r.scopes }
  end
  held = r.amount
  reserved = held
  for i = 1, n do
    local b = loadBudget(KEYS[5 + i])
    if b then
      table.insert(budgets, b)
    end
  end
elseif cost > 0 then
  for i = 1, n do
    table.insert(budgets, ensureBudget(5 + i, scopesKey, SPECS + (i - 1) * 6))
  end
end

for _, b in ipairs(budgets) do
  charge(b, cost, held)
end
-- Its rate limits: charged the units the call used (includes/rate.lua).
if r and r.status == 'open' and r.rates then
  local t = { tonumber(ARGV[ARG0 + 7]), tonumber(ARGV[ARG0 + 8]), tonumber(ARGV[ARG0 + 9]), tonumber(ARGV[ARG0 + 11]) }
  closeRates(r.rates, function(unit)
    return usedUnits(unit, t[1], t[2], t[3], t[4])
  end)
end

local overrun = cost - reserved
if overrun < 0 then
  overrun = 0
end
local json = string.sub(head, 1, -2) .. ',"reserved":' .. int(reserved) .. ',"overrun":' .. int(overrun) .. '}'
local indexKeys = {}
for i = 6 + n, #KEYS do
  table.insert(indexKeys, KEYS[i])
end
appendLedger(streamKey, json, at, indexKeys)
rollUp(rollupKey, rollupField, { cost, 1, tonumber(ARGV[ARG0 + 7]), tonumber(ARGV[ARG0 + 8]),
  tonumber(ARGV[ARG0 + 9]), tonumber(ARGV[ARG0 + 10]), tonumber(ARGV[ARG0 + 11]) })
tombstone(resKey, rexpKey, resId, 'settled', json)
return { 'settled', int(reserved) }
