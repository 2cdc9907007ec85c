import type { Logger } from '../log.ts';
import { EnforcementUnavailableError, type LeaseOp, type LeaseOpResult, type MoneyStore } from './port.ts';

/**
 * The lease steps waiting for the store (runtime/store/leases.ts), sent in one batch every `shipMs`
 * or at once when a step is urgent, one batch at a time so a lease's steps reach the store in order.
 */
export interface Pending<L> {
  op: LeaseOp;
  lease?: L;
  /** Waits for the batch that carries it (a slice given back, which a kill acknowledges). */
  done?: () => void;
}

export interface BatchHooks<L> {
  store: Pick<MoneyStore, 'leaseOps'>;
  log: Logger;
  shipMs: number;
  /** No timers: the caller ships (a simulation on a virtual clock). */
  manual: boolean;
  /** Counts a batch of `steps` steps. */
  sent(steps: number): void;
  /** A step's lease is no longer open in the store. */
  closed(lease: L): void;
  /** After each batch written (the journal may compact). */
  written(): void;
  /** A batch failed: nothing more from memory until the store answers. */
  failed(): void;
}

/** What `step` answers for a step that waits for the next batch: it is queued. */
const QUEUED: Promise<void> = Promise.resolve();

export class LeaseBatches<L> {
  queue: Pending<L>[] = [];
  shipping: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Why the last batch failed (undefined once one is written). */
  private error: unknown;

  constructor(private readonly h: BatchHooks<L>) {}

  /** Queues a step for the next batch; `urgent` ships it now and resolves once it is written. */
  step(op: LeaseOp, lease?: L, urgent = false): Promise<void> {
    if (!urgent) {
      this.queue.push(lease ? { op, lease, done: undefined } : { op, done: undefined });
      if (!this.h.manual && !this.timer && !this.shipping) this.later();
      return QUEUED;
    }
    return new Promise((done) => {
      this.queue.push(lease ? { op, lease, done } : { op, done });
      setImmediate(() => void this.ship());
    });
  }

  private later(): void {
    this.timer = setTimeout(() => void this.ship(), this.h.shipMs);
    this.timer.unref();
  }

  /**
   * Sends every queued step in one batch. A batch that fails is queued again — a call is charged
   * once however often it is sent — except what it freed, which the lease's close frees.
   */
  ship(): Promise<void> {
    if (this.shipping) return this.shipping.then(() => this.ship());
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    this.queue = [];
    if (!batch.length) return Promise.resolve();
    this.error = undefined;
    this.h.sent(batch.length);
    this.shipping = this.h.store.leaseOps(batch.map((p) => p.op)).then(
      (results: LeaseOpResult[]) => {
        batch.forEach((p, i) => {
          if (p.lease && !results[i]!.open && !p.op.close) this.h.closed(p.lease);
          p.done?.();
        });
        this.h.written();
      },
      (err) => {
        this.error = err;
        this.h.failed();
        this.h.log.warn('a batch of lease steps failed: it is sent again', {
          steps: batch.length,
          error: err,
        });
        const again = batch
          .filter((p) => p.op.free === undefined)
          .map((p): Pending<L> => (p.lease ? { op: p.op, lease: p.lease } : { op: p.op }));
        this.queue = [...again, ...this.queue];
        for (const p of batch) p.done?.();
      },
    );
    const sent = this.shipping;
    void sent.finally(() => {
      if (this.shipping === sent) this.shipping = undefined;
      if (this.queue.length && !this.timer && !this.h.manual) this.later();
    });
    return sent;
  }

  /**
   * Ships what is queued now (after the batch on its way) and waits for it; fails closed if the
   * store does not take it. Steps queued after it began are not waited for: under load a read that
   * waited for an empty queue would ship batch after batch of a few calls each, and wait as long.
   */
  async drain(): Promise<void> {
    if (!this.queue.length && !this.shipping) return;
    await this.ship();
    if (this.error) {
      throw new EnforcementUnavailableError('could not write settled calls to the money store', {
        cause: this.error,
      });
    }
  }
}
