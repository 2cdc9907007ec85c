-- budgets: reads budgets in their current window. KEYS = budget keys; replies one budget (or false
-- when missing) per key. A corrupt budget fails the whole read.

--- @include "includes/context.lua"
--- @include "includes/budget.lua"

local out = {}
for i, key in ipairs(KEYS) do
  local b = loadBudget(key)
  out[i] = b and budgetReply(b) or false
end
return out
