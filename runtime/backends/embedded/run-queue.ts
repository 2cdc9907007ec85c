import type { RunQueue, RunWork } from '../../store/run-queue.ts';

export interface LocalRunQueueOptions {
  /** Called with what a handler threw (or rejected with); the queue goes on with the next job. */
  onError?: (err: unknown, work?: RunWork) => void;
}

interface Job {
  jobId: string;
  work: RunWork;
}

/**
 * The embedded `runs` queue: work runs in this process, FIFO, at most `concurrency` handlers at
 * a time. A job id is taken while its job waits or runs (enqueueing it again is a no-op); once
 * the handler has settled, the same id may run again. Nothing survives the process: a run that
 * was waiting here is picked up again by recovery at the next start.
 */
export class LocalRunQueue implements RunQueue {
  readonly backend = 'embedded' as const;
  private readonly onError: (err: unknown, work?: RunWork) => void;
  private readonly waiting: Job[] = [];
  /** Ids of the jobs waiting or active. */
  private readonly taken = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private handler: ((work: RunWork) => Promise<void>) | null = null;
  private concurrency = 1;
  private closed = false;

  constructor(opts: LocalRunQueueOptions = {}) {
    this.onError = opts.onError ?? (() => {});
  }

  async enqueue(jobId: string, work: RunWork): Promise<void> {
    if (this.closed) throw new Error('run queue is closed');
    if (this.taken.has(jobId)) return;
    this.taken.add(jobId);
    this.waiting.push({ jobId, work: { ...work } });
    this.pump();
  }

  work(handler: (work: RunWork) => Promise<void>, opts: { concurrency: number }): void {
    if (this.closed) throw new Error('run queue is closed');
    if (this.handler) throw new Error('run queue is already working');
    if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) {
      throw new Error(`concurrency must be a positive integer, got ${opts.concurrency}`);
    }
    this.handler = handler;
    this.concurrency = opts.concurrency;
    this.pump();
  }

  async depth(): Promise<number> {
    return this.taken.size;
  }

  async close(graceful?: boolean): Promise<void> {
    this.closed = true;
    // The waiting jobs are dropped: their ids become free (nothing here outlives the process).
    for (const job of this.waiting.splice(0)) this.taken.delete(job.jobId);
    if (graceful) await Promise.all(this.inFlight);
  }

  /** Starts waiting jobs while there is a handler and a free slot. */
  private pump(): void {
    const handler = this.handler;
    if (!handler) return;
    while (!this.closed && this.inFlight.size < this.concurrency) {
      const job = this.waiting.shift();
      if (!job) return;
      // The slot is taken now; the handler itself starts on a later tick (never inside enqueue).
      const run: Promise<void> = Promise.resolve()
        .then(() => handler(job.work))
        .catch((err: unknown) => this.report(err, job.work))
        .finally(() => {
          this.inFlight.delete(run);
          this.taken.delete(job.jobId);
          this.pump();
        });
      this.inFlight.add(run);
    }
  }

  private report(err: unknown, work: RunWork): void {
    try {
      this.onError(err, work);
    } catch {
      // A failing error callback must not stop the queue.
    }
  }
}
