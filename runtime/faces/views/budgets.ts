import { formatUsd } from '../../money.ts';
import type { AuditEntry, Budget, BudgetSpec, BudgetState } from '../../store/port.ts';
import { type IsoTime, iso } from './format.ts';

/** A budget as `/api/budgets` serves it: its numbers in dollars and µ$, its times as ISO. */
export interface BudgetView {
  /** null (with `created: false`) for a scope with no budget yet: the defaults that would apply. */
  id: string | null;
  scope: string;
  owner: string;
  window: string;
  state: BudgetState;
  ceiling_usd: string;
  spent_usd: string;
  reserved_usd: string;
  ceiling_micros: number;
  spent_micros: number;
  reserved_micros: number;
  window_start: IsoTime | null;
  resets_at: IsoTime | null;
  created_at: IsoTime | null;
  updated_at: IsoTime | null;
}

export function budgetView(b: Budget): BudgetView {
  return {
    id: b.id,
    scope: b.scope,
    owner: b.owner,
    window: b.window,
    state: b.state,
    ceiling_usd: formatUsd(b.ceiling),
    spent_usd: formatUsd(b.spent),
    reserved_usd: formatUsd(b.reserved),
    ceiling_micros: b.ceiling,
    spent_micros: b.spent,
    reserved_micros: b.reserved,
    window_start: iso(b.windowStart || null),
    resets_at: iso(b.resetsAt),
    created_at: iso(b.createdAt),
    updated_at: iso(b.updatedAt),
  };
}

/** The budget a scope would get on its first call (the configured default for its kind), not stored. */
export function unsetBudgetView(scope: string, spec: BudgetSpec): BudgetView & { created: false } {
  return {
    id: null,
    scope,
    owner: spec.owner ?? 'platform',
    window: spec.window,
    state: 'active',
    ceiling_usd: formatUsd(spec.ceiling),
    spent_usd: formatUsd(0),
    reserved_usd: formatUsd(0),
    ceiling_micros: spec.ceiling,
    spent_micros: 0,
    reserved_micros: 0,
    window_start: null,
    resets_at: null,
    created_at: null,
    updated_at: null,
    created: false,
  };
}

export type BudgetDefaultsView = Record<string, { ceiling_usd: string; window: string }>;

export function budgetDefaultsView(defaults: Record<string, BudgetSpec>): BudgetDefaultsView {
  return Object.fromEntries(
    Object.entries(defaults).map(([k, v]) => [k, { ceiling_usd: formatUsd(v.ceiling), window: v.window }]),
  );
}

/** A rate limit's budget in use: `limit` units per rolling `window`, `used` in it, `in_flight` held. */
export interface RateLimitView {
  id: string;
  scope: string;
  unit: string;
  window: string;
  limit: number;
  used: number;
  in_flight: number;
  updated_at: IsoTime | null;
}

export function rateLimitView(b: Budget): RateLimitView {
  return {
    id: b.id,
    scope: b.scope,
    unit: b.unit ?? 'usd',
    window: b.window,
    limit: b.ceiling,
    used: b.spent,
    in_flight: b.reserved,
    updated_at: iso(b.updatedAt),
  };
}

/** A configured rate limit (`rateLimits:`), as the config states it. */
export interface RateLimitConfigView {
  scope: string;
  unit: string;
  limit: number;
  window: string;
}

/** `GET /api/budgets`. */
export interface BudgetsResponse {
  budgets: BudgetView[];
  defaults: BudgetDefaultsView;
  /** Rate limits in use (fullest first) and as configured; absent when filtered by kind. */
  rate_limits?: RateLimitView[];
  rate_limits_configured?: RateLimitConfigView[];
}

/**
 * `GET /api/budgets/:ref`: the budget (or the defaults a scope would get) and its last audit
 * entries, served as the store keeps them (`at` in ms, unlike `/api/audit`).
 */
export interface BudgetResponse {
  budget: BudgetView & { created: boolean };
  audit: AuditEntry[];
}

/** `POST /api/budgets/:scope/{ceiling,freeze,unfreeze}`. */
export interface BudgetChangedResponse {
  budget: BudgetView;
}
