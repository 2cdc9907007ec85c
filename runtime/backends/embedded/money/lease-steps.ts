import type Database from 'better-sqlite3';
import type { Identity, Scope } from '../../../identity.ts';
import type { Micros } from '../../../money.ts';
import { leaseResult, type PreparedLeaseOp, RETURNED, stepEntry } from '../../../store/lease-ops.ts';
import type { LeaseOpResult, LedgerEntry } from '../../../store/port.ts';
import { storedJson, storedMicros } from '../../../store/records.ts';
import { CallSet, callNumber } from './call-set.ts';
import type { LiveBudget } from './live-budget.ts';
import { ManyRows } from './many-rows.ts';
import type { BudgetRow, ReservationRow, Statements } from './statements.ts';

/**
 * The lease steps of the embedded store (MoneyStore.leaseOps; the Redis twin is lease.lua), a
 * batch inside one transaction. A call is charged once per lease however often its step is sent
 * (the lease's row keeps the calls charged from it, `reservations.calls`, call-set.ts; what that
 * cannot hold goes to `lease_calls`, kept as long as a closed reservation is): a batch retried
 * after a timeout, or replayed from a journal after a crash, charges nothing twice.
 *
 * What a batch writes is summed before it is written, as lease.lua does: each reservation is read
 * once and written once, each budget charged once with the sum of the batch's charges and frees on
 * it, the batch's ledger rows and charged calls inserted up to 256 a statement (many-rows.ts).
 */

/** What the lease steps need of the store they run in. */
export interface LeaseHost {
  s: Statements;
  ls: LeaseStatements;
  budgetRows(scopes: Scope[]): (BudgetRow | undefined)[];
  live(row: BudgetRow, now: number): LiveBudget;
  /** The identity's budgets, created from the defaults if missing (a late or unknown charge). */
  identityBudgets(identity: Identity, now: number): LiveBudget[];
  chargeAll(live: LiveBudget[], cost: Micros, release: Micros, now: number): void;
  /** An entry as the ledger table's row (LEDGER_COLUMNS). */
  ledgerRow(e: LedgerEntry, json?: string): unknown[];
}

const LEDGER_COLUMNS =
  'id, at, day, team, env, seat, workflow, run, kind, name, outcome, cost, t_input, t_cw5m, t_cw1h, t_cr, t_out, entry';

export function prepareLeaseStatements(db: Database.Database) {
  return {
    callForget: db.prepare('DELETE FROM lease_calls WHERE at < ?'),
    /** The calls of a batch; returns those not charged before. */
    callsPut: new ManyRows(
      db,
      'INSERT OR IGNORE INTO lease_calls (lease, call, at)',
      3,
      'RETURNING lease, call',
    ),
    ledgerPut: new ManyRows(db, `INSERT INTO ledger (${LEDGER_COLUMNS})`, 18),
    /** The calls charged from a lease, after a batch charged some. */
    callsSet: db.prepare('UPDATE reservations SET calls = ? WHERE id = ?'),
  };
}

export type LeaseStatements = ReturnType<typeof prepareLeaseStatements>;

/** A reservation as the batch sees it: read once, written once at the end. */
interface BatchLease {
  status: string | undefined;
  expiredEntry?: string;
  held: Micros;
  live: LiveBudget[] | undefined;
  scopes: string;
  /** The expiry to write (null: unchanged); dirty when held or the expiry changed. */
  expiresAt: number | null;
  dirty: boolean;
  /** The calls charged from it, when its row keeps them (else lease_calls does). */
  calls: CallSet | undefined;
  callsDirty: boolean;
}

/** A budget's sums over the batch. */
interface BudgetSum {
  b: LiveBudget;
  cost: Micros;
  release: Micros;
}

/** The batch's steps (see LeaseOp), in order, in the caller's transaction. */
export function leaseBatch(host: LeaseHost, ops: PreparedLeaseOp[], now: number): LeaseOpResult[] {
  const { s } = host;
  const leases = new Map<string, BatchLease>();
  const sums = new Map<string, BudgetSum>();
  const add = (list: LiveBudget[], cost: Micros, release: Micros) => {
    for (const b of list) {
      const t = sums.get(b.row.id);
      if (t) {
        t.cost += cost;
        t.release += release;
      } else sums.set(b.row.id, { b, cost, release });
    }
  };
  const leaseOf = (id: string): BatchLease => {
    let l = leases.get(id);
    if (!l) {
      const res = s.resGet.get(id) as ReservationRow | undefined;
      l = {
        status: res?.status,
        held: res?.status === 'open' ? storedMicros(res.amount, `lease ${id} amount`) : 0,
        live: undefined,
        scopes: res?.scopes ?? '[]',
        expiresAt: null,
        dirty: false,
        calls: typeof res?.calls === 'string' ? CallSet.parse(res.calls) : undefined,
        callsDirty: false,
        ...(res?.status === 'expired' ? { expiredEntry: res.entry ?? '' } : {}),
      };
      leases.set(id, l);
    }
    return l;
  };
  const again = chargedBefore(host, ops, leaseOf, now);
  const ledger: unknown[][] = [];
  const results = ops.map((op, i): LeaseOpResult => {
    const l = leaseOf(op.reservationId);
    if (l.status === 'expired') {
      // Charged everything it held when it expired: that stands for the calls it admitted.
      return {
        entry: storedJson<LedgerEntry>(l.expiredEntry, `lease ${op.reservationId}`),
        held: 0,
        open: false,
      };
    }
    const { entry, json } = stepEntry(op);
    const repeated = entry !== undefined && again[i] === true;
    const charge = entry !== undefined && !repeated;
    if (l.status !== 'open') {
      // Returned or unknown: what it admitted is still charged, to the identity's budgets.
      if (!entry) return { held: 0, open: false };
      if (charge) {
        if (entry.cost > 0) add(host.identityBudgets(entry.identity, now), entry.cost, 0);
        ledger.push(host.ledgerRow(entry, json));
      }
      return leaseResult(entry, 0, false, repeated);
    }
    l.live ??= host
      .budgetRows(storedJson<Scope[]>(l.scopes, 'lease scopes'))
      .flatMap((row) => (row ? [host.live(row, now)] : []));
    if (charge) {
      const part = Math.min(entry.cost, l.held);
      add(l.live, entry.cost, part);
      l.held -= part;
      ledger.push(host.ledgerRow(entry, json));
    }
    const free = op.close ? l.held : Math.min(op.free ?? 0, l.held);
    if (free > 0) {
      add(l.live, 0, free);
      l.held -= free;
    }
    if (op.close) {
      s.resClose.run({ id: op.reservationId, now, status: 'released', entry: RETURNED });
      l.status = 'released';
      l.dirty = false;
      return leaseResult(entry, 0, false, repeated);
    }
    l.dirty = true;
    if (op.expiresAt !== undefined) l.expiresAt = op.expiresAt;
    return leaseResult(entry, l.held, true, repeated);
  });
  host.ls.ledgerPut.insert(ledger);
  for (const [id, l] of leases) {
    if (l.dirty) s.resUpdate.run(l.held, l.expiresAt, id);
    if (l.callsDirty) host.ls.callsSet.run(l.calls!.toString(), id);
  }
  // Budgets with the same sums and window go in one statement (a lease's budgets, usually).
  const groups = new Map<string, LiveBudget[]>();
  for (const { b, cost, release } of sums.values()) {
    if (cost === 0 && release === 0) continue;
    const k = `${cost}|${release}`;
    const g = groups.get(k);
    if (g) g.push(b);
    else groups.set(k, [b]);
  }
  for (const [k, list] of groups) {
    const [cost, release] = k.split('|').map(Number) as [Micros, Micros];
    host.chargeAll(list, cost, release, now);
  }
  return results;
}

/**
 * Which steps carry a call already charged (before, or earlier in this batch): its entry stands,
 * nothing is charged again. Most calls are numbers, added to their lease's set (repeated: already
 * there); the others go into lease_calls together, and the insert returns the new ones.
 */
function chargedBefore(
  host: LeaseHost,
  ops: PreparedLeaseOp[],
  leaseOf: (id: string) => BatchLease,
  now: number,
): boolean[] {
  const callKey = (lease: string, call: string) => `${lease}\u0000${call}`;
  const repeated: boolean[] = [];
  const inTable: number[] = [];
  const rows: unknown[][] = [];
  const seen = new Set<string>();
  for (const [i, op] of ops.entries()) {
    if (!op.entry || op.call === undefined) continue;
    const l = leaseOf(op.reservationId);
    if (l.status === 'expired') continue;
    const n = l.calls && callNumber(op.call);
    if (n !== undefined) {
      if (l.calls!.add(n)) l.callsDirty = true;
      else repeated[i] = true;
      continue;
    }
    inTable.push(i);
    const k = callKey(op.reservationId, op.call);
    if (seen.has(k)) continue;
    seen.add(k);
    rows.push([op.reservationId, op.call, now]);
  }
  if (!rows.length) return repeated;
  const fresh = new Set(
    (host.ls.callsPut.insert(rows) as { lease: string; call: string }[]).map((r) => callKey(r.lease, r.call)),
  );
  // The first step of a new call charges it; any later one in the batch is a repeat.
  for (const i of inTable) repeated[i] = !fresh.delete(callKey(ops[i]!.reservationId, ops[i]!.call!));
  return repeated;
}
