import type Database from 'better-sqlite3';
import type { Budget } from '../../../store/port.ts';
import { asRateBudget } from '../../../store/rates.ts';
import { budgetState, CorruptRecordError, storedMicros } from '../../../store/records.ts';
import { currentWindow, parseWindow, type WindowBounds } from '../../../store/windows.ts';
import type { BudgetRow } from './statements.ts';

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
