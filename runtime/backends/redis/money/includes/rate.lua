-- Rate limits (runtime/store/rates.ts): budgets whose scope is a rate key (`team:x#requests/1m`),
-- kind `rate`, rolling windows, indexed in {prefix}:rates rather than the scopes index (they are
-- not money budgets). A reservation keeps its holds in its field `rates`
-- (`<budget id>:<unit>:<amount>`, space separated); settle, release and expiry close them.

-- When the rolling window will have room for `amount` more (rates.ts rateRetryAt): the time the
-- oldest buckets have left by then; false when time alone cannot make room.
local function rateRetryAt(b, limit, amount)
  if amount > limit then
    return false
  end
  local n, unit = string.match(b.window, '^(%d+)([mhd])$')
  local bucketMs = tonumber(n) * UNIT_MS[unit] / ROLLING_BUCKETS
  local first = b.bucket - ROLLING_BUCKETS
  local buckets = {}
  for field, v in pairs(b.h) do
    local i = string.match(field, '^r:(%-?%d+)$')
    if i and tonumber(i) >= first then
      table.insert(buckets, { tonumber(i), tonumber(v) })
    end
  end
  table.sort(buckets, function(x, y)
    return x[1] < y[1]
  end)
  local excess = b.spent + b.reserved + amount - limit
  for _, x in ipairs(buckets) do
    excess = excess - x[2]
    if excess <= 0 then
      return (x[1] + ROLLING_BUCKETS + 1) * bucketMs
    end
  end
  return false
end

-- Checks the `m` rate limits at KEYS[keyAt..] with their arguments at ARGV[argAt..] (rate key, id,
-- limit, window, amount, unit each), creating a missing budget (indexed in indexKey) and taking
-- the given limit as the one in force. Reserves nothing. Returns the holds, or nil and the
-- refusal reply {'rate_limited', budget..., amount, retryAt or ''}.
local function checkRates(keyAt, argAt, m, indexKey)
  local holds = {}
  for i = 1, m do
    local a = argAt + (i - 1) * 6
    local key = KEYS[keyAt + i - 1]
    -- A partition's copy (partitioned.ts) gets '~<limit>': its ceiling is its cap (caps.lua), kept;
    -- a copy whose cap was granted under another limit refuses, so the caller asks the home again.
    local given, configured = ARGV[a + 2], nil
    if string.sub(given, 1, 1) == '~' then
      configured, given = string.sub(given, 2), nil
    end
    local b = loadBudget(key)
    if b == nil then
      createBudget(key, indexKey, ARGV[a], ARGV[a + 1], 'rate', 'rate-limit', given or '0', ARGV[a + 3])
      b = loadBudget(key)
    elseif given and b.ceiling ~= tonumber(given) then
      redis.call('HSET', key, 'ceiling', given)
      b.ceiling = tonumber(given)
    end
    local limit = b.ceiling
    local amount = tonumber(ARGV[a + 4])
    if (configured and b.h.limit ~= configured) or b.spent + b.reserved + amount > limit then
      local reply = budgetReply(b)
      table.insert(reply, 1, 'rate_limited')
      table.insert(reply, int(amount))
      local at = rateRetryAt(b, limit, amount)
      table.insert(reply, at and int(at) or '')
      return nil, reply
    end
    holds[i] = { b = b, id = ARGV[a + 1], unit = ARGV[a + 5], amount = amount }
  end
  return holds
end

-- Reserves the holds; returns them as the reservation stores them.
local function reserveRates(holds)
  local parts = {}
  for i, h in ipairs(holds) do
    redis.call('HSET', h.b.key, 'reserved', int(h.b.reserved + h.amount), 'updatedAt', int(CTX.now))
    parts[i] = h.id .. ':' .. h.unit .. ':' .. int(h.amount)
  end
  return table.concat(parts, ' ')
end

-- The units a settled call used (rates.ts unitsOf): cache reads are not input, and a finished
-- call is no longer concurrent.
local function usedUnits(unit, input, cw5m, cw1h, output)
  if unit == 'requests' then
    return 1
  elseif unit == 'input_tokens' then
    return input + cw5m + cw1h
  elseif unit == 'output_tokens' then
    return output
  end
  return 0
end

-- Closes a reservation's holds: each charged units(unit, amount), its reservation freed. The
-- budget keys derive from the stored ids, under the prefix's hash tag (one cluster slot).
local function closeRates(text, units)
  for _, part in ipairs(split(text)) do
    local id, unit, amount = string.match(part, '^([^:]+):([^:]+):(%d+)$')
    if not id then
      corrupt('rate hold = ' .. part)
    end
    local b = loadBudget(CTX.prefix .. ':b:' .. id)
    if b then
      charge(b, units(unit, tonumber(amount)), tonumber(amount))
    end
  end
end
