import type Database from 'better-sqlite3';
import { EnforcementUnavailableError, StoreInputError } from '../../../store/port.ts';

/** Most operations one group commit takes; the rest go in the next turn's. */
const MAX_GROUP = 256;

interface Grouped {
  what: string;
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for the embedded money store's hot path. Admits, settles and releases asked for in
 * one turn of the event loop are applied in order in ONE `BEGIN IMMEDIATE` transaction, each inside
 * its own savepoint (one that throws is rolled back alone and rejects alone), and every caller is
 * answered only after the COMMIT: an admission is durable before its call is forwarded. Under load
 * this turns two commits per call (the dominant cost: each writes the touched pages to the WAL)
 * into one per turn; alone, an operation waits for the end of the current turn (setImmediate) and
 * no longer. (A settle is not held back for the next admit to share its commit: that would put the
 * settle on the next call's critical path, where now it runs while the answer travels.) Atomicity
 * across processes sharing the file is the write lock's, as for every other transaction.
 */
export class GroupCommit {
  private pending: Grouped[] = [];
  private nested: Database.Transaction<(f: () => unknown) => unknown> | undefined;
  private tx: Database.Transaction<(batch: Grouped[], outcomes: unknown[]) => void> | undefined;

  constructor(
    private readonly db: Database.Database,
    /** Called when an operation (or a whole group) was rolled back. */
    private readonly rolledBack: () => void,
  ) {}

  run<T>(what: string, fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ what, fn, resolve: resolve as (v: unknown) => void, reject });
      if (this.pending.length === 1) setImmediate(this.flush);
    });
  }

  /** Answers everything still waiting (before the file closes). */
  drain(): void {
    while (this.pending.length && this.db.open) this.flush();
  }

  private readonly flush = (): void => {
    if (!this.pending.length) return;
    // A bounded group: under overload one transaction must not hold the event loop for long.
    const batch = this.pending.length > MAX_GROUP ? this.pending.splice(0, MAX_GROUP) : this.pending;
    if (batch === this.pending) this.pending = [];
    else setImmediate(this.flush);
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.tx ??= this.db.transaction((b: Grouped[], o: unknown[]) => this.apply(b, o));
      this.tx.immediate(batch, outcomes);
    } catch (err) {
      // BEGIN or COMMIT failed (file gone, disk full, lock timeout): nothing of the batch happened.
      this.rolledBack();
      for (const op of batch) op.reject(failure(op.what, err));
      return;
    }
    batch.forEach((op, i) => {
      const o = outcomes[i]!;
      if (o.ok) op.resolve(o.value);
      else op.reject(failure(op.what, o.error));
    });
  };

  private apply(batch: Grouped[], outcomes: unknown[]): void {
    if (batch.length === 1) {
      // Alone, the transaction itself is the savepoint: a throw rolls it back and rejects the op.
      outcomes.push({ ok: true, value: batch[0]!.fn() });
      return;
    }
    for (const op of batch) {
      try {
        this.nested ??= this.db.transaction((f: () => unknown) => f());
        outcomes.push({ ok: true, value: this.nested(op.fn) });
      } catch (error) {
        // Rolled back to the savepoint, expirations included.
        this.rolledBack();
        outcomes.push({ ok: false, error });
      }
    }
  }
}

/** A store failure as the caller sees it: input errors as they are, the rest fail closed. */
function failure(what: string, err: unknown): Error {
  if (err instanceof StoreInputError || err instanceof EnforcementUnavailableError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new EnforcementUnavailableError(`embedded money store could not ${what}: ${detail}`, {
    cause: err,
  });
}
