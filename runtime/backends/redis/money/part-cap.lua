-- part-cap: a partition's copy of a budget spread over partitions (partitioned.ts, caps.lua). The
-- copy is an ordinary budget under the partition's prefix — admit, settle and lease charge it as
-- any other — whose ceiling is the partition's cap.
--
-- KEYS[1] the partition's scopes (or rates) index, KEYS[2] the copy. ARGV after the shared context:
-- the spec a missing copy is created with (scope id kind owner 0 window), then the mode:
--   add <total granted> <limit or ''> <epoch>: catches up with what the home granted it (creating
--     it) and opens its ceiling to its whole cap (not for a grant older than the copy's epoch); a rate limit's copy records the limit its cap was granted under
--     (includes/rate.lua). Replies the new ceiling.
--   trim <total granted> <0|1|over> <epoch or ''>: catches up as add does, then gives back the cap
--     the copy has neither spent in its window nor holds (or takes over what it spent past it), and
--     lowers its ceiling to the same (to 0 with 1, a new ceiling, recording its epoch; with `over`
--     only what it spent past its cap is taken over). Replies the totals it ever gave back and took
--     over.
--   frozen <0|1> <version>: sets the copy's frozen flag (creating it) unless a newer version set
--     it. Replies 1 if it changed it.

--- @include "includes/context.lua"
--- @include "includes/budget.lua"

local key = KEYS[2]
local mode, value = ARGV[ARG0 + 7], ARGV[ARG0 + 8]

-- The copy's cap as the home counts it: what it received (`capG`, the home's total granted when last
-- heard), less what it gave back (`capR`), plus what it took over (`capX`: spent past its cap). A
-- total granted above capG is a grant whose add was lost: it arrives with the next add or trim.
-- Its ceiling (what it admits up to) is never more than its cap.
local function totals(b, granted)
  local got = micros(b.h.capG or '0', key .. ' capG')
  if granted > got then
    got = granted
  end
  local gave = micros(b.h.capR or '0', key .. ' capR')
  local took = micros(b.h.capX or '0', key .. ' capX')
  return got, gave, took, got - gave + took
end

if mode == 'add' then
  local b = ensureBudget(2, KEYS[1], ARG0 + 1)
  -- A copy made by an admission took the default spec; the home's owner and window (in the spec
  -- here) replace it while the copy has neither spent nor held anything.
  if b.window ~= ARGV[ARG0 + 6] and b.spent == 0 and b.reserved == 0 then
    redis.call('HSET', key, 'window', ARGV[ARG0 + 6], 'owner', ARGV[ARG0 + 4], 'wk', '', 'spent', '0')
  end
  local got, _, _, cap = totals(b, micros(value, 'total granted'))
  -- A grant opens the copy up to its whole cap — unless it was made before the last new ceiling
  -- (its epoch is older than the copy's): then the copy only counts it, and asks again.
  local epoch = micros(ARGV[ARG0 + 10], 'epoch')
  local ceiling = epoch >= micros(b.h.capE or '0', key .. ' capE') and cap or math.min(b.ceiling, cap)
  redis.call('HSET', key, 'ceiling', int(ceiling), 'capG', int(got), 'updatedAt', int(CTX.now))
  if ARGV[ARG0 + 9] ~= '' then
    redis.call('HSET', key, 'limit', ARGV[ARG0 + 9])
  end
  return int(ceiling)
end
local b = loadBudget(key)
if mode == 'trim' then
  if b == nil then
    if value == '0' and ARGV[ARG0 + 9] ~= '1' then
      return { '0', '0' }
    end
    -- Made now: a grant it never received must not arrive later, and a new ceiling holds here too.
    b = ensureBudget(2, KEYS[1], ARG0 + 1)
  end
  local got, gave, took, cap = totals(b, micros(value, 'total granted'))
  -- The cap keeps what is spent in the window and held: the rest goes back, and spend past it (an
  -- overrun, a correction) is taken over, so the home counts it. The ceiling drops to the same, or
  -- to 0 when hard (a new ceiling at home: the copy asks again before admitting).
  local used = b.spent + b.reserved
  local how = ARGV[ARG0 + 9]
  if how == 'over' then
    -- Only what was spent past the cap is reported (an overrun): the idle cap stays.
    if used > cap then
      took = took + used - cap
      redis.call('HSET', key, 'capG', int(got), 'capX', int(took), 'updatedAt', int(CTX.now))
    end
    return { int(gave), int(took) }
  end
  if cap > used then
    gave = gave + cap - used
  else
    took = took + used - cap
  end
  local ceiling = math.min(b.ceiling, used)
  local fields = { 'capG', int(got), 'capR', int(gave), 'capX', int(took), 'updatedAt', int(CTX.now) }
  if how == '1' then
    -- Epochs only move forward: a new ceiling's trim that arrives late does not undo a newer one.
    ceiling = 0
    local epoch = micros(ARGV[ARG0 + 10], 'epoch')
    if epoch > micros(b.h.capE or '0', key .. ' capE') then
      table.insert(fields, 'capE')
      table.insert(fields, int(epoch))
    end
  end
  redis.call('HSET', key, 'ceiling', int(ceiling), unpack(fields))
  return { int(gave), int(took) }
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
