import { describe, expect, it } from 'vitest';
import type { Alarm, AlarmKind } from '../../../runtime/events.ts';
import { backendPairs, KINDS } from './harness.ts';

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
