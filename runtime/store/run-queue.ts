/**
 * The `runs` queue: work on a run (start it, resume it after a decision, pick it up after a
 * worker died) handed to whichever worker is free. Redis: a BullMQ queue processed by BullMQ
 * workers in `chokepoint worker` and `chokepoint serve` processes; a worker that dies mid-run
 * stops renewing its job lock, BullMQ's stalled-job check hands the job to another worker, and
 * that worker resumes the run from its last persisted step (the journal means nothing is billed
 * twice). Embedded: the work runs in this process (no other process to hand it to).
 */

export interface RunWork {
  runId: string;
  /** `start`, `resume` (after a decision), `recover`. */
  cause: 'start' | 'resume' | 'recover';
}

export interface RunQueue {
  readonly backend: 'embedded' | 'redis';
  /** Hands work on a run to a worker. Idempotent by `jobId`: adding it twice runs it once. */
  enqueue(jobId: string, work: RunWork): Promise<void>;
  /**
   * Starts processing with `handler`, which resolves when the run has stopped running on this
   * worker (done, suspended, failed, killed, handed back). At most `concurrency` at a time.
   * A handler that throws an error with `handBack: true` (this worker is stopping mid-run) leaves
   * the work to another worker (Redis); other errors go to the queue's `onError`.
   */
  work(handler: (work: RunWork) => Promise<void>, opts: { concurrency: number }): void;
  /** Waiting + active jobs (for metrics and tests). */
  depth(): Promise<number>;
  /** Stops taking work; with `graceful`, waits for the handlers in flight to finish. */
  close(graceful?: boolean): Promise<void>;
}
