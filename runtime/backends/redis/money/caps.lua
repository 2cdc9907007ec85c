-- caps: the home of a budget spread over partitions (partitioned.ts). The home keeps the budget's
-- real ceiling and frozen flag (its budget hash under the home prefix, never charged) and, in
-- {prefix}:cap:<id>, how much of that ceiling each partition may fill (its cap): per partition the
-- total ever granted (`p3:g`), given back (`p3:r`) and taken over (`p3:x`: spent past its cap, an
-- overrun or a correction), so that a grant or a take-back whose second half was lost (the process
-- died between the two steps) is caught up by the next one; and `e`, the epoch of the last new
-- ceiling (a grant from before it does not open a copy: part-cap.lua). A partition admits
-- against its own copy of the budget, whose ceiling is its cap (part-cap.lua). The caps never sum
-- past the ceiling and a copy's ceiling never exceeds its cap (a cap grows here before its copy,
-- and shrinks in its copy before here), so the partitions together never pass the ceiling.
--
-- KEYS[1] the scopes (or rates) index, KEYS[2] the home budget, KEYS[3] its caps hash.
-- ARGV after the shared context: the spec a missing budget is created with (scope id kind owner
-- ceiling window), then the mode and its arguments:
--   grow <partition> <want> <rate limit or ''>: grants the partition what its cap lacks of `want`
--     (the ceiling its copy needs for the call) and half of what is left after it. Replies {'ok', granted, owner, window} | {'frozen', budget...} | {'short', free, budget...}.
--     A rate limit's configured limit replaces the stored one, as in includes/rate.lua.
--   shrink <partition> <by>: takes `by` off the partition's cap. Replies the cap left.

--- @include "includes/context.lua"
--- @include "includes/budget.lua"

local capsKey = KEYS[3]
local mode, part = ARGV[ARG0 + 7], ARGV[ARG0 + 8]

-- A running total of the caps hash: only ever raised (a stale report changes nothing).
local function raise(field, total)
  local was = redis.call('HGET', capsKey, field)
  if was == false or micros(was, capsKey .. ' ' .. field) < total then
    redis.call('HSET', capsKey, field, int(total))
  end
end

if mode == 'shrink' then
  raise(part .. ':r', micros(ARGV[ARG0 + 9], 'cap given back'))
  raise(part .. ':x', micros(ARGV[ARG0 + 10], 'cap taken over'))
  return 1
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
-- What the caps hold: every partition's granted, less given back, plus taken over (spent past its
-- cap: an overrun, a correction); and this partition's part of it.
local given, counted, epoch = 0, 0, '0'
local raw = redis.call('HGETALL', capsKey)
for i = 1, #raw, 2 do
  local field = raw[i]
  if field == 'e' then
    epoch = raw[i + 1]
  else
    local n = micros(raw[i + 1], capsKey .. ' ' .. field)
    if string.sub(field, -2) == ':r' then
      n = -n
    end
    given = given + n
    if string.sub(field, 1, #part + 1) == part .. ':' then
      counted = counted + n
    end
  end
end
-- `want` is the ceiling the partition's copy needs to admit the call: what the home already counts
-- for it covers part of that.
local want = tonumber(ARGV[ARG0 + 9])
local need = math.max(0, want - counted)
local free = b.ceiling - given
if free < need then
  local reply = budgetReply(b)
  table.insert(reply, 1, int(math.max(free, 0)))
  table.insert(reply, 1, 'short')
  return reply
end
local grant = need + math.floor((free - need) / 2)
local granted = redis.call('HINCRBY', capsKey, part .. ':g', grant)
return { 'ok', int(grant), b.owner, b.window, int(granted), epoch }
