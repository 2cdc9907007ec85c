-- ensure: creates a budget if missing; replies it either way.
-- KEYS[1] scopes index, KEYS[2] the budget. ARGV after the shared context: scope id kind owner
-- ceiling window.

--- @include "includes/context.lua"
--- @include "includes/budget.lua"

return budgetReply(ensureBudget(2, KEYS[1], ARG0 + 1))
