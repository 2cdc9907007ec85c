import { SCOPE_KINDS, type ScopeKind } from '../../runtime/identity.ts';
import type { BudgetSpec } from '../../runtime/store/port.ts';

/** Store defaults giving every scope kind a day budget of `ceiling` µ$ (the store benches' setup). */
export function everyKind(ceiling: number): Record<ScopeKind, BudgetSpec> {
  return Object.fromEntries(SCOPE_KINDS.map((k) => [k, { ceiling, window: 'day' }])) as Record<
    ScopeKind,
    BudgetSpec
  >;
}
