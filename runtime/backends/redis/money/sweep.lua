-- sweep: releases up to ARGV[ARG0 + 1] reservations past their expiry, each recorded as an
-- `expired` ledger entry. KEYS[1] rexp, KEYS[2] ledger stream. Replies the number released.

--- @include "includes/context.lua"
--- @include "includes/budget.lua"
--- @include "includes/ledger.lua"
--- @include "includes/rate.lua"
--- @include "includes/reservation.lua"

return expireDue(KEYS[1], KEYS[2], tonumber(ARGV[ARG0 + 1]))
