-- audit: appends an audit entry. KEYS[1] audit stream, KEYS[2] audit index, KEYS[3] the target's
-- audit index. ARGV after the shared context: the entry's JSON.

--- @include "includes/context.lua"
--- @include "includes/audit.lua"

appendAudit(KEYS[1], KEYS[2], KEYS[3], ARGV[ARG0 + 1], CTX.now)
return 'ok'
