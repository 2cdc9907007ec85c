import { describe, expect, it } from 'vitest';
import type { Alarm, AlarmKind } from '../../../runtime/events.ts';
import { backendPairs, eventually, KINDS } from './harness.ts';

const alarm = (n: number, kind: AlarmKind = 'prefix_drift'): Alarm => ({
  id: `alm_${String(n).padStart(3, '0')}`,
  at: 1_700_000_000_000 + n * 1000,
  kind,
  subject: `stream-${n}`,
  message: `alarm ${n}`,
  details: { n },
  identity: { team: 't', env: 'e', seat: 's' },
});

describe.each(KINDS)('alarms store (%s)', (kind) => {
  const pair = backendPairs(kind, 'alarms');

  it('keeps each alarm whole and lists them newest first, to every process', async () => {
    const { a, b } = await pair();
    for (const n of [1, 2, 3]) await a.alarms.append(alarm(n));
    expect(await b.alarms.list({ limit: 10 })).toEqual([alarm(3), alarm(2), alarm(1)]);
  });

  it('lists at most `limit`, the newest', async () => {
    const { a } = await pair();
    for (let n = 1; n <= 5; n++) await a.alarms.append(alarm(n));
    expect((await a.alarms.list({ limit: 2 })).map((x) => x.id)).toEqual(['alm_005', 'alm_004']);
  });

  it('filters by kind, still newest first and within the limit', async () => {
    const { a } = await pair();
    await a.alarms.append(alarm(1, 'cache_hit_rate'));
    await a.alarms.append(alarm(2, 'prefix_drift'));
    await a.alarms.append(alarm(3, 'cache_hit_rate'));
    await a.alarms.append(alarm(4, 'cache_hit_rate'));
    const found = await a.alarms.list({ kind: 'cache_hit_rate', limit: 2 });
    expect(found.map((x) => x.id)).toEqual(['alm_004', 'alm_003']);
    expect(await a.alarms.list({ kind: 'reconciliation', limit: 10 })).toEqual([]);
  });

  it('starts empty', async () => {
    const { a } = await pair();
    expect(await a.alarms.list({ limit: 10 })).toEqual([]);
  });
});

describe.each(KINDS)('alarm claims (%s)', (kind) => {
  const pair = backendPairs(kind, 'alarm-claims');
  const now = Date.now();

  it('gives a key to its first claimant only, in every process sharing the backend', async () => {
    const { a, b } = await pair();
    const at = { now, expiresAt: now + 60_000 };
    const results = await Promise.all([
      a.alarms.claim('budget:team:x|50', at),
      b.alarms.claim('budget:team:x|50', at),
      a.alarms.claim('budget:team:x|50', at),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await b.alarms.claim('budget:team:x|80', at)).toBe(true);
  });

  it('keeps a claim after the process that took it closed (a restart does not claim again)', async () => {
    const { a, b } = await pair();
    const at = { now, expiresAt: now + 60_000 };
    expect(await a.alarms.claim('k', at)).toBe(true);
    await a.close();
    expect(await b.alarms.claim('k', at)).toBe(false);
  });

  it('lets a key be claimed again once its claim expired', async () => {
    const { a, b } = await pair();
    // Redis expires keys on its own clock: the claim lives 50 ms, waited for by polling.
    expect(await a.alarms.claim('w', { now, expiresAt: now + 50 })).toBe(true);
    expect(await b.alarms.claim('w', { now, expiresAt: now + 50 })).toBe(false);
    await eventually('the claim to expire', () =>
      b.alarms.claim('w', { now: Date.now(), expiresAt: Date.now() + 60_000 }),
    );
    expect(await a.alarms.claim('w', { now: Date.now(), expiresAt: Date.now() + 60_000 })).toBe(false);
  });
});
