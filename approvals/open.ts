import { join } from 'node:path';
import type { Runtime } from '../runtime/runtime.ts';
import type { RunHost } from '../runtime/workflows/host.ts';
import type { ApprovalStore } from './port.ts';
import type { RunQueue } from './queue.ts';
import { Approvals, HandedBackError } from './service.ts';
import { RedisSessionStore, SessionBoxes, type SessionStore, SqliteSessionStore } from './sessions.ts';

export interface OpenApprovalsOptions {
  /** Work on runs in this process (default: config `workers.enabled`). */
  workers?: boolean;
}

/**
 * The approval queue and the runs queue of the configured backend, wired to the run host:
 * embedded → SQLite items (in the money store's file) and an in-process queue; Redis → BullMQ
 * (`approvals` queue for items and their expiry, `runs` queue for workers), where starts and
 * resumes go to whichever worker is free. Sets `rt.approvals`.
 */
export async function openApprovals(
  rt: Runtime,
  host: RunHost,
  opts: OpenApprovalsOptions = {},
): Promise<Approvals> {
  const { config } = rt;
  const onError = (err: unknown, work?: { runId: string }) => {
    if (err instanceof HandedBackError) return;
    rt.log.error('run work failed', { error: err, run: work?.runId });
  };
  let store: ApprovalStore;
  let queue: RunQueue;
  let sessions: SessionStore;
  const redis = config.store.backend === 'redis';
  if (redis) {
    const [{ BullApprovalStore }, { BullRunQueue }] = await Promise.all([
      import('./stores/bull.ts'),
      import('./queues/bull.ts'),
    ]);
    const base = { redisUrl: config.store.redisUrl!, prefix: config.store.prefix };
    store = new BullApprovalStore({ ...base, now: rt.now });
    const lockMs = config.workflows.leaseMs;
    queue = new BullRunQueue({ ...base, lockMs, stalledMs: Math.max(500, Math.round(lockMs / 2)), onError });
    const { Redis } = await import('ioredis');
    const redis = new Redis(config.store.redisUrl!, { maxRetriesPerRequest: 2 });
    redis.on('error', (err: Error) =>
      rt.log.debug('redis connection error (sessions)', { error: err.message }),
    );
    sessions = new RedisSessionStore(redis, config.store.prefix);
  } else {
    const [{ SqliteApprovalStore }, { LocalRunQueue }] = await Promise.all([
      import('./stores/sqlite.ts'),
      import('./queues/local.ts'),
    ]);
    store = new SqliteApprovalStore(join(config.dataDir, 'chokepoint.db'), { now: rt.now });
    queue = new LocalRunQueue({ onError });
    sessions = new SqliteSessionStore(join(config.dataDir, 'chokepoint.db'));
  }
  const approvals = new Approvals(rt, host, store, queue, {
    timeoutMs: config.approvals.timeoutMs,
    onTimeout: config.approvals.onTimeout,
    workers: opts.workers ?? config.workers.enabled,
    concurrency: config.workers.concurrency,
    perWorkflow: config.workers.perWorkflow,
    // Starts and resumes go through the runs queue on both backends (the embedded queue runs them
    // in this process), so concurrency limits and recovery behave the same.
    dispatch: true,
  });
  try {
    await approvals.start();
  } catch (err) {
    await approvals.close().catch(() => {});
    throw err;
  }
  rt.approvals = approvals;
  rt.sessions = new SessionBoxes(rt, sessions, store, config.approvals.timeoutMs);
  return approvals;
}
