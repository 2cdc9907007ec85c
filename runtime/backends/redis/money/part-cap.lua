-- part-cap: a partition's copy of a budget spread over partitions (partitioned.ts, caps.lua). The
-- copy is an ordinary budget under the partition's prefix — admit, settle and lease charge it as
-- any other — whose ceiling is the partition's cap.
--
-- KEYS[1] the partition's scopes (or rates) index, KEYS[2] the copy. ARGV after the shared context:
-- the spec a missing copy is created with (scope id kind owner 0 window), then the mode:
--   add <total granted> <limit or ''>: catches up with what the home granted it (creating it) and
--     opens its ceiling to its whole cap; a rate limit's copy records the limit its cap was granted under
--     (includes/rate.lua). Replies the new ceiling.
--   trim <total granted> <hard 0|1>: catches up as add does, then gives back the cap the copy has
--     neither spent in its window nor holds, and lowers its ceiling to the same (to 0 when hard).
--     Replies the total it ever gave back.
--   frozen <0|1> <version>: sets the copy's frozen flag (creating it) unless a newer version set
--     it. Replies 1 if it changed it.

--- @include "includes/context.lua"
--- @include "includes/budget.lua"

local key = KEYS[2]
local mode, value = ARGV[ARG0 + 7], ARGV[ARG0 + 8]

-- The copy's cap as the home counts it is what it received (`capG`, the home's total granted when
-- last heard) less what it gave back (`capR`); its ceiling (what it admits up to) is never more. A
-- total granted above capG adds the difference to both: a grant whose add was lost arrives with
-- the next one.
local function catchUp(b, granted)
  local got = micros(b.h.capG or '0', key .. ' capG')
  if granted > got then
    b.ceiling = b.ceiling + granted - got
    got = granted
  end
  return got
end

-- What the home counts for the copy.
local function capOf(b, got)
  return got - micros(b.h.capR or '0', key .. ' capR')
end

if mode == 'add' then
  local b = ensureBudget(2, KEYS[1], ARG0 + 1)
  -- A copy made by an admission took the default spec; the home's owner and window (in the spec
  -- here) replace it while the copy has neither spent nor held anything.
  if b.window ~= ARGV[ARG0 + 6] and b.spent == 0 and b.reserved == 0 then
    redis.call('HSET', key, 'window', ARGV[ARG0 + 6], 'owner', ARGV[ARG0 + 4], 'wk', '', 'spent', '0')
  end
  -- A grant opens the copy up to its whole cap (after a lowered ceiling it admitted nothing, and
  -- the home granted it only under the new ceiling).
  local got = catchUp(b, micros(value, 'total granted'))
  b.ceiling = capOf(b, got)
  redis.call('HSET', key, 'ceiling', int(b.ceiling), 'capG', int(got), 'updatedAt', int(CTX.now))
  if ARGV[ARG0 + 9] ~= '' then
    redis.call('HSET', key, 'limit', ARGV[ARG0 + 9])
  end
  return int(b.ceiling)
end
local b = loadBudget(key)
if mode == 'trim' then
  if b == nil then
    if value == '0' then
      return '0'
    end
    -- Granted a cap it never received: made now, so that the lost add, if it comes, adds nothing.
    b = ensureBudget(2, KEYS[1], ARG0 + 1)
  end
  local got = catchUp(b, micros(value, 'total granted'))
  local gave = micros(b.h.capR or '0', key .. ' capR')
  local used = b.spent + b.reserved
  -- The cap keeps what is spent in the window and held; the rest goes back. The ceiling drops to
  -- the same, or to 0 with `hard` (a lowered ceiling at home: the copy asks again before admitting).
  local cap = capOf(b, got)
  local keep = math.min(cap, used)
  local ceiling = ARGV[ARG0 + 9] == '1' and 0 or math.min(b.ceiling, keep)
  gave = gave + cap - keep
  redis.call('HSET', key, 'ceiling', int(ceiling), 'capG', int(got), 'capR', int(gave), 'updatedAt', int(CTX.now))
  return int(gave)
end
if mode == 'frozen' and (value == '0' or value == '1') then
  -- Created if missing, so that a cap granted just before a freeze cannot make an unfrozen copy.
  -- Only a newer version (mirror.lua) changes the flag: two operators' writes arriving out of
  -- order leave the later home state.
  local copy = ensureBudget(2, KEYS[1], ARG0 + 1)
  local version = micros(ARGV[ARG0 + 9], 'version')
  if version <= micros(copy.h.fv or '0', key .. ' fv') then
    return 0
  end
  redis.call('HSET', key, 'frozen', value, 'fv', int(version), 'updatedAt', int(CTX.now))
  return 1
end
return redis.error_reply('ERR part-cap: bad mode ' .. tostring(mode))
