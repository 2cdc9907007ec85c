import type { RunQueue, RunWork } from '../store/run-queue.ts';
import type { RunRecord } from '../store/runs.ts';

/** A worker stopped (graceful shutdown) with the run still running: the queue hands it on. */
export class HandedBackError extends Error {
  readonly handBack = true;
  constructor(runId: string) {
    super(`run ${runId} handed back: this worker is stopping`);
    this.name = 'HandedBackError';
  }
}

/** At most `limit` holders at once; the rest wait in order. */
class Slots {
  private used = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async take(): Promise<void> {
    if (this.used < this.limit) {
      this.used++;
      return;
    }
    await new Promise<void>((r) => this.waiting.push(r));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.used--;
  }
}

export interface DispatchOptions {
  /** Take work from the queue in this process (default true). */
  workers?: boolean;
  /** Runs worked on at once by this process. */
  concurrency?: number;
  /** Per workflow id: at most this many of its runs at once in this process. */
  perWorkflow?: Record<string, number>;
}

/** What a worker does with a run: run it here from its last step until it stops. */
export interface RunWorker {
  get(id: string): Promise<RunRecord | undefined>;
  adopt(id: string): Promise<RunRecord>;
}

/** The queue's job id for work on a run: one job per run and suspension, whatever the cause. */
export const runJobId = (r: Pick<RunRecord, 'id' | 'suspensions'>) => `run-${r.id}-${r.suspensions}`;

/**
 * The runs queue and this process's worker slots: starts and resumes are enqueued (idempotent by
 * job id) and whichever worker is free runs them — on both backends, so concurrency limits and
 * recovery behave the same (the embedded queue runs them in this process).
 */
export class Dispatcher {
  private readonly slots = new Map<string, Slots>();
  private readonly stopped = new Set<(run: RunRecord) => Promise<void>>();
  private closing?: Promise<void>;

  constructor(
    readonly queue: RunQueue,
    private readonly runs: RunWorker,
    private readonly opts: DispatchOptions = {},
  ) {}

  /** Starts taking work (unless this process has no workers). */
  start(): void {
    if (this.opts.workers === false) return;
    this.queue.work((work) => this.work(work), { concurrency: this.opts.concurrency ?? 32 });
  }

  enqueue(run: RunRecord, cause: RunWork['cause']): Promise<void> {
    return this.queue.enqueue(runJobId(run), { runId: run.id, cause });
  }

  onStopped(listener: (run: RunRecord) => Promise<void>): () => void {
    this.stopped.add(listener);
    return () => this.stopped.delete(listener);
  }

  /** Stops taking work and hands back what is in flight (the host stops the runs themselves). */
  close(): Promise<void> {
    this.closing ??= this.queue.close(true);
    return this.closing;
  }

  /**
   * A worker's share of the queue: run the run here until it stops, then let the listeners act on
   * it (an approval item for a suspension) before the job completes — a worker that dies in
   * between leaves the job to another, which finds the run suspended and does the same.
   */
  private async work(work: RunWork): Promise<void> {
    const run = await this.runs.get(work.runId);
    if (!run) return;
    const limit = this.opts.perWorkflow?.[run.workflow];
    let slots: Slots | undefined;
    if (limit) {
      slots = this.slots.get(run.workflow) ?? new Slots(limit);
      this.slots.set(run.workflow, slots);
      await slots.take();
    }
    try {
      const r = await this.runs.adopt(work.runId);
      if (r.state === 'running' && this.closing) throw new HandedBackError(r.id);
      for (const listener of this.stopped) await listener(r);
    } finally {
      slots?.give();
    }
  }
}
