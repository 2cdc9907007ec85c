-- lease: steps on reservations held as budget leases (runtime/store/leases.ts), all in one atomic
-- step, in order. Per step: charge a call admitted from the lease (its cost spent on the lease's
-- budgets and taken from what the lease holds, its ledger entry appended and rolled up), free part
-- of what is left, move the expiry, close (free the rest). A returned or unknown lease still gets
-- its entries charged — to the identity's budgets, created if missing — so no cost is lost; an
-- expired one was charged everything it held when it expired, which stands (its entry is returned).
--
-- KEYS[1] rexp, KEYS[2] scopes index, KEYS[3] ledger stream: the other keys are derived from the
-- reservations and entries under the same hash tag (one slot).
-- ARGV after the shared context: the number of steps, then per step 18 fields: reservation id,
-- has entry (0/1), cost, the call's reserved, entry JSON without reserved/overrun, entry time,
-- rollup day ('' for none), rollup field, input, cw5m, cw1h, cacheRead, output, free, expiresAt
-- ('' unchanged), close (0/1), call ('' for none), n; then the n scope specs of the entry's identity
-- (scope id kind owner ceiling window, 6 fields each).
--
-- A call is charged once per lease: {prefix}:lc:<reservation> is the set of calls charged from it,
-- kept as long as a closed reservation is, so a step repeated (a batch retried after a timeout, a
-- journal replayed after a crash) charges nothing twice.
--
-- Replies one {status, held, entryJson, repeated} per step: status 'open', 'closed' (returned or
-- unknown) or 'expired'; entryJson is the entry written ('' for none or repeated; the expired entry
-- for 'expired'); repeated '1' when the call had been charged before.

--- @include "includes/context.lua"
--- @include "includes/budget.lua"
--- @include "includes/ledger.lua"
--- @include "includes/reservation.lua"

local rexpKey, scopesKey, streamKey = KEYS[1], KEYS[2], KEYS[3]
local steps = tonumber(ARGV[ARG0 + 1])
local replies = {}
local at = ARG0 + 2

local function budgetsOf(ids)
  local out = {}
  for _, bid in ipairs(split(ids)) do
    local b = loadBudget(CTX.prefix .. ':b:' .. bid)
    if b then
      table.insert(out, b)
    end
  end
  return out
end

for _ = 1, steps do
  local resId = ARGV[at]
  local hasEntry = ARGV[at + 1] == '1'
  local cost = tonumber(ARGV[at + 2])
  local callReserved = tonumber(ARGV[at + 3])
  local head = ARGV[at + 4]
  local entryAt = tonumber(ARGV[at + 5])
  local day = ARGV[at + 6]
  local field = ARGV[at + 7]
  local tokens = { tonumber(ARGV[at + 8]), tonumber(ARGV[at + 9]), tonumber(ARGV[at + 10]),
    tonumber(ARGV[at + 11]), tonumber(ARGV[at + 12]) }
  local free = tonumber(ARGV[at + 13])
  local expiresAt = ARGV[at + 14]
  local close = ARGV[at + 15] == '1'
  local callId = ARGV[at + 16]
  local n = tonumber(ARGV[at + 17])
  local specs = at + 18
  at = specs + n * 6

  local function write(budgets, charged)
    local overrun = cost - callReserved
    if overrun < 0 then
      overrun = 0
    end
    local json = string.sub(head, 1, -2) .. ',"reserved":' .. int(callReserved) .. ',"overrun":' .. int(overrun) .. '}'
    local indexKeys = {}
    for i = 1, n do
      table.insert(indexKeys, CTX.prefix .. ':li:' .. ARGV[specs + (i - 1) * 6])
    end
    for _, b in ipairs(budgets) do
      charge(b, cost, charged)
    end
    appendLedger(streamKey, json, entryAt, indexKeys)
    if day ~= '' then
      rollUp(CTX.prefix .. ':sd:' .. day, field, { cost, 1, tokens[1], tokens[2], tokens[3], tokens[4], tokens[5] })
    end
    return json
  end

  local key = CTX.prefix .. ':r:' .. resId
  local r = loadReservation(key)
  local repeated = '0'
  if hasEntry and callId ~= '' and not (r and r.status == 'expired') then
    local calls = CTX.prefix .. ':lc:' .. resId
    if redis.call('SADD', calls, callId) == 0 then
      repeated = '1'
      hasEntry = false
    else
      redis.call('PEXPIRE', calls, TOMBSTONE_MS)
    end
  end
  if r and r.status == 'expired' then
    table.insert(replies, { 'expired', '0', r.entry or '', '0' })
  elseif r == nil or r.status ~= 'open' then
    local json = ''
    if hasEntry then
      local budgets = {}
      if cost > 0 then
        for i = 1, n do
          local s = specs + (i - 1) * 6
          local bkey = CTX.prefix .. ':b:' .. ARGV[s + 1]
          local b = loadBudget(bkey)
          if b == nil then
            createBudget(bkey, scopesKey, ARGV[s], ARGV[s + 1], ARGV[s + 2], ARGV[s + 3], ARGV[s + 4], ARGV[s + 5])
            b = loadBudget(bkey)
          end
          table.insert(budgets, b)
        end
      end
      json = write(budgets, 0)
    end
    table.insert(replies, { 'closed', '0', json, repeated })
  else
    local held = r.amount
    local json = ''
    if hasEntry then
      local part = math.min(cost, held)
      json = write(budgetsOf(r.ids), part)
      held = held - part
    end
    local f = close and held or math.min(free, held)
    if f > 0 then
      for _, b in ipairs(budgetsOf(r.ids)) do
        charge(b, 0, f)
      end
      held = held - f
    end
    if close then
      tombstone(key, rexpKey, resId, 'released', '{"lease":"returned"}')
      table.insert(replies, { 'closed', '0', json, repeated })
    else
      redis.call('HSET', key, 'amount', int(held))
      if expiresAt ~= '' then
        redis.call('HSET', key, 'expiresAt', expiresAt)
        redis.call('ZADD', rexpKey, expiresAt, resId)
      end
      table.insert(replies, { 'open', int(held), json, repeated })
    end
  end
end
return replies
