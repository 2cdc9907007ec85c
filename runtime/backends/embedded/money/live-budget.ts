import type Database from 'better-sqlite3';
import type { Micros } from '../../../money.ts';
import type { Budget } from '../../../store/port.ts';
import { asRateBudget } from '../../../store/rates.ts';
import { budgetState, CorruptRecordError, storedMicros } from '../../../store/records.ts';
import { currentWindow, parseWindow, type WindowBounds } from '../../../store/windows.ts';
import { type BudgetRow, MAX_SCOPES, type Statements } from './statements.ts';

/** A budget row read and checked, with its spend in the current window. */
export interface LiveBudget {
  row: BudgetRow;
  budget: Budget;
  window: WindowBounds;
  rolling: { bucket: number; first: number } | undefined;
}

/** Reads a row as a budget in the window `now` falls in (rolling windows sum their buckets); a
 * corrupt row throws. */
export function liveBudget(
  row: BudgetRow,
  now: number,
  timeZone: string,
  bucketSum: Database.Statement,
): LiveBudget {
  const what = `budget ${row.scope}`;
  const ceiling = storedMicros(row.ceiling, `${what} ceiling`);
  const reserved = storedMicros(row.reserved, `${what} reserved`);
  const stored = storedMicros(row.spent, `${what} spent`);
  if (row.frozen !== 0 && row.frozen !== 1) throw new CorruptRecordError(`${what} frozen`, row.frozen);
  let parsed: ReturnType<typeof parseWindow>;
  try {
    parsed = parseWindow(row.window_spec);
  } catch {
    throw new CorruptRecordError(`${what} window`, row.window_spec);
  }
  const window = currentWindow(row.window_spec as Budget['window'], now, timeZone);
  let spent = row.window_key === window.key ? stored : 0;
  let rolling: LiveBudget['rolling'];
  if (parsed.kind === 'rolling') {
    const bucket = Number(window.key);
    rolling = { bucket, first: bucket - 24 };
    spent = storedMicros((bucketSum.get(row.id, rolling.first) as { s: unknown }).s, `${what} buckets`);
  }
  const frozen = row.frozen === 1;
  const budget: Budget = {
    id: row.id,
    scope: row.scope,
    owner: row.owner,
    ceiling,
    window: row.window_spec as Budget['window'],
    state: budgetState(frozen, spent, ceiling),
    spent,
    reserved,
    windowStart: window.start,
    resetsAt: window.resetsAt,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
  // A rate limit's budget: its scope is the one it counts, its unit set (rates.ts).
  return { row, window, rolling, budget: row.kind === 'rate' ? asRateBudget(budget) : budget };
}

/**
 * Adds `cost` to each budget's current window and frees `release` of its reservation: budgets in
 * the same window in one statement, MAX_SCOPES at a time (a lease batch's budgets of many
 * identities can share a window and sums).
 */
export function chargeAll(
  s: Statements,
  live: LiveBudget[],
  cost: Micros,
  release: Micros,
  now: number,
): void {
  const byKey = new Map<string, string[]>();
  for (const b of live) {
    if (b.rolling) {
      chargeOne(s, b, cost, release, now);
      continue;
    }
    const ids = byKey.get(b.window.key);
    if (ids) ids.push(b.row.id);
    else byKey.set(b.window.key, [b.row.id]);
  }
  for (const [key, ids] of byKey) {
    for (let i = 0; i < ids.length; i += MAX_SCOPES) {
      s.chargeIn.run(key, cost, cost, key, release, now, ...padded(ids.slice(i, i + MAX_SCOPES)));
    }
  }
}

/** Adds `cost` to one budget's current window and frees `release` of its reservation. */
export function chargeOne(s: Statements, b: LiveBudget, cost: Micros, release: Micros, now: number): void {
  const id = b.row.id;
  if (b.rolling) {
    if (cost > 0) s.bucketAdd.run(id, b.rolling.bucket, cost);
    s.bucketPrune.run(id, b.rolling.first);
    s.charge.run({ id, key: 'rolling', cost: 0, release, now });
  } else {
    s.charge.run({ id, key: b.window.key, cost, release, now });
  }
}

/** Ids for an `IN (...)` of MAX_SCOPES slots; '' matches no row. */
export function padded(ids: string[]): string[] {
  return ids.length === MAX_SCOPES ? ids : [...ids, ...Array(MAX_SCOPES - ids.length).fill('')];
}
