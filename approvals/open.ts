import { join } from 'node:path';
import type { Runtime } from '../runtime/runtime.ts';
import type { RunHost } from '../runtime/workflows/host.ts';
import type { ApprovalStore } from './port.ts';
import { Approvals } from './service.ts';
import { RedisSessionStore, SessionBoxes, type SessionStore, SqliteSessionStore } from './sessions.ts';

/**
 * The approval items of the configured backend (embedded → SQLite, in the money store's file;
 * Redis → BullMQ's `approvals` queue for items and their expiry), listening to the runs through
 * their port, and the session time boxes of outside agents. Started: items are opened for
 * suspensions a crash left without one, expiry runs.
 */
export async function openApprovals(
  rt: Runtime,
  runs: RunHost,
): Promise<{ approvals: Approvals; sessions: SessionBoxes }> {
  const { config } = rt;
  let store: ApprovalStore;
  let sessions: SessionStore;
  if (config.store.backend === 'redis') {
    const { BullApprovalStore } = await import('./stores/bull.ts');
    store = new BullApprovalStore({
      redisUrl: config.store.redisUrl!,
      prefix: config.store.prefix,
      now: rt.now,
    });
    const { Redis } = await import('ioredis');
    const redis = new Redis(config.store.redisUrl!, { maxRetriesPerRequest: 2 });
    redis.on('error', (err: Error) =>
      rt.log.debug('redis connection error (sessions)', { error: err.message }),
    );
    sessions = new RedisSessionStore(redis, config.store.prefix);
  } else {
    const { SqliteApprovalStore } = await import('./stores/sqlite.ts');
    store = new SqliteApprovalStore(join(config.dataDir, 'chokepoint.db'), { now: rt.now });
    sessions = new SqliteSessionStore(join(config.dataDir, 'chokepoint.db'));
  }
  const approvals = new Approvals({ money: rt.store, log: rt.log, now: rt.now }, runs, store, {
    timeoutMs: config.approvals.timeoutMs,
    onTimeout: config.approvals.onTimeout,
  });
  try {
    await approvals.start();
  } catch (err) {
    await approvals.close().catch(() => {});
    await sessions.close().catch(() => {});
    throw err;
  }
  return { approvals, sessions: new SessionBoxes(rt, sessions, store, config.approvals.timeoutMs) };
}
