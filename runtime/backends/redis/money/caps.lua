-- caps: the home of a budget spread over partitions (partitioned.ts). The home keeps the budget's
-- real ceiling and frozen flag (its budget hash under the home prefix, never charged) and, in
-- {prefix}:cap:<id>, how much of that ceiling each partition may fill (its cap). A partition admits
-- against its own copy of the budget, whose ceiling is its cap (part-cap.lua). The caps never sum
-- past the ceiling and a copy's ceiling never exceeds its cap (a cap grows here before its copy,
-- and shrinks in its copy before here), so the partitions together never pass the ceiling.
--
-- KEYS[1] the scopes (or rates) index, KEYS[2] the home budget, KEYS[3] its caps hash.
-- ARGV after the shared context: the spec a missing budget is created with (scope id kind owner
-- ceiling window), then the mode and its arguments:
--   grow <partition> <need> <rate limit or ''>: grants the partition `need` and half of what is
--     left after it. Replies {'ok', granted, owner, window} | {'frozen', budget...} | {'short', free, budget...}.
--     A rate limit's configured limit replaces the stored one, as in includes/rate.lua.
--   shrink <partition> <by>: takes `by` off the partition's cap. Replies the cap left.

--- @include "includes/context.lua"
--- @include "includes/budget.lua"

local capsKey = KEYS[3]
local mode, part = ARGV[ARG0 + 7], ARGV[ARG0 + 8]

if mode == 'shrink' then
  local left = redis.call('HINCRBY', capsKey, part, -tonumber(ARGV[ARG0 + 9]))
  if left < 0 then
    redis.call('HSET', capsKey, part, 0)
    left = 0
  end
  return left
end
if mode ~= 'grow' then
  return redis.error_reply('ERR caps: bad mode ' .. tostring(mode))
end

local b = ensureBudget(2, KEYS[1], ARG0 + 1)
local limit = ARGV[ARG0 + 10]
if limit ~= '' and tonumber(limit) ~= b.ceiling then
  redis.call('HSET', b.key, 'ceiling', limit)
  b.ceiling = micros(limit, 'rate limit')
end
if b.frozen then
  local reply = budgetReply(b)
  table.insert(reply, 1, 'frozen')
  return reply
end
local given = 0
for _, v in ipairs(redis.call('HVALS', capsKey)) do
  given = given + micros(v, capsKey)
end
local need = tonumber(ARGV[ARG0 + 9])
local free = b.ceiling - given
if free < need then
  local reply = budgetReply(b)
  table.insert(reply, 1, int(math.max(free, 0)))
  table.insert(reply, 1, 'short')
  return reply
end
local grant = need + math.floor((free - need) / 2)
redis.call('HINCRBY', capsKey, part, grant)
return { 'ok', int(grant), b.owner, b.window }
