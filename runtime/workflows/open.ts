import { join } from 'node:path';
import type { Runtime } from '../runtime.ts';
import { privateDir } from '../store/embedded/open.ts';
import { RunHost } from './host.ts';
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

/** Loads the workflows folder, opens the run store and recovers runs a crash left behind. */
export async function openRunHost(
  rt: Runtime,
  opts: { dir?: string; watch?: boolean; recover?: boolean; killPollMs?: number } = {},
): Promise<RunHost> {
  const runs = await openRunStore(rt);
  const host = await RunHost.open(rt, {
    dir: opts.dir ?? rt.config.workflowsDir,
    runs,
    watch: opts.watch ?? rt.config.workflows.watch,
    recover: opts.recover,
    leaseMs: rt.config.workflows.leaseMs,
    killPollMs: opts.killPollMs,
  });
  rt.runs = host;
  return host;
}
