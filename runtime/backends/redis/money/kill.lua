-- kill: sets or lifts a kill switch and writes its audit entry (switch before and after) atomically.
-- KEYS[1] kills hash, KEYS[2] audit stream, KEYS[3] audit index, KEYS[4] the target's audit index.
-- ARGV after the shared context: 'set' or 'lift', scope, kill switch JSON (for set), audit entry JSON
-- without before/after. Replies 1 when something changed, 0 when there was nothing to lift.

--- @include "includes/context.lua"
--- @include "includes/audit.lua"

local mode, scope, kill, head = ARGV[ARG0 + 1], ARGV[ARG0 + 2], ARGV[ARG0 + 3], ARGV[ARG0 + 4]
local before = redis.call('HGET', KEYS[1], scope)
if mode == 'set' then
  redis.call('HSET', KEYS[1], scope, kill)
  appendAudit(KEYS[2], KEYS[3], KEYS[4], auditJson(head, before or 'null', kill), CTX.now)
  return 1
end
if not before then
  return 0
end
redis.call('HDEL', KEYS[1], scope)
appendAudit(KEYS[2], KEYS[3], KEYS[4], auditJson(head, before, 'null'), CTX.now)
return 1
