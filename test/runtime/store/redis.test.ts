import { afterAll, describe } from 'vitest';
import { openRedisStore, type RedisMoneyStore } from '../../../runtime/store/redis/store.ts';
import { moneyStoreContract } from './contract.ts';
import { corruptCeiling, openDoomedRedis, REDIS_URL, testPrefixes } from './redis-harness.ts';

const prefixes = testPrefixes('contract');
afterAll(() => prefixes.cleanup());

describe('Redis money store (Lua scripts)', () => {
  moneyStoreContract({
    open: (options) => openRedisStore(REDIS_URL, { ...options, prefix: prefixes.next() }),
    corruptCeiling: (store, scope) => corruptCeiling(store as RedisMoneyStore, scope),
    openDoomed: openDoomedRedis,
  });
});
