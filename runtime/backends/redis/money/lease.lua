-- lease: steps on reservations held as budget leases (runtime/store/leases.ts), all in one atomic
-- step, in order. Per step: charge a call admitted from the lease (its cost spent on the lease's
-- budgets and taken from what the lease holds, its ledger entry appended and rolled up), free part
-- of what is left, move the expiry, close (free the rest). A returned or unknown lease still gets
-- its entries charged — to the identity's budgets, created if missing — so no cost is lost; an
-- expired one was charged everything it held when it expired, which stands (its entry is returned).
--
-- KEYS[1] rexp, KEYS[2] scopes index, KEYS[3] ledger stream: the other keys are derived from the
-- reservations and entries under the same hash tag (one slot).
-- ARGV after the shared context: the batch's identities — their number, then per identity n and
-- its n scope specs (scope id kind owner ceiling window, 6 fields each) — then the number of steps,
-- then per step 18 fields: reservation id, has entry (0/1), cost, the call's reserved, the entry's
-- JSON as the ledger keeps it (reserved and overrun included), entry time, rollup day ('' for none), rollup field, input, cw5m, cw1h,
-- cacheRead, output, free, expiresAt ('' unchanged), close (0/1), call ('' for none), and the
-- entry's identity (its place in the identities, from 1; 0 for none). The steps' fields come as
-- one argument, each field ended by a NUL byte (one string is far cheaper for the client to send
-- than thousands of arguments; no field holds a NUL: JSON escapes it, the caller checks the rest).
--
-- A call is charged once per lease: {prefix}:lc:<reservation> is the set of calls charged from it,
-- kept as long as a closed reservation is, so a step repeated (a batch retried after a timeout, a
-- journal replayed after a crash) charges nothing twice.
--
-- What a batch writes is summed before it is written: each budget is read and written once per batch
-- (its spend and reserve moved by the sum of the batch's charges and frees), each reservation's
-- amount once, each ledger index gets one ZADD of all its new entries, each rollup field one
-- HINCRBY. No command is per call: a lease's calls are checked with one SMISMEMBER and added with
-- one SADD, and the batch's entries are packed into one stream entry (a field `e` each, up to PACK
-- of them) whose index members carry the entry's place in it (`<ms>-<seq>-<i>`, see keys.ts).
--
-- Replies one {status, held, entryJson, repeated} per step: status 'open', 'closed' (returned or
-- unknown) or 'expired'; entryJson is the expired entry for 'expired' ('' otherwise: the caller
-- knows what it sent); repeated '1' when the call had been charged before.

--- @include "includes/context.lua"
--- @include "includes/budget.lua"
--- @include "includes/ledger.lua"
--- @include "includes/reservation.lua"

-- The include's charge of one budget; `charge` below adds to the batch's sums.
local chargeBudget = charge
local rexpKey, scopesKey, streamKey = KEYS[1], KEYS[2], KEYS[3]
local replies = {}
-- The identities: where each one's specs start, and how many.
local idents = {}
local at = ARG0 + 2
for i = 1, tonumber(ARGV[ARG0 + 1]) do
  local n = tonumber(ARGV[at])
  idents[i] = { at = at + 1, n = n }
  at = at + 1 + n * 6
end
local S, nS = {}, 0
do
  local packed, i = ARGV[at], 1
  local find, sub = string.find, string.sub
  while i <= #packed do
    local j = find(packed, '\0', i, true)
    nS = nS + 1
    S[nS] = sub(packed, i, j - 1)
    i = j + 1
  end
end
local steps = nS / 18
at = 1

-- The batch's sums, written at the end.
local budgets, budgetOrder = {}, {}
local reservations, reservationOrder = {}, {}
local indexes, indexOrder = {}, {}
local rollups, rollupOrder = {}, {}
local callSets = {}
-- The entries written, packed into stream entries at the end: { json, at, index keys }.
local entries = {}
local PACK = 500

-- The table of key `k` in one of the batch's sums, created (and its key remembered in order) on first use.
local function slot(map, order, k)
  local t = map[k]
  if t == nil then
    t = {}
    map[k] = t
    table.insert(order, k)
  end
  return t
end

-- A budget, read once per batch; nil if it does not exist.
local function budgetAt(bkey)
  local t = budgets[bkey]
  if t == nil then
    local b = loadBudget(bkey)
    t = b and { b = b, cost = 0, release = 0 } or false
    budgets[bkey] = t
    if b then
      table.insert(budgetOrder, bkey)
    end
  end
  return t or nil
end

local function budgetsOf(ids)
  local out = {}
  for _, bid in ipairs(split(ids)) do
    local t = budgetAt(CTX.prefix .. ':b:' .. bid)
    if t then
      table.insert(out, t)
    end
  end
  return out
end

local function reservationAt(resId)
  local c = reservations[resId]
  if c == nil then
    local key = CTX.prefix .. ':r:' .. resId
    c = { key = key, r = loadReservation(key), dirty = false }
    reservations[resId] = c
    table.insert(reservationOrder, resId)
  end
  return c
end

local function charge(list, cost, release)
  for _, t in ipairs(list) do
    t.cost = t.cost + cost
    t.release = t.release + release
  end
end

-- Per identity, its ledger index keys (built once); per day and per rollup field, their sums'
-- table and the field's metric names (built once).
local NO_IDENT = { at = 0, n = 0 }
local function indexKeysOf(ident)
  local keys = ident.keys
  if keys == nil then
    keys = {}
    for i = 1, ident.n do
      keys[i] = CTX.prefix .. ':li:' .. ARGV[ident.at + (i - 1) * 6]
    end
    ident.keys = keys
  end
  return keys
end
local rollupSums, rollupNames = {}, {}

-- Where each step's fields start.
local stepAt = {}
do
  local a = at
  for i = 1, steps do
    stepAt[i] = a
    a = a + 18
  end
end

-- Calls charged before (or twice in this batch): per lease, one SMISMEMBER of the batch's calls
-- and one SADD of the new ones. A call on an expired lease is not recorded (its entry stands).
local repeatedStep = {}
do
  local byLease, leaseOrder = {}, {}
  for i = 1, steps do
    local a = stepAt[i]
    if S[a + 1] == '1' and S[a + 16] ~= '' then
      local r = reservationAt(S[a]).r
      if not (r and r.status == 'expired') then
        table.insert(slot(byLease, leaseOrder, S[a]), i)
      end
    end
  end
  for _, resId in ipairs(leaseOrder) do
    local list = byLease[resId]
    local key = CTX.prefix .. ':lc:' .. resId
    local ids = {}
    for j, i in ipairs(list) do
      ids[j] = S[stepAt[i] + 16]
    end
    local fresh, seen = {}, {}
    for from = 1, #ids, 1000 do
      local found = redis.call('SMISMEMBER', key, unpack(ids, from, math.min(from + 999, #ids)))
      for j, v in ipairs(found) do
        local id = ids[from + j - 1]
        if v == 1 or seen[id] then
          repeatedStep[list[from + j - 1]] = true
        else
          seen[id] = true
          table.insert(fresh, id)
        end
      end
    end
    for from = 1, #fresh, 1000 do
      redis.call('SADD', key, unpack(fresh, from, math.min(from + 999, #fresh)))
    end
    if #fresh > 0 then
      callSets[key] = true
    end
  end
end

-- The step at `a`'s entry written: its cost charged to `list` (`charged` of it taken from the
-- lease), the entry queued for the stream and its indexes, its rollup summed. One function for
-- every step (no closure made per step).
local nEntries = 0
local function write(a, ident, cost, list, charged)
  charge(list, cost, charged)
  nEntries = nEntries + 1
  entries[nEntries] = { S[a + 4], tonumber(S[a + 5]), indexKeysOf(ident) }
  local day, field = S[a + 6], S[a + 7]
  if day ~= '' and field ~= '' then
    local sums = rollupSums[day]
    if sums == nil then
      sums = slot(rollups, rollupOrder, CTX.prefix .. ':sd:' .. day)
      rollupSums[day] = sums
    end
    local names = rollupNames[field]
    if names == nil then
      names = {}
      for i = 1, 7 do
        names[i] = field .. '\30' .. ROLLUP_METRICS[i]
      end
      rollupNames[field] = names
    end
    -- The rollup's values in ROLLUP_METRICS order: cost, calls, then the five token counts.
    if cost ~= 0 then
      sums[names[1]] = (sums[names[1]] or 0) + cost
    end
    sums[names[2]] = (sums[names[2]] or 0) + 1
    for i = 3, 7 do
      local v = tonumber(S[a + 5 + i])
      if v ~= 0 then
        local f = names[i]
        sums[f] = (sums[f] or 0) + v
      end
    end
  end
end

for step = 1, steps do
  at = stepAt[step]
  local resId = S[at]
  local hasEntry = S[at + 1] == '1'
  local cost = tonumber(S[at + 2])
  local free = tonumber(S[at + 13])
  local expiresAt = S[at + 14]
  local close = S[at + 15] == '1'
  local ident = idents[tonumber(S[at + 17])] or NO_IDENT
  local n, specs = ident.n, ident.at

  local c = reservationAt(resId)
  local r = c.r
  local repeated = '0'
  if repeatedStep[step] then
    repeated = '1'
    hasEntry = false
  end
  if r and r.status == 'expired' then
    table.insert(replies, { 'expired', '0', r.entry or '', '0' })
  elseif r == nil or r.status ~= 'open' then
    if hasEntry then
      local list = {}
      if cost > 0 then
        for i = 1, n do
          local s = specs + (i - 1) * 6
          local bkey = CTX.prefix .. ':b:' .. ARGV[s + 1]
          local t = budgetAt(bkey)
          if t == nil then
            createBudget(bkey, scopesKey, ARGV[s], ARGV[s + 1], ARGV[s + 2], ARGV[s + 3], ARGV[s + 4], ARGV[s + 5])
            budgets[bkey] = nil
            t = budgetAt(bkey)
          end
          table.insert(list, t)
        end
      end
      write(at, ident, cost, list, 0)
    end
    table.insert(replies, { 'closed', '0', '', repeated })
  else
    local held = r.amount
    local list = budgetsOf(r.ids)
    if hasEntry then
      local part = math.min(cost, held)
      write(at, ident, cost, list, part)
      held = held - part
    end
    local f = close and held or math.min(free, held)
    if f > 0 then
      charge(list, 0, f)
      held = held - f
    end
    r.amount = held
    if close then
      tombstone(c.key, rexpKey, resId, 'released', '{"lease":"returned"}')
      r.status = 'released'
      c.dirty = false
      table.insert(replies, { 'closed', '0', '', repeated })
    else
      c.dirty = true
      if expiresAt ~= '' then
        redis.call('HSET', c.key, 'expiresAt', expiresAt)
        redis.call('ZADD', rexpKey, expiresAt, resId)
      end
      table.insert(replies, { 'open', int(held), '', repeated })
    end
  end
end

-- The entries, PACK to a stream entry, each indexed as `<stream id>-<its place>`.
for from = 1, #entries, PACK do
  local last = math.min(from + PACK - 1, #entries)
  local fields = {}
  for j = from, last do
    fields[#fields + 1] = 'e'
    fields[#fields + 1] = entries[j][1]
  end
  local base = member(redis.call('XADD', streamKey, '*', unpack(fields)))
  for j = from, last do
    local e = entries[j]
    local m = base .. string.format('-%05d', j - from)
    for _, k in ipairs(e[3]) do
      local z = slot(indexes, indexOrder, k)
      table.insert(z, e[2])
      table.insert(z, m)
    end
  end
end

-- The sums, each key written once.
for _, bkey in ipairs(budgetOrder) do
  local t = budgets[bkey]
  if t and (t.cost ~= 0 or t.release ~= 0) then
    chargeBudget(t.b, t.cost, t.release)
  end
end
for _, resId in ipairs(reservationOrder) do
  local c = reservations[resId]
  if c.dirty then
    redis.call('HSET', c.key, 'amount', int(c.r.amount))
  end
end
for _, k in ipairs(indexOrder) do
  local z = indexes[k]
  for i = 1, #z, 1000 do
    redis.call('ZADD', k, unpack(z, i, math.min(i + 999, #z)))
  end
end
for _, rk in ipairs(rollupOrder) do
  for f, v in pairs(rollups[rk]) do
    redis.call('HINCRBY', rk, f, int(v))
  end
end
for k in pairs(callSets) do
  redis.call('PEXPIRE', k, TOMBSTONE_MS)
end
return replies
