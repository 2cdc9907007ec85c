-- Budgets: hash {prefix}:b:<id> with id scope kind owner ceiling window frozen reserved createdAt
-- updatedAt; calendar and total windows keep their spend in `spent` for the window named by `wk`
-- (an older `wk` reads as 0), rolling windows in fields r:<bucket> (see runtime/store/windows.ts:
-- the current bucket plus the 24 before it, each duration/24 long).
local ROLLING_BUCKETS = 24
local UNIT_MS = { m = 60000, h = 3600000, d = 86400000 }

-- Reads and checks a budget and works out its spend in the window CTX.now falls in.
local function loadBudget(key)
  local h = hash(key)
  if h == nil then
    return nil
  end
  local what = 'budget ' .. tostring(h.scope)
  if type(h.id) ~= 'string' or type(h.scope) ~= 'string' then
    corrupt(key .. ' has no id or scope')
  end
  local b = { key = key, h = h, id = h.id, scope = h.scope, owner = h.owner or '', window = h.window }
  b.ceiling = micros(h.ceiling, what .. ' ceiling')
  b.reserved = micros(h.reserved, what .. ' reserved')
  b.createdAt = micros(h.createdAt, what .. ' createdAt')
  b.updatedAt = micros(h.updatedAt, what .. ' updatedAt')
  if h.frozen ~= '0' and h.frozen ~= '1' then
    corrupt(what .. ' frozen = ' .. tostring(h.frozen))
  end
  b.frozen = h.frozen == '1'
  local w = h.window
  if w == 'day' or w == 'month' then
    local cal = CTX[w]
    b.wk, b.start, b.resets = cal.key, cal.start, cal.resets
    b.spent = (h.wk == cal.key) and micros(h.spent, what .. ' spent') or 0
  elseif w == 'total' then
    b.wk, b.start, b.resets = 'total', 0, nil
    b.spent = (h.wk == 'total') and micros(h.spent, what .. ' spent') or 0
  else
    local n, unit = string.match(w or '', '^([1-9]%d?%d?%d?%d?%d?)([mhd])$')
    if not n then
      corrupt(what .. ' window = ' .. tostring(w))
    end
    local bucketMs = tonumber(n) * UNIT_MS[unit] / ROLLING_BUCKETS
    local bucket = math.floor(CTX.now / bucketMs)
    local first = bucket - ROLLING_BUCKETS
    b.rolling, b.bucket = true, bucket
    b.start, b.resets = first * bucketMs, (bucket + 1) * bucketMs
    b.spent, b.stale = 0, {}
    for field, v in pairs(h) do
      local i = string.match(field, '^r:(%-?%d+)$')
      if i then
        if tonumber(i) >= first then
          b.spent = b.spent + micros(v, what .. ' ' .. field)
        else
          table.insert(b.stale, field)
        end
      end
    end
  end
  return b
end

-- Creates a missing budget (spec from ARGV: scope id kind owner ceiling window) and indexes its scope.
local function createBudget(key, scopesKey, scope, id, kind, owner, ceiling, window)
  local now = int(CTX.now)
  redis.call('HSET', key, 'id', id, 'scope', scope, 'kind', kind, 'owner', owner, 'ceiling', ceiling,
    'window', window, 'frozen', '0', 'reserved', '0', 'wk', '', 'spent', '0', 'createdAt', now, 'updatedAt', now)
  redis.call('ZADD', scopesKey, 0, scope)
end

-- The budget at KEYS[keyIndex], created from the six spec arguments at ARGV[specAt..] if missing.
local function ensureBudget(keyIndex, scopesKey, specAt)
  local key = KEYS[keyIndex]
  local b = loadBudget(key)
  if b == nil then
    createBudget(key, scopesKey, ARGV[specAt], ARGV[specAt + 1], ARGV[specAt + 2], ARGV[specAt + 3],
      ARGV[specAt + 4], ARGV[specAt + 5])
    b = loadBudget(key)
  end
  return b
end

-- Adds `cost` to the current window and frees `release` of a reservation.
local function charge(b, cost, release)
  local key = b.key
  local reserved = b.reserved - release
  if reserved < 0 then
    reserved = 0
  end
  if b.rolling then
    if cost > 0 then
      redis.call('HINCRBY', key, 'r:' .. int(b.bucket), int(cost))
    end
    if #b.stale > 0 then
      redis.call('HDEL', key, unpack(b.stale))
    end
    redis.call('HSET', key, 'reserved', int(reserved), 'updatedAt', int(CTX.now))
  else
    -- b.spent is this window's spend (0 if `wk` names an older window), read in this same script.
    redis.call('HSET', key, 'wk', b.wk, 'spent', int(b.spent + cost), 'reserved', int(reserved), 'updatedAt',
      int(CTX.now))
  end
end

local function budgetReply(b)
  local state = 'active'
  if b.frozen then
    state = 'frozen'
  elseif b.spent >= b.ceiling then
    state = 'exhausted'
  end
  return { b.id, b.scope, b.owner, int(b.ceiling), b.window, state, int(b.spent), int(b.reserved),
    int(b.start), b.resets and int(b.resets) or '', int(b.createdAt), int(b.updatedAt) }
end
