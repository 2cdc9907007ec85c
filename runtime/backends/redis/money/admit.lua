-- admit: kill switches, missing budgets and the all-or-nothing reservation, in one atomic step.
--
-- KEYS[1] kills hash, KEYS[2] rexp (open reservations by expiry), KEYS[3] scopes index,
-- KEYS[4] ledger stream, KEYS[5] the new reservation, KEYS[6..] one budget per scope, widest first,
-- then (with rate limits) the rates index and one budget per rate limit.
-- ARGV after the shared context: reservation id, amount, expiresAt, identity JSON, requestId, kind,
-- name, provider, lease upTo, lease share (0 0: not a lease), then per scope: scope id kind owner
-- ceiling window (the spec a missing budget is created with), then per rate limit: rate key, id,
-- limit, window, amount, unit; last, the number of rate limits (includes/rate.lua).
--
-- A lease (runtime/store/leases.ts) reserves more than the call's amount: up to upTo, no more than
-- the tightest budget's room divided by share nor half its unspent room less its reserve, never
-- less than the amount (the same arithmetic as leaseGrant in runtime/store/lease-ops.ts).
--
-- Replies {'ok', granted} | {'killed', killJson} | {'refused', budget...} | {'rate_limited', budget..., amount, retryAt}.

--- @include "includes/context.lua"
--- @include "includes/budget.lua"
--- @include "includes/ledger.lua"
--- @include "includes/rate.lua"
--- @include "includes/reservation.lua"

local SWEEP_IN_ADMIT = 8
local killsKey, rexpKey, scopesKey, streamKey, resKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local resId = ARGV[ARG0 + 1]
local amount = tonumber(ARGV[ARG0 + 2])
local expiresAt = ARGV[ARG0 + 3]
local upTo = tonumber(ARGV[ARG0 + 9])
local share = tonumber(ARGV[ARG0 + 10])
local SPECS = ARG0 + 11
-- Rate limits come last (includes/rate.lua): their count, then the rates index and their budgets.
local m = tonumber(ARGV[#ARGV])
local n = #KEYS - 5 - (m > 0 and m + 1 or 0)

-- Reservations whose callers died would otherwise hold budget until the next sweep.
expireDue(rexpKey, streamKey, SWEEP_IN_ADMIT)

local scopes = {}
for i = 1, n do
  scopes[i] = ARGV[SPECS + (i - 1) * 6]
end

-- Kill switches first, widest scope first.
local kills = redis.call('HMGET', killsKey, unpack(scopes))
for i = 1, n do
  if kills[i] then
    return { 'killed', kills[i] }
  end
end

local budgets = {}
local room, spare = nil, nil
for i = 1, n do
  local b = ensureBudget(5 + i, scopesKey, SPECS + (i - 1) * 6)
  if b.frozen or b.spent + b.reserved + amount > b.ceiling then
    local reply = budgetReply(b)
    table.insert(reply, 1, 'refused')
    return reply
  end
  local left = b.ceiling - b.spent - b.reserved
  if room == nil or left < room then
    room = left
  end
  -- Slices hold at most half of a budget's unspent room (lease-ops.ts, leaseGrant).
  local free = math.floor((b.ceiling - b.spent) / 2) - b.reserved
  if spare == nil or free < spare then
    spare = free
  end
  budgets[i] = b
end
if share > 0 then
  local grant = math.min(upTo, math.floor(room / share), spare)
  if grant > amount then
    amount = grant
  end
end

-- Rate limits: after the money (a budget refusal is final, a rate one passes), reserved with it.
local holds = {}
if m > 0 then
  local refusal
  holds, refusal = checkRates(7 + n, SPECS + n * 6, m, KEYS[6 + n])
  if refusal then
    return refusal
  end
end

local ids = {}
for i, b in ipairs(budgets) do
  redis.call('HSET', b.key, 'reserved', int(b.reserved + amount), 'updatedAt', int(CTX.now))
  ids[i] = b.id
end
redis.call('HSET', resKey, 'amount', int(amount), 'scopes', table.concat(scopes, ' '), 'ids',
  table.concat(ids, ' '), 'identity', ARGV[ARG0 + 4], 'requestId', ARGV[ARG0 + 5], 'kind', ARGV[ARG0 + 6],
  'name', ARGV[ARG0 + 7], 'provider', ARGV[ARG0 + 8], 'createdAt', int(CTX.now), 'expiresAt', expiresAt, 'status', 'open')
if m > 0 then
  redis.call('HSET', resKey, 'rates', reserveRates(holds))
end
redis.call('ZADD', rexpKey, expiresAt, resId)
return { 'ok', int(amount) }
