import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import {
  openPartitionedStore,
  PartitionedMoneyStore,
} from '../../../runtime/backends/redis/money/partitioned.ts';
import { openRedisStore, type RedisMoneyStore } from '../../../runtime/backends/redis/money/store.ts';
import type { Identity } from '../../../runtime/identity.ts';
import type { MoneyStore, MoneyStoreOptions } from '../../../runtime/store/port.ts';
import { budgetId } from '../../../runtime/store/records.ts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A unique hash-tagged prefix per test run; `cleanup` deletes every key under it. */
export function testPrefixes(name: string) {
  const run = `cpt-${name}-${randomBytes(4).toString('hex')}`;
  let n = 0;
  return {
    run,
    next: () => `{${run}-${n++}}`,
    async cleanup(): Promise<void> {
      const redis = new Redis(REDIS_URL);
      try {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `{${run}-*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length) await redis.unlink(...keys);
        } while (cursor !== '0');
      } finally {
        redis.disconnect();
      }
    },
  };
}

export async function corruptCeiling(
  store: RedisMoneyStore | PartitionedMoneyStore,
  scope: string,
): Promise<void> {
  // A partitioned store: its home and every partition's copy (a missing copy becomes a corrupt one).
  const all =
    store instanceof PartitionedMoneyStore
      ? [store.home, ...Array.from({ length: store.partitions }, (_, i) => store.part(i))]
      : [store];
  for (const s of all) await s.redis.hset(s.keys.budget(budgetId(scope)), 'ceiling', 'lots');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A throwaway redis-server child process, for tests that take Redis away mid-test. The port is
 * free when picked but may be taken before redis-server binds it (by another test worker): a
 * server that exits, or a port that answers with some other process, means another port.
 */
export async function throwawayRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  for (let attempt = 0; ; attempt++) {
    const started = await startOn(await freePort());
    if (started) return started;
    if (attempt >= 5) throw new Error('could not start a throwaway redis-server on a free port');
  }
}

async function startOn(port: number): Promise<{ url: string; stop(): Promise<void> } | undefined> {
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
    { stdio: 'ignore' },
  );
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: 0 });
  probe.on('error', () => {});
  try {
    // Up to 30 s: a loaded machine can take its time to start a process.
    for (let i = 0; ; i++) {
      if (child.exitCode !== null || child.signalCode !== null) return undefined; // the port was taken
      try {
        // A port held by something that is not Redis may never answer: give up on it after 5 s.
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('no Redis answer')), 5000);
        });
        try {
          await Promise.race([probe.connect(), late]);
        } finally {
          clearTimeout(timer);
        }
        break;
      } catch (err) {
        if (String(err).includes('no Redis answer')) {
          await stop();
          return undefined;
        }
        if (i > 1500) throw new Error('redis-server did not start within 30 s');
        probe.disconnect();
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    // The server that answers must be this child, not one another test started on the same port.
    const pid = /process_id:(\d+)/.exec(await probe.info('server'))?.[1];
    if (Number(pid) !== child.pid) {
      await stop();
      return undefined;
    }
    return { url, stop };
  } finally {
    probe.disconnect();
  }
}

export async function openDoomedRedis(options: MoneyStoreOptions) {
  const server = await throwawayRedis();
  const store = await openRedisStore(server.url, { ...options, commandTimeoutMs: 500 });
  return { store, cut: () => server.stop() };
}

/** A partitioned store (3 partitions) on a throwaway Redis the test takes away. */
export async function openDoomedPartitioned(options: MoneyStoreOptions) {
  const server = await throwawayRedis();
  const store = await openPartitionedStore(server.url, { ...options, commandTimeoutMs: 500, partitions: 3 });
  return { store, cut: () => server.stop() };
}

/**
 * Admits `amount` for `identity` from each store in turn until every store was refused twice in a
 * row, 25 ms apart (a partitioned store refuses a budget it found full for 20 ms without asking
 * again). Returns how many were admitted.
 */
export async function fill(all: MoneyStore[], identity: Identity, amount: number): Promise<number> {
  let admitted = 0;
  for (let refusedInARow = 0; refusedInARow < 2 * all.length; ) {
    for (const s of all) {
      if ((await s.admit({ identity, amount })).ok) {
        admitted++;
        refusedInARow = 0;
      } else refusedInARow++;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return admitted;
}
