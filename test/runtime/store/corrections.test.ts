import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openEmbeddedStore } from '../../../runtime/backends/embedded/money/store.ts';
import { openRedisStore } from '../../../runtime/backends/redis/money/store.ts';
import type { Identity } from '../../../runtime/identity.ts';
import {
  type LedgerEntry,
  type MoneyStore,
  type MoneyStoreOptions,
  StoreInputError,
} from '../../../runtime/store/port.ts';
import { DEFAULTS, storeOptions, TestClock, USD } from './contract.ts';
import { REDIS_URL, testPrefixes } from './redis-harness.ts';

/**
 * Reconciliation corrects an expired worst-case charge per request id (MoneyStore.correctExpired):
 * one `corrected` entry per request id, the budgets whose window still holds the charge credited
 * or debited in the same atomic step, never twice — on both backends, and across two stores on
 * the same data (a restart, another replica).
 */
const dir = mkdtempSync(join(tmpdir(), 'cp-corrections-'));
const prefixes = testPrefixes('corrections');
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await prefixes.cleanup();
});
let files = 0;

const backends: Record<string, () => (o: MoneyStoreOptions) => Promise<MoneyStore>> = {
  embedded: () => {
    const path = join(dir, `c-${files++}.db`);
    return async (o) => openEmbeddedStore(path, o);
  },
  redis: () => {
    const prefix = prefixes.next();
    return (o) => openRedisStore(REDIS_URL, { ...o, prefix });
  },
};

const inRun: Identity = { team: 'payments', env: 'prod', seat: 'alice', workflow: 'triage', run: 'r_1' };

describe.each(Object.keys(backends))('correcting expired charges per request id (%s)', (kind) => {
  let clock: TestClock;
  let open: (o: MoneyStoreOptions) => Promise<MoneyStore>;
  let store: MoneyStore;
  const extra: MoneyStore[] = [];

  beforeEach(async () => {
    clock = new TestClock();
    open = backends[kind]!();
    store = await open(storeOptions(clock));
  });
  afterEach(async () => {
    await store.close();
    for (const s of extra.splice(0)) await s.close();
  });

  /** A reservation whose call's outcome is unknown, expired at its worst case. */
  async function expiredCharge(requestId: string, amount: number, identity = inRun): Promise<LedgerEntry> {
    const a = await store.admit({ identity, amount, requestId, name: 'claude-haiku-4-5' });
    if (!a.ok) throw new Error('not admitted');
    clock.advance(60_000);
    await store.sweepExpired();
    const found = (await store.listLedger({ outcome: 'expired', limit: 1000 })).find(
      (e) => e.requestId === requestId,
    );
    if (!found) throw new Error(`no expired entry for ${requestId}`);
    return found;
  }

  const spent = async (scope: string) => (await store.getBudget(scope))!.spent;

  it('corrects a worst case down to the bill: one corrected entry, every budget credited the difference', async () => {
    const e = await expiredCharge('req_1', 1 * USD);
    expect(await spent('team:payments')).toBe(1 * USD);
    const { entry, created } = await store.correctExpired({ expired: e, billed: 12_345, source: 'rec_1' });
    expect(created).toBe(true);
    expect(entry).toMatchObject({
      requestId: 'req_1',
      outcome: 'corrected',
      cost: 12_345 - 1 * USD,
      at: e.at,
      corrects: e.id,
      correctedBy: 'rec_1',
      identity: inRun,
      name: 'claude-haiku-4-5',
    });
    for (const scope of ['global', 'team:payments', 'env:prod', 'seat:alice', 'workflow:triage', 'run:r_1']) {
      expect(await spent(scope), scope).toBe(12_345);
    }
    const ledger = await store.listLedger({ limit: 100 });
    expect(
      ledger
        .filter((x) => x.requestId === 'req_1')
        .map((x) => x.outcome)
        .sort(),
    ).toEqual(['corrected', 'expired']);
    // Spend views carry the correction on the day of the charge; it is no call of its own.
    const rows = await store.spend({ by: 'model', since: 0, until: clock.t + 1 });
    expect(rows).toMatchObject([
      { key: 'claude-haiku-4-5', cost: 12_345, calls: 1, corrections: 1, correctedCost: 12_345 - 1 * USD },
    ]);
    expect(await store.listLedger({ outcome: 'corrected' })).toHaveLength(1);
  });

  it('corrects an expired call that a lease batch wrote among others', async () => {
    const a = await store.admit({ identity: inRun, amount: 1_000, lease: { upTo: 100_000, share: 1 } });
    if (!a.ok) throw new Error('not admitted');
    const call = (i: number, outcome: 'ok' | 'expired') => ({
      reservationId: a.reservation.id,
      call: String(i),
      entry: {
        id: `led_${i}`,
        at: clock.t,
        requestId: `req_${i}`,
        identity: inRun,
        kind: 'model' as const,
        name: 'claude-haiku-4-5',
        tokens: { input: 1, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 1 },
        reserved: 5_000,
        cost: outcome === 'ok' ? 100 : 5_000,
        outcome,
        ...(outcome === 'expired' ? { code: 'reservation_expired' } : {}),
        latencyMs: 1,
      },
    });
    await store.leaseOps([
      call(1, 'ok'),
      call(2, 'expired'),
      call(3, 'ok'),
      { reservationId: a.reservation.id, close: true },
    ]);
    expect(await spent('run:r_1')).toBe(5_200);
    const [expired] = await store.listLedger({ outcome: 'expired' });
    expect(expired).toMatchObject({ id: 'led_2', requestId: 'req_2' });
    const { created } = await store.correctExpired({ expired: expired!, billed: 700, source: 'rec_1' });
    expect(created).toBe(true);
    expect(await spent('run:r_1')).toBe(900);
    expect((await store.listLedger({ scope: 'run:r_1' })).map((e) => e.outcome).sort()).toEqual([
      'corrected',
      'expired',
      'ok',
      'ok',
    ]);
  });

  it('corrects up when the provider billed more than the worst case, and to 0 a call never billed', async () => {
    const up = await expiredCharge('req_up', 1_000);
    const never = await expiredCharge('req_never', 1 * USD);
    expect((await store.correctExpired({ expired: up, billed: 1_500, source: 'rec_1' })).entry.cost).toBe(
      500,
    );
    expect((await store.correctExpired({ expired: never, billed: 0, source: 'rec_1' })).entry.cost).toBe(
      -1 * USD,
    );
    expect(await spent('run:r_1')).toBe(1_500);
  });

  it('writes a request id once: a second correction, from another store on the same data, changes nothing', async () => {
    const e = await expiredCharge('req_1', 1 * USD);
    const first = await store.correctExpired({ expired: e, billed: 10_000, source: 'rec_1' });
    const replica = await open(storeOptions(clock));
    extra.push(replica);
    const again = await replica.correctExpired({ expired: e, billed: 99_999, source: 'rec_2' });
    expect(again.created).toBe(false);
    expect(again.entry).toEqual(first.entry);
    const racing = await Promise.all([
      store.correctExpired({ expired: e, billed: 1, source: 'rec_3' }),
      replica.correctExpired({ expired: e, billed: 2, source: 'rec_4' }),
    ]);
    expect(racing.map((r) => r.created)).toEqual([false, false]);
    expect(await store.listLedger({ outcome: 'corrected' })).toHaveLength(1);
    expect(await spent('team:payments')).toBe(10_000);
  });

  it('does not reopen a closed window: a day budget keeps its day, the month and total ones are corrected', async () => {
    const e = await expiredCharge('req_1', 1 * USD);
    clock.set('2024-06-11T10:00:00Z');
    await store.correctExpired({ expired: e, billed: 300_000, source: 'rec_1' });
    expect(await spent('team:payments')).toBe(0); // a new day: yesterday's window closed as it was
    expect(await spent('env:prod')).toBe(300_000); // month
    expect(await spent('run:r_1')).toBe(300_000); // total
    const day = await store.spend({ by: 'day', since: 0, until: clock.t + 1 });
    expect(day).toMatchObject([
      { key: '2024-06-10', cost: 300_000, calls: 1, corrections: 1, correctedCost: 300_000 - 1 * USD },
    ]);
  });

  it('corrects a rolling budget in the bucket of the charge while it is inside the window', async () => {
    store = await reopen({ defaults: { ...DEFAULTS, seat: { ceiling: 100 * USD, window: '24h' } } });
    const e = await expiredCharge('req_1', 1 * USD);
    clock.advance(3_600_000);
    await store.correctExpired({ expired: e, billed: 250_000, source: 'rec_1' });
    expect(await spent('seat:alice')).toBe(250_000);
  });

  it('refuses to correct an entry that is not expired, or one the ledger does not hold', async () => {
    const a = await store.admit({ identity: inRun, amount: 1_000, requestId: 'req_ok' });
    if (!a.ok) throw new Error('not admitted');
    const ok = await store.settle(a.reservation.id, {
      requestId: 'req_ok',
      identity: inRun,
      kind: 'model',
      name: 'claude-haiku-4-5',
      tokens: { input: 1, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 1 },
      reserved: 1_000,
      cost: 10,
      outcome: 'ok',
      latencyMs: 1,
    });
    await expect(store.correctExpired({ expired: ok, billed: 0, source: 'rec_1' })).rejects.toThrow(
      StoreInputError,
    );
    await expect(
      store.correctExpired({ expired: { id: 'led_nope', at: ok.at }, billed: 0, source: 'rec_1' }),
    ).rejects.toThrow(/no ledger entry led_nope/);
    await expect(store.correctExpired({ expired: ok, billed: -1, source: 'rec_1' })).rejects.toThrow(
      /billed/,
    );
    expect(await spent('team:payments')).toBe(10);
  });

  async function reopen(over: Partial<MoneyStoreOptions>): Promise<MoneyStore> {
    await store.close();
    open = backends[kind]!();
    return open(storeOptions(clock, over));
  }
});
