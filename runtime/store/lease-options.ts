import type { Broadcast } from '../broadcast.ts';
import type { Logger } from '../log.ts';
import type { Micros } from '../money.ts';

/** Budget leases' settings, dependencies and counters (leases.ts is the class that uses them). */
export interface LeaseOptions {
  /** A slice is at most this many times the call's worst case… */
  callsPerLease: number;
  /** …and at most this (µ$). */
  maxLease: Micros;
  /** …and at most the tightest budget's room divided by this. */
  share: number;
  /** How long the store holds a slice this process stops renewing (it died). */
  ttlMs: number;
  /** A slice no call used for this long goes back to its budgets. */
  idleMs: number;
  /** The longest this process admits from memory since it last read the kill switches. */
  validityMs: number;
  /** How often settled calls go to the store, in one batch (they are durable in the journal). */
  shipMs: number;
}

export const LEASE_DEFAULTS: LeaseOptions = {
  callsPerLease: 64,
  maxLease: 5_000_000,
  share: 8,
  ttlMs: 60_000,
  idleMs: 5_000,
  validityMs: 2_000,
  shipMs: 200,
};

/** Counters the benchmarks and `/metrics` read. */
export interface LeaseStats {
  grants: number;
  fromMemory: number;
  batches: number;
  steps: number;
  returned: number;
  /** Every call into the money store for admission, settlement and upkeep (grants, batches,
   * per-call admissions and settlements that bypass leases, kill switch reads). */
  storeCalls: number;
}

export interface LeaseDeps {
  now: () => number;
  log: Logger;
  broadcast?: Broadcast;
  /** `timer` (default): upkeep runs every `upkeepEveryMs` and batches ship every `shipMs` on real
   * timers. `manual`: only on `tick()` and `ship()` — a simulation on a virtual clock drives them. */
  upkeep?: 'timer' | 'manual';
  /** The folder of the lease journals (lease-journal.ts): where admitted and settled calls are
   * durable before the store has them, and where a dead process's are settled from. Without one
   * the journal is memory: durable as long as the process lives (tests, the simulation). */
  journalDir?: string;
  /** The store's reservationTtl, when the caller knows it: a slice is granted for the longer of it
   * and `ttlMs` (a slice granted for a shorter reservationTtl could expire in the store before its
   * first renewal — a process killed just after a grant — and be charged all it held before the
   * next process settles its calls from the journal). */
  reservationTtlMs?: number;
}

/** How often upkeep runs (renewals, idle returns, the kill switches' refresh). */
export function upkeepEveryMs(o: Pick<LeaseOptions, 'validityMs'>): number {
  return Math.max(50, Math.floor(o.validityMs / 4));
}
