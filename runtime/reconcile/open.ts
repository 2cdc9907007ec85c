import { join } from 'node:path';
import type { Runtime } from '../runtime.ts';
import { bullSchedule, type ReconcileSchedule, timerSchedule } from './schedule.ts';
import { Reconciler, type ReconcileSettings } from './service.ts';
import { type ReconStore, RedisReconStore, SqliteReconStore } from './store.ts';

export interface ReconcileService {
  reconciler: Reconciler;
  /** The daily job, when on (`reconcile.schedule` and a way to fetch the provider's reports). */
  schedule?: ReconcileSchedule;
  close(): Promise<void>;
}

/**
 * Opens the reconciler on the runtime's backend (a table in the embedded database, or keys under
 * the Redis prefix) and, unless told not to, starts the daily job.
 */
export async function openReconciliation(
  rt: Runtime,
  settings: ReconcileSettings,
  opts: { schedule?: boolean; catchUpMs?: number } = {},
): Promise<ReconcileService> {
  const closers: Array<() => Promise<void> | void> = [];
  let store: ReconStore;
  if (rt.config.store.backend === 'redis') {
    const { Redis } = await import('ioredis');
    const redis = new Redis(rt.config.store.redisUrl!, { maxRetriesPerRequest: 2, lazyConnect: false });
    redis.on('error', (err: Error) =>
      rt.log.debug('redis connection error (reconcile)', { error: err.message }),
    );
    closers.push(() => redis.disconnect());
    store = new RedisReconStore(redis, rt.config.store.prefix);
  } else {
    store = new SqliteReconStore(join(rt.config.dataDir, 'chokepoint.db'));
    closers.push(() => store.close());
  }
  const reconciler = new Reconciler(rt, store, settings);
  let schedule: ReconcileSchedule | undefined;
  if ((opts.schedule ?? true) && settings.schedule) {
    if (!reconciler.providerReports()) {
      rt.log.info(
        'daily reconciliation is off: no Admin API key to fetch the provider report (set ANTHROPIC_ADMIN_KEY); `chokepoint reconcile --report FILE` still works',
      );
    } else {
      const o = {
        at: settings.at,
        everyMs: settings.everyMs,
        now: rt.now,
        log: rt.log,
        catchUpMs: opts.catchUpMs,
      };
      try {
        schedule =
          rt.config.store.backend === 'redis'
            ? await bullSchedule(reconciler, {
                ...o,
                redisUrl: rt.config.store.redisUrl!,
                prefix: rt.config.store.prefix,
              })
            : timerSchedule(reconciler, o);
      } catch (err) {
        for (const c of closers.reverse()) await c();
        throw err;
      }
    }
  }
  return {
    reconciler,
    schedule,
    async close() {
      await schedule?.close();
      for (const c of closers.reverse()) await c();
    },
  };
}
