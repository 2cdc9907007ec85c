-- append: a ledger entry that holds no reservation (a refusal), with its spend rollup.
-- KEYS[1] ledger stream, KEYS[2] the day's spend rollup, KEYS[3..] ledger indexes.
-- ARGV after the shared context: entry JSON, entry time, rollup field ('' for none), cost, input,
-- cw5m, cw1h, cacheRead, output.

--- @include "includes/context.lua"
--- @include "includes/ledger.lua"

local indexKeys = {}
for i = 3, #KEYS do
  table.insert(indexKeys, KEYS[i])
end
appendLedger(KEYS[1], ARGV[ARG0 + 1], tonumber(ARGV[ARG0 + 2]), indexKeys)
local v = {}
for i = 4, 9 do
  v[#v + 1] = tonumber(ARGV[ARG0 + i])
end
rollUp(KEYS[2], ARGV[ARG0 + 3], { v[1], 1, v[2], v[3], v[4], v[5], v[6] })
return 'ok'
