import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '../../../runtime/backends/redis/money/keys.ts';
import { openRedisStore, type RedisMoneyStore } from '../../../runtime/backends/redis/money/store.ts';
import { EnforcementUnavailableError } from '../../../runtime/store/port.ts';
import { moneyStoreContract, storeOptions, TestClock } from './contract.ts';
import { rateLimitContract } from './contract-rates.ts';
import { leaseStoreContract } from './lease-contract.ts';
import { corruptCeiling, openDoomedRedis, REDIS_URL, testPrefixes } from './redis-harness.ts';

const prefixes = testPrefixes('contract');
afterAll(() => prefixes.cleanup());

describe('Redis money store (Lua scripts)', () => {
  moneyStoreContract({
    open: (options) => openRedisStore(REDIS_URL, { ...options, prefix: prefixes.next() }),
    corruptCeiling: (store, scope) => corruptCeiling(store as RedisMoneyStore, scope),
    openDoomed: openDoomedRedis,
  });
  leaseStoreContract({
    open: (options) => openRedisStore(REDIS_URL, { ...options, prefix: prefixes.next() }),
    corruptCeiling: (store, scope) => corruptCeiling(store as RedisMoneyStore, scope),
    openDoomed: openDoomedRedis,
  });

  describe('rate limits', () => {
    rateLimitContract({
      open: (options) => openRedisStore(REDIS_URL, { ...options, prefix: prefixes.next() }),
      corruptCeiling: (store, scope) => corruptCeiling(store as RedisMoneyStore, scope),
      openDoomed: openDoomedRedis,
    });
  });

  describe('Redis specifics', () => {
    it('admits and settles in exactly one round trip each', async () => {
      const store = await openRedisStore(REDIS_URL, {
        ...storeOptions(new TestClock()),
        prefix: prefixes.next(),
      });
      try {
        const identity = { team: 'payments', env: 'prod', seat: 'alice', workflow: 'w', run: 'r_1' };
        const sent: string[] = [];
        const redis = store.redis as Redis; // a single Redis here, not a cluster
        const send = redis.sendCommand.bind(redis);
        redis.sendCommand = (command, ...rest) => {
          sent.push((command as { name: string }).name);
          return send(command, ...rest);
        };
        const a = await store.admit({ identity, amount: 1000 });
        expect(sent).toEqual(['evalsha']);
        if (!a.ok) throw new Error('refused');
        sent.length = 0;
        await store.settle(a.reservation.id, {
          requestId: 'r',
          identity,
          kind: 'model',
          name: 'm',
          tokens: { input: 1, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 1 },
          reserved: 1000,
          cost: 10,
          outcome: 'ok',
          latencyMs: 1,
        });
        expect(sent).toEqual(['evalsha']);
      } finally {
        await store.close();
      }
    });

    it('keeps every key under one hash tag, adding braces to a prefix without them', () => {
      expect(new RedisKeys().budget('bgt_1')).toBe('{cp}:b:bgt_1');
      expect(new RedisKeys('chokepoint').ledgerIndex('team:a')).toBe('{chokepoint}:li:team:a');
      expect(new RedisKeys('{prod}-cp').rexp).toBe('{prod}-cp:rexp');
    });

    it('fails closed when Redis cannot be reached at all', async () => {
      await expect(
        openRedisStore('redis://127.0.0.1:1', storeOptions(new TestClock())),
      ).rejects.toBeInstanceOf(EnforcementUnavailableError);
    });
  });
});
