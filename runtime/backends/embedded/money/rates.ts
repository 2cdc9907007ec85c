import type Database from 'better-sqlite3';
import type { AdmitRefusal, Budget, RateCharge } from '../../../store/port.ts';
import { type RateHold, rateRetryAt } from '../../../store/rates.ts';
import { storedMicros } from '../../../store/records.ts';
import type { BudgetRow, Statements } from './statements.ts';

/**
 * Rate limits inside the embedded store's transactions (runtime/store/rates.ts has the model):
 * each is a row of `budgets` (kind `rate`, scope its rate key) with rolling spend in
 * `budget_buckets`, so the store's own `live` and `charge` read and move it as any rolling budget.
 * These functions run inside admit's, settle's and release's transactions — never alone.
 */

export function prepareRateStatements(db: Database.Database) {
  return {
    setLimit: db.prepare('UPDATE budgets SET ceiling = ?, updated_at = ? WHERE id = ?'),
    reserve: db.prepare('UPDATE budgets SET reserved = reserved + ?, updated_at = ? WHERE id = ?'),
    buckets: db.prepare('SELECT bucket, spent FROM budget_buckets WHERE budget_id = ? AND bucket >= ?'),
    holdsPut: db.prepare('UPDATE reservations SET rates = ? WHERE id = ?'),
  };
}

export type RateStatements = ReturnType<typeof prepareRateStatements>;

/** What the store lends these functions: its statements and its budget reading and charging. */
export interface RateHost {
  s: Statements;
  rs: RateStatements;
  live(row: BudgetRow, now: number): { budget: Budget; rolling: { first: number } | undefined };
  charge(b: ReturnType<RateHost['live']>, cost: number, release: number, now: number): void;
}

/**
 * Checks every rate limit of a call (creating its budget on first use, taking the request's limit
 * as the one in force); reserves nothing. The first that has no room refuses.
 */
export function checkRateLimits(
  host: RateHost,
  rates: (RateCharge & { key: string; id: string })[],
  now: number,
): { ok: true; holds: RateHold[] } | { ok: false; refusal: AdmitRefusal } {
  const holds: RateHold[] = [];
  for (const r of rates) {
    let row = host.s.budgetById.get(r.id) as BudgetRow | undefined;
    if (!row) {
      host.s.insertBudget.run({
        id: r.id,
        scope: r.key,
        kind: 'rate',
        owner: 'rate-limit',
        ceiling: r.limit,
        window: r.window,
        now,
      });
      row = host.s.budgetById.get(r.id) as BudgetRow;
    } else if (storedMicros(row.ceiling, `rate limit ${r.key}`) !== r.limit) {
      host.rs.setLimit.run(r.limit, now, r.id);
      row = { ...row, ceiling: r.limit };
    }
    const live = host.live(row, now);
    const b = live.budget;
    if (b.spent + b.reserved + r.amount > r.limit) {
      const buckets = (
        host.rs.buckets.all(r.id, live.rolling?.first ?? 0) as { bucket: number; spent: number }[]
      ).map((x): [number, number] => [x.bucket, x.spent]);
      const retryAt = rateRetryAt(r.window, buckets, r.limit, b.reserved, r.amount);
      return { ok: false, refusal: { code: 'rate_limited', budget: b, amount: r.amount, retryAt } };
    }
    holds.push({ id: r.id, unit: r.unit, amount: r.amount });
  }
  return { ok: true, holds };
}

export function reserveRates(host: RateHost, holds: RateHold[], now: number): void {
  for (const h of holds) host.rs.reserve.run(h.amount, now, h.id);
}

/** Closes a reservation's holds: each charged `units(hold)` and its reservation freed. */
export function closeRates(
  host: RateHost,
  holds: RateHold[],
  units: (h: RateHold) => number,
  now: number,
): void {
  for (const h of holds) {
    const row = host.s.budgetById.get(h.id) as BudgetRow | undefined;
    if (row) host.charge(host.live(row, now), units(h), h.amount, now);
  }
}
