import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteAlarms } from '../../runtime/backends/embedded/alarms.ts';
import { RedisAlarms } from '../../runtime/backends/redis/alarms.ts';
import { type AlarmStore, EventLog } from '../../runtime/events.ts';
import { createLogger } from '../../runtime/log.ts';
import { REDIS_URL } from '../helpers/harness.ts';

const quiet = createLogger({ level: 'silent' });
const identity = { team: 't', env: 'e', seat: 's' };
const redis = new Redis(REDIS_URL);
const prefix = `{cpalarms${process.pid}}`;

afterAll(async () => {
  await redis.del(`${prefix}:alarms`);
  redis.disconnect();
});

const backends: Array<[string, () => AlarmStore]> = [
  ['embedded', () => new SqliteAlarms(join(mkdtempSync(join(tmpdir(), 'cp-alarms-')), 'a.db'))],
  ['redis', () => new RedisAlarms(redis, prefix)],
];

describe.each(backends)('alarms (%s)', (_name, open) => {
  it('stores alarms newest first, filters by kind, and keeps them for the next reader', async () => {
    const backend = open();
    const log = new EventLog(quiet, backend);
    const seen: string[] = [];
    log.subscribe((a) => seen.push(a.kind));
    log.prefixDrift(identity, 'k1', {
      block: 'system[0]',
      offset: 3,
      was: 'a',
      now: 'b',
      description: 'system[0] changed',
    });
    log.cacheAlarm(identity, 'k1', { expectedRead: 1000, actualRead: 100, calls: 6 });
    await new Promise((r) => setTimeout(r, 10));
    const all = await log.list();
    expect(all.map((a) => a.kind)).toEqual(['cache_hit_rate', 'prefix_drift']);
    expect(all[0]!.message).toMatch(
      /read 100 cached tokens over 6 calls where the stable prefix allows 1000 \(10%\)/,
    );
    expect((await log.list({ kind: 'prefix_drift' })).map((a) => a.subject)).toEqual(['k1']);
    expect(seen).toEqual(['prefix_drift', 'cache_hit_rate']);
  });
});
