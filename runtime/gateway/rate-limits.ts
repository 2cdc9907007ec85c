import { type Identity, type RateScopeKind, rateScopesOf } from '../identity.ts';
import type { RateCharge, RateUnit, WindowSpec } from '../store/port.ts';

/**
 * Rate limits (config `rateLimits:`) turned into what one call takes of them. The store admits
 * them in the same atomic step as the money (runtime/store/rates.ts); here is only which limits
 * apply to a call and how many units it may use.
 */

/** A configured rate limit: `limit` units per rolling `window` on every scope of a kind (`seat`,
 * `key`, `model`: each its own limit) or on one scope (`team:payments`, `key:key_1`, `global`). */
export interface RateLimit {
  scope: string;
  unit: RateUnit;
  limit: number;
  window: WindowSpec;
}

/**
 * The rate limits that apply to a call of `model` by `identity`, each with what the call reserves:
 * 1 request, its estimated input tokens, its output cap, 1 call in flight. Undefined when none do.
 */
export function rateCharges(
  limits: readonly RateLimit[] | undefined,
  identity: Identity,
  model: string,
  tokens: { input: number; output: number },
): RateCharge[] | undefined {
  if (!limits?.length) return undefined;
  const mine = rateScopesOf(identity, model);
  const out: RateCharge[] = [];
  for (const l of limits) {
    const scope = l.scope.includes(':')
      ? Object.values(mine).includes(l.scope)
        ? l.scope
        : undefined
      : mine[l.scope as RateScopeKind];
    if (scope === undefined) continue;
    out.push({ scope, unit: l.unit, window: l.window, limit: l.limit, amount: amountOf(l.unit, tokens) });
  }
  return out.length ? out : undefined;
}

function amountOf(unit: RateUnit, tokens: { input: number; output: number }): number {
  switch (unit) {
    case 'requests':
    case 'concurrent':
      return 1;
    case 'input_tokens':
      return Math.max(0, Math.ceil(tokens.input));
    case 'output_tokens':
      return Math.max(0, Math.ceil(tokens.output));
  }
}
