import { performance } from 'node:perf_hooks';
import type { Identity, Scope } from '../identity.ts';
import type { Micros } from '../money.ts';
import type { Admission, BudgetSpec, LedgerInput, Reservation } from '../store/port.ts';
import type { CallDeps } from './call.ts';
import { refusalOf } from './decide.ts';
import type { ToolObservation } from './observe.ts';
import { budgetExhausted, killed, type Refusal } from './refusal.ts';

/**
 * A metered call that is not a model call (an MCP tool): the same decide → call → account steps
 * as a model call, with a fixed price instead of a token estimate. Its price is admitted like a
 * model call's worst case (kill switches and every budget, in one atomic step) or refused as a
 * value; then the work runs; then what it cost is settled (0 releases the reservation) and one
 * ledger entry written. An unpriced call reserves nothing and is only ledgered.
 */
export interface MeteredCall {
  identity: Identity;
  requestId: string;
  /** What the ledger calls it (`<server>__<tool>`). */
  name: string;
  /** µ$ admitted before the call; 0 reserves nothing. */
  price: Micros;
  /** Budgets to create with these specs if missing (a run's spend box). */
  provision?: Record<Scope, BudgetSpec>;
  /** performance.now() when the call began, for the ledger's latency (default: now). */
  started?: number;
}

/** What the work reports back for the ledger, with the value it produced. */
export interface MeteredWork<T> {
  value: T;
  outcome: 'ok' | 'error' | 'refused';
  code?: string;
  /** What it cost, settled against the reservation (only a priced call costs anything). */
  cost: Micros;
  /** Result size (MCP tools). */
  bytes?: number;
  /** False: cut short by a stop, nothing to record. Ignored when a price was reserved. */
  record?: boolean;
}

export type Metered<T> = { ok: true; value: T; ledgerId?: string } | { ok: false; refusal: Refusal };

export async function metered<T>(
  d: CallDeps,
  call: MeteredCall,
  work: () => Promise<MeteredWork<T>>,
): Promise<Metered<T>> {
  const started = call.started ?? performance.now();
  // What the ledger entry says (`meter` fills it in), for the observers.
  const seen: ToolObservation = { outcome: 'error', code: 'tool_error', cost: 0, reserved: 0 };
  try {
    return await meter(d, call, started, work, seen);
  } finally {
    // After the ledger entry, whatever happened: the observers (traces) see every tool call.
    if (d.observer.tool) d.observer.tool(call, seen, { started, ended: performance.now() });
  }
}

async function meter<T>(
  d: CallDeps,
  call: MeteredCall,
  started: number,
  work: () => Promise<MeteredWork<T>>,
  seen: ToolObservation,
): Promise<Metered<T>> {
  const entry = (w: Omit<MeteredWork<unknown>, 'value'>, reservation?: Reservation): LedgerInput => {
    seen.outcome = w.outcome;
    seen.code = w.code;
    seen.cost = reservation ? w.cost : 0;
    seen.reserved = reservation?.amount ?? 0;
    return entryOf(call, started, w, reservation);
  };
  let reservation: Reservation | undefined;
  if (call.price > 0) {
    let admission: Admission;
    try {
      admission = await d.store.admit({
        identity: call.identity,
        amount: call.price,
        provision: call.provision,
        requestId: call.requestId,
        kind: 'tool',
        name: call.name,
      });
    } catch (err) {
      // Enforcement cannot decide: refused (fail closed), as a model call is.
      const refused = { outcome: 'refused', code: 'enforcement_unavailable', cost: 0 } as const;
      await d.store.appendLedger(entry(refused)).catch(() => undefined);
      return { ok: false, refusal: await refusalOf(d, call.identity, err) };
    }
    if (!admission.ok) {
      await d.store.appendLedger(entry({ outcome: 'refused', code: admission.refusal.code, cost: 0 }));
      const r = admission.refusal;
      return {
        ok: false,
        refusal: r.code === 'killed' ? killed(r.kill) : budgetExhausted(r.budget, r.amount, d.now()),
      };
    }
    reservation = admission.reservation;
  }
  let done: MeteredWork<T>;
  try {
    done = await work();
  } catch (err) {
    if (reservation)
      await d.releaseSafely(
        reservation,
        entry({ outcome: 'error', code: 'tool_error', cost: 0 }, reservation),
      );
    throw err;
  }
  if (!reservation) {
    if (done.record === false) {
      seen.code = 'stopped';
      return { ok: true, value: done.value };
    }
    seen.ledgerId = (await d.store.appendLedger(entry(done))).id;
    return { ok: true, value: done.value, ledgerId: seen.ledgerId };
  }
  const settled =
    done.cost > 0
      ? await d.settleSafely(reservation, entry(done, reservation))
      : await d.releaseSafely(reservation, entry(done, reservation));
  seen.ledgerId = settled?.id;
  return { ok: true, value: done.value, ledgerId: settled?.id };
}

function entryOf(
  call: MeteredCall,
  started: number,
  w: Omit<MeteredWork<unknown>, 'value'>,
  reservation?: Reservation,
): LedgerInput {
  return {
    requestId: call.requestId,
    identity: call.identity,
    kind: 'tool',
    name: call.name,
    tokens: { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 },
    reserved: reservation?.amount ?? 0,
    cost: reservation ? w.cost : 0,
    outcome: w.outcome,
    code: w.code,
    latencyMs: Math.round(performance.now() - started),
    ...(w.bytes === undefined ? {} : { bytes: w.bytes }),
  };
}
