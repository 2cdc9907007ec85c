import type Database from 'better-sqlite3';
import type { Micros } from '../../../money.ts';
import {
  type CorrectionResult,
  type ExpiredCorrection,
  type LedgerEntry,
  StoreInputError,
  type WindowSpec,
} from '../../../store/port.ts';
import { correctionEntry, identityScopes, storedJson } from '../../../store/records.ts';
import { currentWindow, parseWindow, ROLLING_BUCKETS } from '../../../store/windows.ts';
import { MAX_SCOPES } from './statements.ts';

/**
 * Reconciliation's correction of an `expired` entry, as one step inside the store's transaction
 * (the Redis twin is correct.lua). The `corrections` table holds one row per request id, so a
 * request is corrected once whichever process or replica asks, however often.
 */

interface BudgetWindowRow {
  id: string;
  window_spec: string;
  window_key: string;
}

/** The statements of a correction, prepared once when the store opens. */
export function prepareCorrections(db: Database.Database) {
  const inList = Array(MAX_SCOPES).fill('?').join(', ');
  return {
    get: db.prepare('SELECT entry FROM corrections WHERE request_id = ?'),
    put: db.prepare('INSERT INTO corrections (request_id, expired_id, at, entry) VALUES (?, ?, ?, ?)'),
    /** The ledger's time index finds the entry; its id picks it among those of the same ms. */
    ledgerAt: db.prepare('SELECT entry FROM ledger WHERE at = ? AND id = ?'),
    budgets: db.prepare(`SELECT id, window_spec, window_key FROM budgets WHERE scope IN (${inList})`),
    spent: db.prepare('UPDATE budgets SET spent = MAX(0, spent + ?), updated_at = ? WHERE id = ?'),
    bucket: db.prepare(
      'UPDATE budget_buckets SET spent = MAX(0, spent + ?) WHERE budget_id = ? AND bucket = ?',
    ),
    bucketNew: db.prepare('INSERT INTO budget_buckets (budget_id, bucket, spent) VALUES (?, ?, ?)'),
  };
}

export type CorrectionStatements = ReturnType<typeof prepareCorrections>;

/**
 * Writes the correction (or returns the one the request already has). Runs inside a transaction:
 * the ledger entry, the budgets and the request id's row commit together or not at all.
 */
export function correctOne(
  s: CorrectionStatements,
  c: ExpiredCorrection,
  now: number,
  timeZone: string,
  insertLedger: (e: LedgerEntry) => void,
): CorrectionResult {
  const row = s.ledgerAt.get(c.expired.at, c.expired.id) as { entry: string } | undefined;
  if (!row) throw new StoreInputError('not_found', `no ledger entry ${c.expired.id} at ${c.expired.at}`);
  const expired = storedJson<LedgerEntry>(row.entry, 'ledger entry');
  if (expired.outcome !== 'expired') {
    throw new StoreInputError('invalid', `ledger entry ${expired.id} is ${expired.outcome}, not expired`);
  }
  const done = s.get.get(expired.requestId) as { entry: string } | undefined;
  if (done) return { entry: storedJson<LedgerEntry>(done.entry, 'correction'), created: false };
  const entry = correctionEntry(expired, c.billed, c.source, now);
  const scopes = identityScopes(expired.identity);
  const args = [...scopes, ...Array(MAX_SCOPES - scopes.length).fill('')];
  for (const b of s.budgets.all(...args) as BudgetWindowRow[]) {
    adjust(s, b, expired.at, entry.cost, now, timeZone);
  }
  insertLedger(entry);
  s.put.run(expired.requestId, expired.id, now, JSON.stringify(entry));
  return { entry, created: true };
}

/**
 * Moves `delta` on one budget if its current window still holds the charge made at `at`: the same
 * calendar window (or `total`), or a rolling bucket not yet out of the window. A closed window is
 * left as it closed.
 */
function adjust(
  s: CorrectionStatements,
  b: BudgetWindowRow,
  at: number,
  delta: Micros,
  now: number,
  timeZone: string,
): void {
  if (delta === 0) return;
  const spec = b.window_spec as WindowSpec;
  const then = currentWindow(spec, at, timeZone);
  const current = currentWindow(spec, now, timeZone);
  if (parseWindow(spec).kind === 'rolling') {
    const bucket = Number(then.key);
    if (bucket < Number(current.key) - ROLLING_BUCKETS || bucket > Number(current.key)) return;
    if (s.bucket.run(delta, b.id, bucket).changes === 0 && delta > 0) s.bucketNew.run(b.id, bucket, delta);
    return;
  }
  if (then.key !== current.key || b.window_key !== current.key) return;
  s.spent.run(delta, now, b.id);
}
