import { parseRateScope, ScopeError } from '../identity.ts';
import {
  type Budget,
  RATE_UNITS,
  type RateCharge,
  type RateUnit,
  StoreInputError,
  type TokenCounts,
} from './port.ts';
import { budgetId, CorruptRecordError } from './records.ts';
import { parseWindow, ROLLING_BUCKETS, WindowError } from './windows.ts';

/**
 * Rate limits as budgets of other units, shared by both backends. A rate limit (`60 requests per
 * 1m on team:payments`) is stored as a budget whose scope is its *rate key*
 * (`team:payments#requests/1m`: `#` and `/` never occur in a money scope, so the two never meet),
 * whose ceiling is the limit and whose window is rolling. Admission checks and reserves it in the
 * same atomic step as the money (the embedded transaction, the Lua script); a reservation keeps
 * its holds (budget id, unit, amount) and settle charges the actual units (`unitsOf`), release
 * charges nothing, expiry charges what was reserved (never less: the outcome is unknown) — except
 * `concurrent`, which only ever holds: a call in flight counts, a finished one does not.
 */

/** At most this many rate limits apply to one call. */
export const MAX_RATES = 16;

/** What a reservation holds on one rate budget. */
export interface RateHold {
  id: string;
  unit: RateUnit;
  amount: number;
}

/** `team:payments#requests/1m`: the stored scope of a rate limit's budget. */
export function rateKey(scope: string, unit: RateUnit, window: string): string {
  return `${scope}#${unit}/${window}`;
}

export function isRateKey(scope: string): boolean {
  return scope.includes('#');
}

/** Checks a call's rate charges; returns them with their budget ids and rate keys. */
export function checkRates(rates: RateCharge[] | undefined): (RateCharge & { key: string; id: string })[] {
  if (rates === undefined) return [];
  if (!Array.isArray(rates) || rates.length > MAX_RATES) {
    throw new StoreInputError('invalid', `rates must be a list of at most ${MAX_RATES} rate limits`);
  }
  return rates.map((r, i) => {
    const what = `rates[${i}]`;
    try {
      parseRateScope(r?.scope);
    } catch (err) {
      throw new StoreInputError('invalid', `${what}.scope: ${err instanceof ScopeError ? err.message : err}`);
    }
    if (!RATE_UNITS.includes(r.unit)) {
      throw new StoreInputError('invalid', `${what}.unit must be one of ${RATE_UNITS.join(', ')}`);
    }
    let rolling = false;
    try {
      rolling = parseWindow(r.window).kind === 'rolling';
    } catch (err) {
      if (!(err instanceof WindowError)) throw err;
    }
    if (!rolling) {
      throw new StoreInputError('invalid', `${what}.window must be a rolling duration like 1m or 1h`);
    }
    for (const f of ['limit', 'amount'] as const) {
      if (!Number.isSafeInteger(r[f]) || r[f] < 0) {
        throw new StoreInputError('invalid', `${what}.${f} must be a whole number >= 0, got ${String(r[f])}`);
      }
    }
    const key = rateKey(r.scope, r.unit, r.window);
    return { ...r, key, id: budgetId(key) };
  });
}

/** The units a call used, from its usage: input tokens are those billed as input or cache writes
 * (cache reads do not count, as at Anthropic); a finished call is no longer concurrent. */
export function unitsOf(unit: RateUnit, tokens: TokenCounts): number {
  switch (unit) {
    case 'requests':
      return 1;
    case 'input_tokens':
      return tokens.input + tokens.cacheWrite5m + tokens.cacheWrite1h;
    case 'output_tokens':
      return tokens.output;
    case 'concurrent':
      return 0;
  }
}

/** What an expired reservation charges a rate budget: its reservation (never less), none in flight. */
export function expiredUnits(h: RateHold): number {
  return h.unit === 'concurrent' ? 0 : h.amount;
}

/**
 * When a rolling rate budget will have room for `amount` more: buckets leave the window oldest
 * first (bucket b at (b + 25) × bucketMs, windows.ts); the first time enough has left. Null when
 * the spend leaving cannot make room (what blocks is held by calls in flight, or the call asks
 * for more than the limit itself).
 */
export function rateRetryAt(
  window: string,
  buckets: [bucket: number, spent: number][],
  limit: number,
  reserved: number,
  amount: number,
): number | null {
  if (amount > limit) return null;
  const w = parseWindow(window);
  if (w.kind !== 'rolling') return null;
  let excess = buckets.reduce((s, [, v]) => s + v, 0) + reserved + amount - limit;
  for (const [bucket, spent] of [...buckets].sort((a, b) => a[0] - b[0])) {
    excess -= spent;
    if (excess <= 0) return (bucket + ROLLING_BUCKETS + 1) * w.bucketMs;
  }
  return null;
}

/** A budget read from a rate key: its `scope` the counted scope, its `unit` set. */
export function asRateBudget(b: Budget): Budget {
  const hash = b.scope.lastIndexOf('#');
  if (hash < 0) return b;
  const slash = b.scope.indexOf('/', hash);
  return { ...b, scope: b.scope.slice(0, hash), unit: b.scope.slice(hash + 1, slash) as RateUnit };
}

/** Holds as stored on a reservation (`id:unit:amount` separated by spaces, as the Lua twin). */
export function holdsText(holds: RateHold[]): string {
  return holds.map((h) => `${h.id}:${h.unit}:${h.amount}`).join(' ');
}

export function holdsOf(text: string | null | undefined): RateHold[] {
  if (!text) return [];
  return text.split(' ').map((part) => {
    const [id, unit, amount] = part.split(':');
    const n = Number(amount);
    if (!id || !RATE_UNITS.includes(unit as RateUnit) || !Number.isSafeInteger(n) || n < 0) {
      throw new CorruptRecordError('reservation rate holds', text);
    }
    return { id, unit: unit as RateUnit, amount: n };
  });
}
