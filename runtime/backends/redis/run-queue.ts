import { DelayedError, Queue, Worker } from 'bullmq';
import type { RunQueue, RunWork } from '../../store/run-queue.ts';
import { BullConnections, bullPrefix } from './connection.ts';

export interface BullRunQueueOptions {
  redisUrl: string;
  /** Key prefix of this deployment; the queue's keys are `${prefix}bull:runs:*`. */
  prefix: string;
  /** How long a worker's lock on a job lasts; BullMQ renews it every `lockMs / 2` while the handler runs. */
  lockMs?: number;
  /** How often this worker looks for jobs whose lock expired (their worker died). Default `lockMs`. */
  stalledMs?: number;
  /** Handler errors (with the work) and connection errors (without). */
  onError?: (err: unknown, work?: RunWork) => void;
}

const QUEUE = 'runs';
/** A run is never failed because the workers holding it died: it is handed on, however often. */
const MAX_STALLED = 1000;

/**
 * The BullMQ job id for a run queue job id: BullMQ refuses custom ids with `:` and integer ids,
 * so `%` and `:` are percent-encoded (one-to-one) and the id always starts with `j-`.
 */
export function bullJobId(jobId: string): string {
  return `j-${jobId.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'))}`;
}

/**
 * The Redis `runs` queue: a BullMQ queue; `work()` starts a BullMQ worker. Idempotency is
 * BullMQ's: an add whose job id (see `bullJobId`) exists is ignored (completed jobs are removed, so the id may run
 * again later; the last 1000 failed jobs are kept, and their ids stay taken until they go).
 * A worker that dies mid-job stops renewing its lock; the stalled-job check of any live worker
 * moves the job back to wait and a worker takes it again (`maxStalledCount` is effectively
 * unbounded).
 */
export class BullRunQueue implements RunQueue {
  readonly backend = 'redis' as const;
  private readonly queue: Queue<RunWork>;
  private worker: Worker<RunWork> | null = null;
  private readonly lockMs: number;
  private readonly stalledMs: number;
  private readonly onError: (err: unknown, work?: RunWork) => void;
  private closing: Promise<void> | null = null;
  private readonly connections: BullConnections;

  constructor(private readonly opts: BullRunQueueOptions) {
    this.connections = new BullConnections(opts.redisUrl);
    this.lockMs = opts.lockMs ?? 30_000;
    this.stalledMs = opts.stalledMs ?? this.lockMs;
    const onError = opts.onError ?? (() => {});
    this.onError = (err, work) => {
      try {
        onError(err, work);
      } catch {
        // A failing error callback must not take the worker down.
      }
    };
    this.queue = new Queue<RunWork>(QUEUE, { connection: this.connection(), prefix: this.bullPrefix });
    this.queue.on('error', (err) => this.connectionError(err));
  }

  private get bullPrefix(): string {
    return bullPrefix(this.opts.prefix, QUEUE, this.opts.redisUrl);
  }

  /** A fresh connection spec (or, on a cluster, a connection of ours, closed after BullMQ's). */
  private connection() {
    return this.connections.next();
  }

  private connectionError(err: unknown): void {
    // Closing connections reject what was in flight on them: that is shutdown, not a fault.
    if (this.closing && /\bclos(ed|ing)\b/i.test(String((err as Error)?.message))) return;
    this.onError(err);
  }

  async enqueue(jobId: string, work: RunWork): Promise<void> {
    if (this.closing) throw new Error('run queue is closed');
    await this.queue.add('run', work, {
      jobId: bullJobId(jobId),
      removeOnComplete: true,
      removeOnFail: { count: 1000 },
    });
  }

  work(handler: (work: RunWork) => Promise<void>, opts: { concurrency: number }): void {
    if (this.closing) throw new Error('run queue is closed');
    if (this.worker) throw new Error('run queue is already working');
    if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) {
      throw new Error(`concurrency must be a positive integer, got ${opts.concurrency}`);
    }
    const worker = new Worker<RunWork>(
      QUEUE,
      async (job, token) => {
        try {
          await handler(job.data);
        } catch (err) {
          if ((err as { handBack?: boolean })?.handBack && token) {
            // This worker is stopping with the run unfinished: back to the queue for another.
            await job.moveToDelayed(Date.now() + 50, token);
            throw new DelayedError();
          }
          this.onError(err, job.data);
          throw err; // the job fails (kept among the last 1000 failed, for inspection)
        }
      },
      {
        connection: this.connection(),
        prefix: this.bullPrefix,
        concurrency: opts.concurrency,
        lockDuration: this.lockMs,
        stalledInterval: this.stalledMs,
        maxStalledCount: MAX_STALLED,
      },
    );
    worker.on('error', (err) => this.connectionError(err));
    this.worker = worker;
  }

  async depth(): Promise<number> {
    return this.queue.getJobCountByTypes('waiting', 'active', 'delayed', 'prioritized');
  }

  close(graceful?: boolean): Promise<void> {
    this.closing ??= (async () => {
      // Graceful: the active handlers finish and their jobs complete. Forced: the jobs stay
      // active, their locks lapse, and another worker's stalled check hands them on.
      if (this.worker) await this.worker.close(!graceful);
      await this.queue.close();
      this.connections.close();
    })();
    return this.closing;
  }
}
