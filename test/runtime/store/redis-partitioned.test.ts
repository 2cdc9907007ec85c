import { afterAll, describe, expect, it } from 'vitest';
import {
  openPartitionedStore,
  type PartitionedMoneyStore,
} from '../../../runtime/backends/redis/money/partitioned.ts';
import { call } from '../../../runtime/backends/redis/money/scripts.ts';
import type { Identity } from '../../../runtime/identity.ts';
import type { MoneyStoreOptions } from '../../../runtime/store/port.ts';
import { budgetId } from '../../../runtime/store/records.ts';
import { moneyStoreContract, storeOptions, TestClock, USD } from './contract.ts';
import { rateLimitContract } from './contract-rates.ts';
import { leaseStoreContract } from './lease-contract.ts';
import { corruptCeiling, fill, openDoomedRedis, REDIS_URL, testPrefixes } from './redis-harness.ts';

const prefixes = testPrefixes('parts');
afterAll(() => prefixes.cleanup());

const open = (options: MoneyStoreOptions) =>
  openPartitionedStore(REDIS_URL, { ...options, prefix: prefixes.next(), partitions: 3 });
const harness = {
  open,
  corruptCeiling: (store: unknown, scope: string) => corruptCeiling(store as PartitionedMoneyStore, scope),
  openDoomed: openDoomedRedis,
  capped: true,
};

describe('Redis money store spread over partitions (one Redis)', () => {
  moneyStoreContract(harness);
  leaseStoreContract(harness);
  describe('rate limits', () => rateLimitContract(harness));
});

/** Waits (up to 10 s) until `ok` holds. */
async function until(ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error('condition not met within 10 s');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const alice: Identity = { team: 'payments', env: 'prod', seat: 'alice' };
const ops = { actor: 'oncall@acme', reason: 'incident 42' };

describe('partitions sharing one budget', () => {
  /** `n` stores on one prefix, each admitting in its own partition (as n processes would). */
  async function stores(n: number, clock = new TestClock()) {
    const prefix = prefixes.next();
    return Promise.all(
      Array.from({ length: n }, (_, i) =>
        openPartitionedStore(REDIS_URL, { ...storeOptions(clock), prefix, partitions: n, partition: i }),
      ),
    );
  }
  const closeAll = (all: PartitionedMoneyStore[]) => Promise.all(all.map((s) => s.close()));

  it('never passes a ceiling, and refuses only when the whole budget is spoken for', async () => {
    const all = await stores(4);
    try {
      await all[0]!.setCeiling('team:payments', 10 * USD, ops);
      // 4 × 30 concurrent calls of $0.40 on a $10 team ceiling: exactly 25 fit.
      const admissions = await Promise.all(
        all.flatMap((s) => Array.from({ length: 30 }, () => s.admit({ identity: alice, amount: 400_000 }))),
      );
      // Never past the ceiling. Near it, calls racing in several partitions may be refused while a
      // sliver of room moves between them (and a budget found full stays refused for DRY_MS)…
      const admitted = admissions.filter((a) => a.ok).length;
      expect(admitted).toBeLessThanOrEqual(25);
      expect(admitted).toBeGreaterThanOrEqual(20);
      const refused = admissions.find((a) => !a.ok);
      expect(refused && !refused.ok && refused.refusal).toMatchObject({
        code: 'budget_exhausted',
        budget: { scope: 'team:payments', ceiling: 10 * USD },
      });
      // …but no room is lost: asked again, the partitions fill the budget exactly.
      await fill(all, alice, 400_000);
      const team = await all[1]!.getBudget('team:payments');
      expect(team).toMatchObject({ ceiling: 10 * USD, reserved: 10 * USD, spent: 0 });
      admissions.push(...(await Promise.all(all.map((s) => s.admit({ identity: alice, amount: 1 })))));
      // The admissions landed in more than one partition (their ids carry it: res_p<i>_…).
      const parts = new Set(admissions.flatMap((a) => (a.ok ? [a.reservation.id.slice(0, 6)] : [])));
      expect(parts.size).toBeGreaterThan(1);
      // Settled for less, the room comes back to whichever partition asks.
      const first = admissions.find((a) => a.ok)!;
      if (!first.ok) throw new Error('unreachable');
      const entry = await all[3]!.settle(first.reservation.id, {
        requestId: 'r1',
        identity: alice,
        kind: 'model',
        name: 'm',
        tokens: { input: 1, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 1 },
        reserved: 400_000,
        cost: 100_000,
        outcome: 'ok',
        latencyMs: 1,
      });
      expect(entry.cost).toBe(100_000);
      // Another partition may have found the budget full a moment ago: it asks again within DRY_MS.
      await until(async () => (await all[2]!.admit({ identity: alice, amount: 300_000 })).ok);
      expect((await all[2]!.admit({ identity: alice, amount: 1 })).ok).toBe(false);
      expect(await all[0]!.getBudget('team:payments')).toMatchObject({ spent: 100_000, reserved: 9_900_000 });
      // The ledger and spend read every partition.
      expect(await all[1]!.listLedger()).toHaveLength(1);
    } finally {
      await closeAll(all);
    }
  });

  it('holds a kill switch, a freeze and a lowered ceiling in every partition before returning', async () => {
    const all = await stores(3);
    try {
      for (const s of all) expect((await s.admit({ identity: alice, amount: USD })).ok).toBe(true);
      await all[0]!.setKill('seat:alice', ops);
      for (const s of all) {
        expect(await s.admit({ identity: alice, amount: 1 })).toMatchObject({
          ok: false,
          refusal: { code: 'killed' },
        });
      }
      await all[1]!.liftKill('seat:alice', ops);
      await all[1]!.setFrozen('env:prod', true, ops);
      for (const s of all) {
        expect(await s.admit({ identity: alice, amount: 1 })).toMatchObject({
          ok: false,
          refusal: { code: 'budget_exhausted', budget: { scope: 'env:prod', state: 'frozen' } },
        });
      }
      await all[2]!.setFrozen('env:prod', false, ops);
      // 3 × $1 held; the team ceiling lowered to $4 leaves room for exactly $1 more, in any partition.
      await all[2]!.setCeiling('team:payments', 4 * USD, ops);
      expect((await all[0]!.admit({ identity: alice, amount: USD / 2 })).ok).toBe(true);
      expect((await all[1]!.admit({ identity: alice, amount: USD / 2 })).ok).toBe(true);
      for (const s of all) expect((await s.admit({ identity: alice, amount: 1 })).ok).toBe(false);
      expect((await all[0]!.listAudit()).map((e) => e.action).sort()).toEqual(
        ['budget.ceiling', 'budget.freeze', 'budget.unfreeze', 'kill.lift', 'kill.set'].sort(),
      );
    } finally {
      await closeAll(all);
    }
  });

  it('gets back the room a process left between the two steps of a grant or a take-back', async () => {
    const [a, b] = await stores(2);
    try {
      await a!.setCeiling('team:payments', 10 * USD, ops);
      const home = a!.home;
      const id = budgetId('team:payments');
      const capsKey = `${home.keys.prefix}:cap:${id}`;
      // A process on partition 1 got a grant from the home and died before adding it to its copy.
      const grant = (await call(
        a!.redis,
        'cpCaps',
        [home.keys.scopes, home.keys.budget(id), capsKey],
        [...home.context(home.now()), ...home.specArgs(['team:payments']), 'grow', 'p1', 4 * USD, ''],
      )) as string[];
      expect(grant[0]).toBe('ok');
      // Partition 0 still gets the whole ceiling: its take-back catches partition 1's copy up with
      // the lost grant and takes it back.
      const held = [];
      for (let i = 0; i < 10; i++) {
        const r = await a!.admit({ identity: alice, amount: USD });
        expect(r.ok).toBe(true);
        if (r.ok) held.push(r.reservation.id);
      }
      expect((await a!.admit({ identity: alice, amount: 1 })).ok).toBe(false);
      // Partition 0 frees $5; a process gave it back from the copy and died before telling the home.
      for (const rid of held.slice(0, 5)) {
        await a!.release(rid, {
          requestId: rid,
          identity: alice,
          kind: 'model',
          name: 'm',
          tokens: { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 },
          reserved: USD,
          cost: 0,
          outcome: 'error',
          latencyMs: 1,
        });
      }
      const p0 = a!.part(0);
      const granted = (await a!.redis.hget(capsKey, 'p0:g')) ?? '0';
      const filler = [id, id, 'rate', '-', 0, '1m'];
      await call(
        a!.redis,
        'cpPartCap',
        [p0.keys.scopes, p0.keys.budget(id)],
        [...p0.context(p0.now()), ...filler, 'trim', granted],
      );
      // Partition 1 gets those $5, and no more: the next take-back tells the home what was given back.
      for (let i = 0; i < 5; i++) expect((await b!.admit({ identity: alice, amount: USD })).ok).toBe(true);
      expect((await b!.admit({ identity: alice, amount: 1 })).ok).toBe(false);
      expect(await a!.getBudget('team:payments')).toMatchObject({ reserved: 10 * USD, ceiling: 10 * USD });
    } finally {
      await closeAll([a!, b!]);
    }
  });
});
