import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bullPrefix,
  connectRedis,
  familyPrefix,
  parseClusterUrl,
} from '../../../runtime/backends/redis/connection.ts';
import { openPartitionedStore } from '../../../runtime/backends/redis/money/partitioned.ts';
import { openRedisStore, type RedisMoneyStore } from '../../../runtime/backends/redis/money/store.ts';
import type { MoneyStoreOptions } from '../../../runtime/store/port.ts';
import { budgetId } from '../../../runtime/store/records.ts';
import {
  hasRedisServer,
  NO_REDIS_SERVER,
  type RedisCluster,
  startRedisCluster,
} from '../../helpers/redis-cluster.ts';
import { moneyStoreContract, storeOptions, TestClock, USD } from './contract.ts';
import { rateLimitContract } from './contract-rates.ts';
import { leaseStoreContract } from './lease-contract.ts';
import { corruptCeiling, fill } from './redis-harness.ts';

if (!hasRedisServer) console.warn(`skipping the Redis Cluster store tests: ${NO_REDIS_SERVER}`);

/** A one-node cluster of its own, killed by `cut`. */
async function openDoomedCluster(options: MoneyStoreOptions) {
  const doomed = await startRedisCluster({ nodes: 1 });
  const store = await openRedisStore(doomed.url, { ...options, commandTimeoutMs: 500 });
  return { store, cut: () => doomed.stop() };
}

describe.skipIf(!hasRedisServer)('Redis money store on a real 3-node Redis Cluster', () => {
  let cluster: RedisCluster;
  let n = 0;
  beforeAll(async () => {
    cluster = await startRedisCluster({ nodes: 3 });
  }, 120_000);
  afterAll(() => cluster?.stop());
  // Each store under its own hash tag: the stores land on all three nodes.
  const open = (options: MoneyStoreOptions) =>
    openRedisStore(cluster.url, { ...options, prefix: `{cl${n++}}` });
  const harness = {
    open,
    corruptCeiling: (store: unknown, scope: string) => corruptCeiling(store as RedisMoneyStore, scope),
    openDoomed: openDoomedCluster,
  };

  describe('in one slot (store.partitions 0)', () => {
    moneyStoreContract(harness);
    leaseStoreContract(harness);
    describe('rate limits', () => rateLimitContract(harness));
  });

  // The cluster's default: spread over partitions, each its own hash tag (8 here, as by default).
  const spread = {
    ...harness,
    open: (options: MoneyStoreOptions) =>
      openPartitionedStore(cluster.url, { ...options, prefix: `{cl${n++}}`, partitions: 8 }),
    capped: true,
  };
  describe('spread over 8 partitions', () => {
    moneyStoreContract(spread);
    leaseStoreContract(spread);
    describe('rate limits', () => rateLimitContract(spread));
  });

  it('spreads one budget over the nodes: its copies and ledgers on other slots than its home', async () => {
    const clock = new TestClock();
    const prefix = `{cl${n++}}`;
    const stores = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        openPartitionedStore(cluster.url, { ...storeOptions(clock), prefix, partitions: 8, partition: i }),
      ),
    );
    const redis = connectRedis(cluster.url);
    try {
      const alice = { team: 'payments', env: 'prod', seat: 'alice' };
      await stores[0]!.setCeiling('global', 8 * USD, { actor: 'ops', reason: 'test' });
      const all = await Promise.all(
        stores.flatMap((s) =>
          Array.from({ length: 20 }, () => s.admit({ identity: alice, amount: 100_000 })),
        ),
      );
      // Never past the ceiling; near it, racing partitions may refuse while room moves between
      // them, but asked again they fill the budget exactly.
      const admitted = all.filter((a) => a.ok).length;
      expect(admitted).toBeLessThanOrEqual(80);
      expect(admitted + (await fill(stores, alice, 100_000))).toBe(80);
      expect(await stores[5]!.getBudget('global')).toMatchObject({ reserved: 8 * USD, ceiling: 8 * USD });
      // Where the global budget's copies live: on more than one node.
      const slots = await redis.cluster('SLOTS');
      const nodeOf = async (key: string) => {
        const slot = (await redis.cluster('KEYSLOT', key)) as number;
        return String(slots.find(([lo, hi]) => slot >= lo && slot <= hi)![2]![1]);
      };
      const id = budgetId('global');
      const nodes = new Set<string>();
      for (let i = 0; i < 8; i++) nodes.add(await nodeOf(stores[0]!.part(i).keys.budget(id)));
      expect(nodes.size).toBeGreaterThan(1);
    } finally {
      redis.disconnect();
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('puts the stores of different prefixes on different nodes', async () => {
    const redis = connectRedis(cluster.url);
    try {
      const owners = new Set<string>();
      for (let i = 0; i < 12; i++) {
        const slot = (await redis.cluster('KEYSLOT', `{cl${i}}:scopes`)) as number;
        const slots = await redis.cluster('SLOTS');
        const owner = slots.find(([lo, hi]) => slot >= lo && slot <= hi)!;
        owners.add(String(owner[2]![1]));
      }
      expect(owners.size).toBeGreaterThan(1);
    } finally {
      redis.disconnect();
    }
  });
});

describe('the cluster URL and key families', () => {
  it('reads nodes, credentials and TLS from a redis-cluster:// URL', () => {
    expect(parseClusterUrl('redis-cluster://10.0.0.1:7000,10.0.0.2:7001')).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
      ],
      redisOptions: {},
    });
    expect(parseClusterUrl('rediss-cluster://app:s%40cret@h:7000/').redisOptions).toEqual({
      username: 'app',
      password: 's@cret',
      tls: {},
    });
  });

  it('refuses a cluster URL with a bad node, naming it', () => {
    expect(() => parseClusterUrl('redis-cluster://h:7000,h:notaport')).toThrow(
      /bad cluster node "h:notaport"/,
    );
    expect(() => parseClusterUrl('redis-cluster://')).toThrow(/store\.redisUrl: not a cluster URL/);
  });

  it('gives each family its own hash tag on a cluster, and keeps the key names on one Redis', () => {
    expect(familyPrefix('{cp}', 'sessions', true)).toBe('{cp/sessions}');
    expect(familyPrefix('app{cp}:', 'runs', true)).toBe('app{cp/runs}:');
    expect(familyPrefix('{cp}', 'sessions', false)).toBe('{cp}');
    expect(bullPrefix('{cp}', 'runs', 'redis-cluster://h:1')).toBe('{cp/runs-queue}bull');
    expect(bullPrefix('{cp}', 'runs', 'redis://h:1')).toBe('{cp}bull');
  });
});
