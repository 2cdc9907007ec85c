-- mirror: a partition's copy of the home's kill switches (partitioned.ts). Every write carries a
-- version (a counter at the home, taken when the home was read), and a scope is only changed by a
-- newer one, so that two operators' writes arriving out of order leave the later home state.
--
-- KEYS[1] the partition's kills hash, KEYS[2] the version each scope was last written at.
-- ARGV[1] the version, then (scope, kill JSON or '' to lift) pairs; a last argument '*' also lifts
-- every scope not named (the whole set as the home had it).

local v = tonumber(ARGV[1])
local full = ARGV[#ARGV] == '*'
local last = full and #ARGV - 1 or #ARGV
local named = {}

local function put(scope, json)
  local was = tonumber(redis.call('HGET', KEYS[2], scope) or '0')
  if v <= was then
    return
  end
  if json == '' then
    redis.call('HDEL', KEYS[1], scope)
  else
    redis.call('HSET', KEYS[1], scope, json)
  end
  redis.call('HSET', KEYS[2], scope, v)
end

for i = 2, last, 2 do
  named[ARGV[i]] = true
  put(ARGV[i], ARGV[i + 1])
end
if full then
  for _, scope in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not named[scope] then
      put(scope, '')
    end
  end
end
return 1
