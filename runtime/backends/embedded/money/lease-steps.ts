import type Database from 'better-sqlite3';
import type { Identity, Scope } from '../../../identity.ts';
import type { Micros } from '../../../money.ts';
import { type PreparedLeaseOp, RETURNED } from '../../../store/lease-ops.ts';
import type { LeaseOpResult, LedgerEntry } from '../../../store/port.ts';
import { finishEntry, storedJson, storedMicros } from '../../../store/records.ts';
import type { BudgetRow, ReservationRow, Statements } from './statements.ts';

/**
 * The lease steps of the embedded store (MoneyStore.leaseOps; the Redis twin is lease.lua), one
 * step inside the batch's transaction. A call is charged once per lease however often its step is
 * sent (`lease_calls`, kept as long as a closed reservation is): a batch retried after a timeout,
 * or replayed from a journal after a crash, charges nothing twice.
 */

/** What a lease step needs of the store it runs in. */
export interface LeaseHost<B> {
  s: Statements;
  ls: LeaseStatements;
  budgetRows(scopes: Scope[]): (BudgetRow | undefined)[];
  live(row: BudgetRow, now: number): B;
  /** The identity's budgets, created from the defaults if missing (a late or unknown charge). */
  identityBudgets(identity: Identity, now: number): B[];
  chargeAll(live: B[], cost: Micros, release: Micros, now: number): void;
  insertLedger(e: LedgerEntry): void;
}

export function prepareLeaseStatements(db: Database.Database) {
  return {
    /** No change: the call was charged already. */
    callPut: db.prepare('INSERT OR IGNORE INTO lease_calls (lease, call, at) VALUES (?, ?, ?)'),
    callForget: db.prepare('DELETE FROM lease_calls WHERE at < ?'),
  };
}

export type LeaseStatements = ReturnType<typeof prepareLeaseStatements>;

/** One lease step (see LeaseOp); the batch's transaction makes the steps atomic together. */
export function leaseStep<B>(host: LeaseHost<B>, op: PreparedLeaseOp, now: number): LeaseOpResult {
  const { s } = host;
  const res = s.resGet.get(op.reservationId) as ReservationRow | undefined;
  if (res?.status === 'expired') {
    // Charged everything it held when it expired: that stands for the calls it admitted.
    return { entry: storedJson<LedgerEntry>(res.entry, `lease ${op.reservationId}`), held: 0, open: false };
  }
  const entry = op.entry && finishEntry({ ...op.entry, reservationId: op.reservationId }, op.entry.reserved);
  // A call already charged (a repeated step): its entry stands, nothing is charged again.
  const repeated =
    entry !== undefined &&
    op.call !== undefined &&
    host.ls.callPut.run(op.reservationId, op.call, now).changes === 0;
  const charge = entry !== undefined && !repeated;
  if (res?.status !== 'open') {
    // Returned or unknown: what it admitted is still charged, to the identity's budgets.
    if (!entry) return { held: 0, open: false };
    if (charge) {
      if (entry.cost > 0) host.chargeAll(host.identityBudgets(entry.identity, now), entry.cost, 0, now);
      host.insertLedger(entry);
    }
    return { entry, held: 0, open: false, ...(repeated ? { repeated } : {}) };
  }
  let held = storedMicros(res.amount, `lease ${op.reservationId} amount`);
  const live: B[] = [];
  for (const row of host.budgetRows(storedJson<Scope[]>(res.scopes, 'lease scopes'))) {
    if (row) live.push(host.live(row, now));
  }
  if (charge) {
    const part = Math.min(entry.cost, held);
    host.chargeAll(live, entry.cost, part, now);
    held -= part;
    host.insertLedger(entry);
  }
  const free = op.close ? held : Math.min(op.free ?? 0, held);
  if (free > 0) {
    host.chargeAll(live, 0, free, now);
    held -= free;
  }
  const extra = repeated ? { repeated } : {};
  if (op.close) {
    s.resClose.run({ id: op.reservationId, now, status: 'released', entry: RETURNED });
    return { ...(entry ? { entry } : {}), held: 0, open: false, ...extra };
  }
  s.resUpdate.run(held, op.expiresAt ?? null, op.reservationId);
  return { ...(entry ? { entry } : {}), held, open: true, ...extra };
}
