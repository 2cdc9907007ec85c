-- set-budget: an operator changes a budget's ceiling or frozen flag; the audit entry with the value
-- before and after is written in the same script. A missing budget is first created from its spec.
-- KEYS[1] scopes index, KEYS[2] the budget, KEYS[3] audit stream, KEYS[4] audit index,
-- KEYS[5] the target's audit index. ARGV after the shared context: scope id kind owner ceiling window
-- (spec if missing), field ('ceiling' or 'frozen'), new value, audit entry JSON without before/after.
-- Replies the budget after the change.

--- @include "includes/context.lua"
--- @include "includes/budget.lua"
--- @include "includes/audit.lua"

local b = ensureBudget(2, KEYS[1], ARG0 + 1)
local field, value, head = ARGV[ARG0 + 7], ARGV[ARG0 + 8], ARGV[ARG0 + 9]
local before, after
if field == 'ceiling' then
  micros(value, 'new ceiling')
  before, after = '{"ceiling":' .. int(b.ceiling) .. '}', '{"ceiling":' .. value .. '}'
elseif field == 'frozen' and (value == '0' or value == '1') then
  local was = b.frozen and 'true' or 'false'
  before, after = '{"frozen":' .. was .. '}', '{"frozen":' .. (value == '1' and 'true' or 'false') .. '}'
else
  return redis.error_reply('ERR set-budget: bad field ' .. tostring(field))
end
redis.call('HSET', b.key, field, value, 'updatedAt', int(CTX.now))
appendAudit(KEYS[3], KEYS[4], KEYS[5], auditJson(head, before, after), CTX.now)
return budgetReply(loadBudget(b.key))
