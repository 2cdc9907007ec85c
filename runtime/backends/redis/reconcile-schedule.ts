import type { Queue } from 'bullmq';
import {
  type ReconcileSchedule,
  type ScheduledReconciler,
  type ScheduleOptions,
  yesterday,
} from '../../reconcile/schedule.ts';
import { BullConnections, bullPrefix, connectRedis } from './connection.ts';

const QUEUE = 'reconcile';

/** The id of the BullMQ job scheduler of the daily run. */
export const SCHEDULER_ID = 'reconcile-daily';

export type BullReconcileSchedule = ReconcileSchedule & { queue: Queue };

/** BullMQ on the Redis backend: keys under `${prefix}bull:reconcile:*`. */
export async function bullSchedule(
  rec: ScheduledReconciler,
  opts: ScheduleOptions & { redisUrl: string; prefix: string },
): Promise<BullReconcileSchedule> {
  const { Queue, Worker } = await import('bullmq');
  const connections = new BullConnections(opts.redisUrl);
  // The queue's connection is ours, so that closing never waits on a Redis that went away.
  const queueConn = connectRedis(opts.redisUrl, { maxRetriesPerRequest: null });
  const prefix = bullPrefix(opts.prefix, QUEUE, opts.redisUrl);
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
    { connection: connections.next(), prefix, concurrency: 1 },
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
      connections.close();
    },
  };
}
