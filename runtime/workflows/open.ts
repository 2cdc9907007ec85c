import { join } from 'node:path';
import type { Runtime } from '../runtime.ts';
import { privateDir } from '../store/embedded/open.ts';
import type { DispatchOptions } from './dispatch.ts';
import { HandedBackError } from './dispatch.ts';
import { RunHost } from './host.ts';
import type { RunQueue } from './queue.ts';
import type { RunStore } from './run-store.ts';

/** The durable run store of the configured backend: the SQLite file of the money store, or Redis. */
export async function openRunStore(rt: Runtime): Promise<RunStore> {
  const { config } = rt;
  if (config.store.backend === 'redis') {
    const [{ Redis }, { RedisRunStore }] = await Promise.all([
      import('ioredis'),
      import('./stores/redis.ts'),
    ]);
    const redis = new Redis(config.store.redisUrl!, { maxRetriesPerRequest: 2 });
    redis.on('error', (err: Error) => rt.log.debug('redis connection error (runs)', { error: err.message }));
    const store = new RedisRunStore(redis, config.store.prefix, { now: rt.now });
    const close = store.close.bind(store);
    store.close = async () => {
      await close();
      redis.disconnect();
    };
    return store;
  }
  const { SqliteRunStore } = await import('./stores/sqlite.ts');
  privateDir(config.dataDir);
  return new SqliteRunStore(join(config.dataDir, 'chokepoint.db'), { now: rt.now });
}

/**
 * The runs queue of the configured backend: Redis → BullMQ (`runs` queue, whichever worker is
 * free takes starts and resumes; a dead worker's job is handed on by the stalled-job check);
 * embedded → an in-process queue (no other process to hand work to).
 */
export async function openRunQueue(rt: Runtime): Promise<RunQueue> {
  const { config } = rt;
  const onError = (err: unknown, work?: { runId: string }) => {
    if (err instanceof HandedBackError) return;
    rt.log.error('run work failed', { error: err, run: work?.runId });
  };
  if (config.store.backend === 'redis') {
    const { BullRunQueue } = await import('../../approvals/queues/bull.ts');
    const lockMs = config.workflows.leaseMs;
    return new BullRunQueue({
      redisUrl: config.store.redisUrl!,
      prefix: config.store.prefix,
      lockMs,
      stalledMs: Math.max(500, Math.round(lockMs / 2)),
      onError,
    });
  }
  const { LocalRunQueue } = await import('../../approvals/queues/local.ts');
  return new LocalRunQueue({ onError });
}

export interface OpenRunHostOptions {
  dir?: string;
  watch?: boolean;
  recover?: boolean;
  killPollMs?: number;
  /** Take work from the runs queue in this process (default: config `workers.enabled`). */
  workers?: boolean;
  /** Run runs where they start, without the queue (benchmarks of the executor alone). */
  noQueue?: boolean;
}

/** Loads the workflows folder, opens the run store and the runs queue. Work starts with `startWork`. */
export async function openRunHost(rt: Runtime, opts: OpenRunHostOptions = {}): Promise<RunHost> {
  const runs = await openRunStore(rt);
  const queue = opts.noQueue ? undefined : await openRunQueue(rt);
  const dispatch: DispatchOptions = {
    workers: opts.workers ?? rt.config.workers.enabled,
    concurrency: rt.config.workers.concurrency,
    perWorkflow: rt.config.workers.perWorkflow,
  };
  try {
    return await RunHost.open(rt, {
      dir: opts.dir ?? rt.config.workflowsDir,
      runs,
      watch: opts.watch ?? rt.config.workflows.watch,
      recover: opts.recover,
      leaseMs: rt.config.workflows.leaseMs,
      killPollMs: opts.killPollMs,
      ...(queue ? { queue, dispatch } : {}),
    });
  } catch (err) {
    await queue?.close(false);
    await runs.close();
    throw err;
  }
}
