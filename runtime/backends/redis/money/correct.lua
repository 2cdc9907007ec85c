-- correct: reconciliation's correction of an `expired` ledger entry to what the provider billed,
-- in one atomic step: the `corrected` entry (cost = billed − charged, written at the expired
-- entry's time so that day's spend carries it), the difference on each budget whose current
-- window still holds the original charge (a closed window is not reopened), and the request id's
-- mark, so a request is corrected once whichever process asks, however often.
--
-- KEYS[1] corrections hash (request id → correction JSON), KEYS[2] ledger stream, KEYS[3] the global
-- ledger index, KEYS[4] the spend rollup of the entry's day, KEYS[5..4+n] budgets of the entry's
-- identity, KEYS[5+n..] its ledger indexes.
-- ARGV after the shared context: expired entry id, its time, its request id, the cost it was
-- charged, the correction's JSON, its cost (the difference), the entry's day key and month key
-- (in the store's zone), the rollup field, n.
--
-- Replies {'corrected'} | {'done', correctionJson} | {'missing'} | {'changed', what}.

--- @include "includes/context.lua"
--- @include "includes/budget.lua"
--- @include "includes/ledger.lua"

local corrKey, streamKey, globalIndex, rollupKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local expiredId = ARGV[ARG0 + 1]
local at = tonumber(ARGV[ARG0 + 2])
local requestId = ARGV[ARG0 + 3]
local charged = tonumber(ARGV[ARG0 + 4])
local json = ARGV[ARG0 + 5]
local delta = tonumber(ARGV[ARG0 + 6])
local atDay, atMonth = ARGV[ARG0 + 7], ARGV[ARG0 + 8]
local rollupField = ARGV[ARG0 + 9]
local n = tonumber(ARGV[ARG0 + 10])

-- The expired entry as the ledger holds it (found by its time, picked by its id): the caller read
-- it before; what it was told must still be what is stored.
local stored
-- A member `<ms>-<seq>-<i>` is the i-th `e` of a packed stream entry (lease.lua).
for _, m in ipairs(redis.call('ZRANGEBYSCORE', globalIndex, at, at)) do
  local ms, seq, place = string.match(m, '^0*(%d+)%-0*(%d+)%-?(%d*)$')
  local got = redis.call('XRANGE', streamKey, ms .. '-' .. seq, ms .. '-' .. seq)
  local fields = got[1] and got[1][2] or {}
  local from, to = 1, #fields
  if place ~= '' then
    from = tonumber(place) * 2 + 1
    to = from
  end
  for i = from, to, 2 do
    if fields[i] == 'e' then
      local e = cjson.decode(fields[i + 1])
      if e.id == expiredId then
        stored = e
      end
    end
  end
  if stored then
    break
  end
end
if not stored then
  return { 'missing' }
end
if stored.outcome ~= 'expired' or stored.requestId ~= requestId or stored.cost ~= charged then
  return { 'changed', tostring(stored.outcome) }
end

local done = redis.call('HGET', corrKey, requestId)
if done then
  return { 'done', done }
end

if delta ~= 0 then
  for i = 1, n do
    local b = loadBudget(KEYS[4 + i])
    if b and b.rolling then
      local bucketMs = (b.resets - b.start) / (ROLLING_BUCKETS + 1)
      local bucket = math.floor(at / bucketMs)
      if bucket >= b.bucket - ROLLING_BUCKETS and bucket <= b.bucket then
        local field = 'r:' .. int(bucket)
        local v = tonumber(redis.call('HGET', b.key, field) or '0') + delta
        redis.call('HSET', b.key, field, int(v > 0 and v or 0), 'updatedAt', int(CTX.now))
      end
    elseif b then
      local same = (b.window == 'total' and b.h.wk == 'total')
        or (b.window == 'day' and atDay == CTX.day.key and b.h.wk == CTX.day.key)
        or (b.window == 'month' and atMonth == CTX.month.key and b.h.wk == CTX.month.key)
      if same then
        local v = b.spent + delta
        redis.call('HSET', b.key, 'spent', int(v > 0 and v or 0), 'updatedAt', int(CTX.now))
      end
    end
  end
end

local indexKeys = {}
for i = 5 + n, #KEYS do
  table.insert(indexKeys, KEYS[i])
end
appendLedger(streamKey, json, at, indexKeys)
rollUp(rollupKey, rollupField, { delta, 0, 0, 0, 0, 0, 0, 1, delta })
redis.call('HSET', corrKey, requestId, json)
return { 'corrected' }
