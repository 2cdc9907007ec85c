import type { Logger } from '../log.ts';
import { type Reconciler, yesterday } from './service.ts';

/**
 * The daily reconciliation of yesterday (UTC). Embedded: a timer in this process. Redis: a BullMQ
 * job scheduler (`upsertJobScheduler`, idempotent: every replica upserts the same one) and a
 * worker in every process that opened it, so exactly one of them runs each day's job, and a day
 * missed while every process was down runs when one comes back.
 */
export interface ReconcileSchedule {
  readonly kind: 'timer' | 'bullmq';
  /** Runs a reconciliation as the schedule would (Redis: through the queue), for `day` or yesterday. */
  trigger(day?: string): Promise<void>;
  /** When the next scheduled run is due (epoch ms), if known. */
  next(): Promise<number | undefined>;
  close(): Promise<void>;
}

export interface ScheduleOptions {
  /** `HH:MM`, UTC. */
  at: string;
  /** Instead of daily: every this many ms. */
  everyMs?: number;
  now: () => number;
  log: Logger;
  /** Embedded: how long after start a missed run of yesterday is made up (default 60 s). */
  catchUpMs?: number;
}

/** The next `HH:MM` UTC at or after `now`... strictly after. */
export function nextDaily(at: string, now: number): number {
  const [h, m] = at.split(':').map(Number) as [number, number];
  const d = new Date(now);
  let t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), h, m);
  if (t <= now) t += 86_400_000;
  return t;
}

export function timerSchedule(rec: Reconciler, opts: ScheduleOptions): ReconcileSchedule {
  let timer: NodeJS.Timeout | undefined;
  let due: number | undefined;
  let closed = false;
  let running: Promise<unknown> = Promise.resolve();
  const fire = (day?: string) => {
    running = running.then(() => (closed ? undefined : rec.scheduled(day ?? yesterday(opts.now()))));
    return running.then(() => undefined);
  };
  const arm = () => {
    if (closed) return;
    const now = opts.now();
    due = opts.everyMs ? now + opts.everyMs : nextDaily(opts.at, now);
    // Long waits are cut into steps: a clock that jumps (suspend, NTP) is re-read each step.
    timer = setTimeout(
      () => {
        if (opts.now() >= (due ?? 0) - 5) void fire().finally(arm);
        else arm();
      },
      Math.min(Math.max(due - now, 0), 3_600_000),
    );
    timer.unref();
  };
  arm();
  // A restart that slept through the daily run makes it up once (not in `every` mode).
  const catchUp = opts.everyMs
    ? undefined
    : setTimeout(async () => {
        const day = yesterday(opts.now());
        const done = await rec.list({ day, trigger: 'schedule', limit: 1 }).catch(() => [1]);
        if (!done.length && opts.now() >= nextDaily(opts.at, opts.now()) - 86_400_000) await fire(day);
      }, opts.catchUpMs ?? 60_000);
  catchUp?.unref();
  return {
    kind: 'timer',
    trigger: (day) => fire(day),
    next: async () => due,
    async close() {
      closed = true;
      clearTimeout(timer);
      clearTimeout(catchUp);
      await running.catch(() => undefined);
    },
  };
}

export const SCHEDULER_ID = 'reconcile-daily';

export type BullReconcileSchedule = ReconcileSchedule & { queue: import('bullmq').Queue };
const QUEUE = 'reconcile';

/** BullMQ on the Redis backend: keys under `${prefix}bull:reconcile:*`. */
export async function bullSchedule(
  rec: Reconciler,
  opts: ScheduleOptions & { redisUrl: string; prefix: string },
): Promise<BullReconcileSchedule> {
  const { Queue, Worker } = await import('bullmq');
  const { Redis } = await import('ioredis');
  const connection = { url: opts.redisUrl, maxRetriesPerRequest: null };
  // The queue's connection is ours, so that closing never waits on a Redis that went away.
  const queueConn = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  const prefix = `${opts.prefix}bull`;
  let closing = false;
  const onError = (err: Error) => {
    if (!closing) opts.log.warn('reconcile queue error', { error: err.message });
  };
  queueConn.on('error', onError);
  const queue = new Queue<{ day?: string }>(QUEUE, { connection: queueConn, prefix });
  queue.on('error', onError);
  const [h, m] = opts.at.split(':').map(Number) as [number, number];
  try {
    await queue.upsertJobScheduler(
      SCHEDULER_ID,
      opts.everyMs ? { every: opts.everyMs } : { pattern: `0 ${m} ${h} * * *`, tz: 'UTC' },
      { name: 'reconcile', data: {}, opts: { removeOnComplete: 100, removeOnFail: 100 } },
    );
  } catch (err) {
    closing = true;
    await queue.close().catch(() => undefined);
    queueConn.disconnect();
    throw err;
  }
  let inFlight: Promise<unknown> = Promise.resolve();
  const worker = new Worker<{ day?: string }>(
    QUEUE,
    async (job) => {
      // The day before the one the job was due (not the one it runs on, if it waited for a worker).
      const due = job.timestamp + (job.opts.delay ?? 0);
      const day = job.data.day ?? yesterday(Number.isFinite(due) && due > 0 ? due : opts.now());
      const run = rec.scheduled(day);
      inFlight = run.catch(() => undefined);
      const r = await run;
      return r ? { id: r.id, verdict: r.verdict } : { failed: true };
    },
    { connection, prefix, concurrency: 1 },
  );
  worker.on('error', onError);
  return {
    kind: 'bullmq',
    queue,
    async trigger(day) {
      await queue.add('reconcile', day ? { day } : {}, { removeOnComplete: 100, removeOnFail: 100 });
    },
    async next() {
      const s = await queue.getJobScheduler(SCHEDULER_ID);
      return s?.next ?? undefined;
    },
    async close() {
      closing = true;
      // The run in hand finishes (bounded), then the connections are dropped without waiting on
      // Redis: a graceful BullMQ close waits for Redis forever when it is down.
      await Promise.race([inFlight, new Promise((r) => setTimeout(r, 10_000).unref())]);
      await worker.close(true);
      await queue.close();
      queueConn.disconnect();
    },
  };
}
