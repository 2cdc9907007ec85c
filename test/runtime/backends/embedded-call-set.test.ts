import { afterEach, describe, expect, it } from 'vitest';
import { CallSet, callNumber } from '../../../runtime/backends/embedded/money/call-set.ts';
import {
  type EmbeddedMoneyStore,
  openEmbeddedStore,
} from '../../../runtime/backends/embedded/money/store.ts';
import type { Identity } from '../../../runtime/identity.ts';
import type { Admission, LedgerInput } from '../../../runtime/store/port.ts';
import { storeOptions, TestClock, USD } from '../store/contract.ts';

/**
 * The calls charged from a lease, kept in its reservation row as ranges (call-set.ts) instead of a
 * `lease_calls` row per call; the behaviour both backends share is in lease-contract.ts.
 */
describe('CallSet', () => {
  it('holds what was added, as a set does, through adds in any order and a round trip as text', () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    for (let round = 0; round < 200; round++) {
      let set = CallSet.parse('');
      const truth = new Set<number>();
      const span = 1 + rand(60);
      for (let i = 0; i < 80; i++) {
        const n = rand(span);
        expect(set.add(n)).toBe(!truth.has(n));
        truth.add(n);
        if (rand(5) === 0) set = CallSet.parse(set.toString());
      }
      expect(set.size).toBe(truth.size);
      const expected = [...truth].sort((a, b) => a - b);
      expect(numbers(set.toString())).toEqual(expected);
    }
  });

  it('writes runs as ranges: the text grows with the holes, not the calls', () => {
    const set = CallSet.parse('');
    for (let n = 1; n <= 10_000; n++) if (n !== 4_000 && n !== 9_000) set.add(n);
    expect(set.toString()).toBe('1-3999,4001-8999,9001-10000');
    set.add(9_000);
    expect(set.toString()).toBe('1-3999,4001-10000');
    set.add(0);
    set.add(4_000);
    expect(set.toString()).toBe('0-10000');
  });

  it('refuses text it did not write', () => {
    for (const bad of ['x', '1-', '3-2', '1,1', '1,2', '2-4,3', '01', '1,,2', ' 1']) {
      expect(() => CallSet.parse(bad), bad).toThrow(/unreadable lease call set/);
    }
  });

  it('reads a call as a number only when it is written as one', () => {
    expect(['0', '7', '123456789012345'].map(callNumber)).toEqual([0, 7, 123_456_789_012_345]);
    for (const s of ['', '01', '-1', '+1', '1.5', '1e3', ' 1', 'x', '1234567890123456']) {
      expect(callNumber(s), s).toBeUndefined();
    }
  });
});

function numbers(text: string): number[] {
  if (!text) return [];
  return text.split(',').flatMap((part) => {
    const [lo, hi = lo] = part.split('-').map(Number) as [number, number?];
    return Array.from({ length: hi! - lo + 1 }, (_, i) => lo + i);
  });
}

describe('embedded lease steps: the calls charged', () => {
  const alice: Identity = { team: 'payments', env: 'prod', seat: 'alice' };
  let store: EmbeddedMoneyStore;
  afterEach(() => store.close());

  const entry = (call: string): LedgerInput => ({
    id: `led_${call}`,
    requestId: `req_${call}`,
    identity: alice,
    kind: 'model',
    name: 'claude-haiku-4-5',
    tokens: { input: 10, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 5 },
    reserved: 1_000,
    cost: 10,
    outcome: 'ok',
    latencyMs: 3,
  });
  const leaseOf = (a: Admission) => {
    if (!a.ok) throw new Error('refused');
    return a.reservation.id;
  };
  const open = async () => {
    store = openEmbeddedStore(':memory:', storeOptions(new TestClock()));
    await store.ensureBudget('team:payments', { ceiling: 1 * USD, window: 'day' });
    return leaseOf(await store.admit({ identity: alice, amount: 1_000, lease: { upTo: 50_000, share: 1 } }));
  };
  const row = (id: string) =>
    store.db.prepare('SELECT calls FROM reservations WHERE id = ?').get(id) as { calls: string | null };
  const tableRows = () =>
    (store.db.prepare('SELECT lease, call FROM lease_calls ORDER BY call').all() as { call: string }[]).map(
      (r) => r.call,
    );

  it("keeps numbered calls in the lease's row, one row per call only for the others", async () => {
    const lease = await open();
    expect(row(lease).calls).toBe('');
    const steps = (calls: string[]) =>
      calls.map((call) => ({ reservationId: lease, call, entry: entry(call) }));
    await store.leaseOps(steps(['3', '1', '2', '5', 'x', '07']));
    expect(row(lease).calls).toBe('1-3,5');
    expect(tableRows()).toEqual(['07', 'x']);
    const again = await store.leaseOps(steps(['5', '4', 'x']));
    expect(again.map((r) => r.repeated ?? false)).toEqual([true, false, true]);
    expect(row(lease).calls).toBe('1-5');
    // Closed, it still knows its calls: a late repeat charges nothing.
    await store.leaseOps([{ reservationId: lease, close: true }]);
    const late = await store.leaseOps(steps(['2', '6']));
    expect(late.map((r) => r.repeated ?? false)).toEqual([true, false]);
    expect(row(lease).calls).toBe('1-6');
    expect(await store.getBudget('team:payments')).toMatchObject({ spent: 80, reserved: 0 });
    expect(await store.listLedger({ limit: 100 })).toHaveLength(8);
  });

  it('a lease row from before the column keeps its calls in lease_calls, charged once', async () => {
    const lease = await open();
    const steps = (calls: string[]) =>
      calls.map((call) => ({ reservationId: lease, call, entry: entry(call) }));
    store.db.prepare('UPDATE reservations SET calls = NULL WHERE id = ?').run(lease);
    await store.leaseOps(steps(['1', '2']));
    const again = await store.leaseOps(steps(['2', '3']));
    expect(again.map((r) => r.repeated ?? false)).toEqual([true, false]);
    expect(row(lease).calls).toBeNull();
    expect(tableRows()).toEqual(['1', '2', '3']);
    expect(await store.getBudget('team:payments')).toMatchObject({ spent: 30 });
  });

  it('a lease no row knows keeps its calls in lease_calls, charged once to the identity', async () => {
    await open();
    const steps = (calls: string[]) =>
      calls.map((call) => ({ reservationId: 'res_gone', call, entry: entry(`g${call}`) }));
    await store.leaseOps(steps(['1', '2']));
    const again = await store.leaseOps(steps(['1', '2', '3']));
    expect(again.map((r) => r.repeated ?? false)).toEqual([true, true, false]);
    expect(tableRows()).toEqual(['1', '2', '3']);
    expect(await store.getBudget('team:payments')).toMatchObject({ spent: 30 });
  });
});
