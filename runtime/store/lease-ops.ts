import type { Micros } from '../money.ts';
import { type LeaseOp, type LeaseOpResult, type LedgerEntry, StoreInputError } from './port.ts';
import { checkMicros, finishedFor, type PreparedEntry, prepareEntry } from './records.ts';

/** The checks and arithmetic of budget leases (MoneyStore admit's `lease`, leaseOps), shared by both backends. */

/** What a returned lease's row holds where a closed reservation keeps the entry that closed it. */
export const RETURNED = '{"lease":"returned"}';

/**
 * What a lease is granted: up to `upTo`, no more than the tightest budget's room over `share`, never
 * less than the call's own amount (which the room was checked to hold).
 */
/**
 * A lease's size: up to `upTo`, no more than the tightest budget's room over `share`, and no more
 * than `spare` — on every budget, half of what is unspent less what is reserved already, so slices
 * never hold more than half of a budget's unspent room and calls anywhere find the other half —
 * but never less than the call (near a ceiling a lease is one call: per-call admission).
 */
export function leaseGrant(
  amount: Micros,
  room: Micros,
  spare: Micros,
  lease: { upTo: Micros; share: number },
): Micros {
  return Math.max(amount, Math.min(lease.upTo, Math.floor(room / lease.share), spare));
}

/** A budget's `spare` for leaseGrant: half its unspent room less what it has reserved. */
export function spareOf(b: { ceiling: Micros; spent: Micros; reserved: Micros }): Micros {
  return Math.floor((b.ceiling - b.spent) / 2) - b.reserved;
}

export function checkLease(
  lease: { upTo: Micros; share: number },
  amount: Micros,
): { upTo: Micros; share: number } {
  checkMicros(lease.upTo, 'lease.upTo');
  if (!Number.isInteger(lease.share) || lease.share < 1) {
    throw new StoreInputError('invalid', `lease.share must be an integer >= 1, got ${lease.share}`);
  }
  return { upTo: Math.max(lease.upTo, amount), share: lease.share };
}

/**
 * A step's entry as JSON, as the ledger keeps it for the step's reservation: set by the lease layer
 * on the steps it makes (the JSON its journal line holds), so the store writes the same string
 * instead of serialising the entry again. A symbol: no caller's step can carry one by accident.
 */
export const LEDGER_JSON: unique symbol = Symbol('ledger json');

export type PreparedLeaseOp = Omit<LeaseOp, 'entry'> & { entry?: PreparedEntry; [LEDGER_JSON]?: string };

export function prepareLeaseOp(op: LeaseOp, now: number): PreparedLeaseOp {
  if (typeof op.reservationId !== 'string' || !op.reservationId) {
    throw new StoreInputError('invalid', 'a lease step needs a reservationId');
  }
  if (op.call !== undefined && (typeof op.call !== 'string' || !op.call)) {
    throw new StoreInputError('invalid', "a lease step's call must be a non-empty string");
  }
  if (op.free !== undefined) checkMicros(op.free, 'free');
  if (op.expiresAt !== undefined) checkMicros(op.expiresAt, 'expiresAt');
  const entry = op.entry;
  // An entry that came prepared (the lease layer's own steps) is the step's as it is: no copy.
  const prepared = entry && prepareEntry(entry, now);
  if (prepared === entry) return op as PreparedLeaseOp;
  // The JSON stands for the entry only if the entry was not copied. Object.assign, not a literal
  // that starts with a spread: V8 (Node 20) adds each key to such a copy ~1 µs slower.
  const out: PreparedLeaseOp = Object.assign({}, op, { entry: prepared });
  out[LEDGER_JSON] = undefined;
  return out;
}

/**
 * A step's entry as the ledger keeps it for the step's reservation, and its JSON when the lease
 * layer made it already: that JSON stands only for the entry it was made from, never for a copy.
 */
export function stepEntry(op: PreparedLeaseOp): { entry?: LedgerEntry; json?: string } {
  if (!op.entry) return {};
  const entry = finishedFor(op.entry, op.reservationId);
  return entry === op.entry ? { entry, json: op[LEDGER_JSON] } : { entry };
}

/** A step's answer (LeaseOpResult), `entry` and `repeated` set only when there. */
export function leaseResult(
  entry: LedgerEntry | undefined,
  held: Micros,
  open: boolean,
  repeated: boolean,
): LeaseOpResult {
  const r: LeaseOpResult = { held, open };
  if (entry) r.entry = entry;
  if (repeated) r.repeated = true;
  return r;
}
