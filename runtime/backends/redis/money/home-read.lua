-- home-read: reads a hash at a partitioned store's home (partitioned.ts) with a new version from
-- the home's counter, in one step: what partitions are then told carries the order of the reads.
-- KEYS[1] the counter, KEYS[2] the hash. ARGV[1] a field, or '*' for all of them.
-- Replies {version, value or false} or {version, field, value, field, value, ...}.

local v = redis.call('INCR', KEYS[1])
if ARGV[1] == '*' then
  local out = redis.call('HGETALL', KEYS[2])
  table.insert(out, 1, v)
  return out
end
return { v, redis.call('HGET', KEYS[2], ARGV[1]) }
