import { afterAll, describe, expect, it } from 'vitest';
import {
  openPartitionedStore,
  type PartitionedMoneyStore,
} from '../../../runtime/backends/redis/money/partitioned.ts';
import { call } from '../../../runtime/backends/redis/money/scripts.ts';
import type { Identity } from '../../../runtime/identity.ts';
import { type MoneyStoreOptions, type RateCharge, StoreInputError } from '../../../runtime/store/port.ts';
import { budgetId } from '../../../runtime/store/records.ts';
import { moneyStoreContract, storeOptions, TestClock, USD } from './contract.ts';
import { rateLimitContract } from './contract-rates.ts';
import { leaseStoreContract } from './lease-contract.ts';
import { corruptCeiling, fill, openDoomedPartitioned, REDIS_URL, testPrefixes } from './redis-harness.ts';

const prefixes = testPrefixes('parts');
afterAll(() => prefixes.cleanup());

const open = (options: MoneyStoreOptions) =>
  openPartitionedStore(REDIS_URL, { ...options, prefix: prefixes.next(), partitions: 3 });
const harness = {
  open,
  corruptCeiling: (store: unknown, scope: string) => corruptCeiling(store as PartitionedMoneyStore, scope),
  openDoomed: openDoomedPartitioned,
  capped: true,
};

describe('Redis money store spread over partitions (one Redis)', () => {
  moneyStoreContract(harness);
  leaseStoreContract(harness);
  describe('rate limits', () => rateLimitContract(harness));
});

/** The home's half of a grant to partition `part` (caps.lua grow), as from a process that died then. */
async function homeGrant(s: PartitionedMoneyStore, part: number, scope: string, want: number) {
  const home = s.home;
  const id = budgetId(scope);
  const keys = [home.keys.scopes, home.keys.budget(id), `${home.keys.prefix}:cap:${id}`];
  const args = [...home.context(home.now()), ...home.specArgs([scope]), 'grow', `p${part}`, want, ''];
  return (await call(s.redis, 'cpCaps', keys, args)) as string[];
}

/** A step on partition `part`'s copy of `scope` (part-cap.lua), as a late or lone process sends it. */
function copyStep(s: PartitionedMoneyStore, part: number, scope: string, ...args: (string | number)[]) {
  const p = s.part(part);
  const keys = [p.keys.scopes, p.keys.budget(budgetId(scope))];
  return call(s.redis, 'cpPartCap', keys, [...p.context(p.now()), ...p.specArgs([scope]), ...args]);
}

/** What the home counts as granted to partition `part` for `scope`, ever. */
async function grantedTo(s: PartitionedMoneyStore, part: number, scope: string): Promise<string> {
  return (await s.redis.hget(`${s.home.keys.prefix}:cap:${budgetId(scope)}`, `p${part}:g`)) ?? '0';
}

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
      // A process on partition 1 got a grant from the home and died before adding it to its copy.
      const grant = await homeGrant(a!, 1, 'team:payments', 4 * USD);
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
      await copyStep(a!, 0, 'team:payments', 'trim', await grantedTo(a!, 0, 'team:payments'), '0', '');
      // Partition 1 gets those $5, and no more: the next take-back tells the home what was given back.
      for (let i = 0; i < 5; i++) expect((await b!.admit({ identity: alice, amount: USD })).ok).toBe(true);
      expect((await b!.admit({ identity: alice, amount: 1 })).ok).toBe(false);
      expect(await a!.getBudget('team:payments')).toMatchObject({ reserved: 10 * USD, ceiling: 10 * USD });
    } finally {
      await closeAll([a!, b!]);
    }
  });

  const release = (s: PartitionedMoneyStore, id: string) =>
    s.release(id, {
      requestId: id,
      identity: alice,
      kind: 'model',
      name: 'm',
      tokens: { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 },
      reserved: USD,
      cost: 0,
      outcome: 'error',
      latencyMs: 1,
    });

  it('holds a lowered ceiling as what was held before it is freed, and in the next window', async () => {
    const clock = new TestClock();
    const [a, b] = await stores(2, clock);
    try {
      await a!.setCeiling('team:payments', 10 * USD, ops);
      const held: string[] = [];
      for (let i = 0; i < 8; i++) {
        const r = await a!.admit({ identity: alice, amount: USD });
        if (r.ok) held.push(r.reservation.id);
      }
      expect(held).toHaveLength(8);
      // Lowered below what partition 0 holds: as its calls end, it must not admit into the room.
      await b!.setCeiling('team:payments', 5 * USD, ops);
      for (const id of held) await release(a!, id);
      expect(await fill([a!], alice, USD)).toBe(5);
      expect(await a!.getBudget('team:payments')).toMatchObject({ ceiling: 5 * USD, reserved: 5 * USD });
      // Spent, not held, and the window turns: still the new ceiling.
      const [c, d] = await stores(2, clock);
      await c!.setCeiling('team:payments', 10 * USD, ops);
      const e = await Promise.all(
        Array.from({ length: 8 }, () => c!.admit({ identity: alice, amount: USD })),
      );
      for (const r of e) {
        if (r.ok) await c!.settle(r.reservation.id, { ...(await entryFor(r.reservation.id)), cost: USD });
      }
      await d!.setCeiling('team:payments', 5 * USD, ops);
      clock.advance(24 * 3600_000);
      expect(await fill([c!], alice, USD)).toBe(5);
      await closeAll([c!, d!]);
    } finally {
      await closeAll([a!, b!]);
    }
  });

  const entryFor = async (id: string) => ({
    requestId: id,
    identity: alice,
    kind: 'model' as const,
    name: 'm',
    tokens: { input: 1, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 1 },
    reserved: USD,
    cost: 0,
    outcome: 'ok' as const,
    latencyMs: 1,
  });

  it('brings a partition that missed a kill switch up to the home: on a beat, and when a store opens', async () => {
    const [a, b] = await stores(2);
    try {
      expect((await b!.admit({ identity: alice, amount: 1 })).ok).toBe(true);
      // Set at home alone, as when partition 1's node was away while the kill was set.
      await a!.home.setKill('seat:alice', ops);
      expect((await b!.admit({ identity: alice, amount: 1 })).ok).toBe(true);
      await b!.replicaBeat('replica-b', Date.now());
      expect(await b!.admit({ identity: alice, amount: 1 })).toMatchObject({ refusal: { code: 'killed' } });
      // A store opened with more partitions copies the home's kill switches to all of them first.
      const wider = await openPartitionedStore(REDIS_URL, {
        ...storeOptions(new TestClock()),
        prefix: a!.home.keys.prefix,
        partitions: 4,
        partition: 3,
      });
      expect(await wider.admit({ identity: alice, amount: 1 })).toMatchObject({
        refusal: { code: 'killed' },
      });
      await wider.close();
    } finally {
      await closeAll([a!, b!]);
    }
  });

  it('keeps the later of two operators freezing and thawing at once: an older copy write is ignored', async () => {
    const [a, b] = await stores(2);
    try {
      await a!.setFrozen('env:prod', false, ops); // thawed first (an older version)…
      await b!.setFrozen('env:prod', true, ops); // …frozen after: the home and every copy frozen
      // The thaw's copy writes arriving late, with its older version, change nothing.
      expect(await copyStep(a!, 1, 'env:prod', 'frozen', '0', 1)).toBe(0);
      for (const s of [a!, b!]) {
        expect(await s.admit({ identity: alice, amount: 1 })).toMatchObject({
          refusal: { code: 'budget_exhausted', budget: { scope: 'env:prod', state: 'frozen' } },
        });
      }
    } finally {
      await closeAll([a!, b!]);
    }
  });

  it('finds a grant lost in its own partition, and a lowered rate limit, by taking its own cap back too', async () => {
    const [a] = await stores(1);
    try {
      await a!.setCeiling('team:payments', 10 * USD, ops);
      // Partition 0's grant reached the home but not its copy (the process died between).
      await homeGrant(a!, 0, 'team:payments', 8 * USD);
      expect((await a!.admit({ identity: alice, amount: 5 * USD })).ok).toBe(true);
      expect((await a!.admit({ identity: alice, amount: 5 * USD })).ok).toBe(true);
      // A rate limit lowered from 100 to 10 a minute after one request: 9 more, not 0 and not 99.
      const rate = (limit: number): RateCharge[] => [
        { scope: 'seat:alice', unit: 'requests', window: '1m', limit, amount: 1 },
      ];
      expect((await a!.admit({ identity: alice, amount: 0, rates: rate(100) })).ok).toBe(true);
      let admitted = 0;
      for (let i = 0; i < 15; i++)
        if ((await a!.admit({ identity: alice, amount: 0, rates: rate(10) })).ok) admitted++;
      expect(admitted).toBe(9);
    } finally {
      await closeAll([a!]);
    }
  });

  it('keeps a grant made under the old ceiling and added late from opening a copy', async () => {
    const [a, b] = await stores(2);
    try {
      await a!.setCeiling('team:payments', 10 * USD, ops);
      const held: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await a!.admit({ identity: alice, amount: USD });
        if (r.ok) held.push(r.reservation.id);
      }
      // Partition 0, holding $6, is granted more under the $10 ceiling, and stalls before adding it
      // to its copy…
      const grant = await homeGrant(a!, 0, 'team:payments', 8 * USD);
      // …while an operator lowers the ceiling to $5 (below what it holds); then the add lands, and
      // the held calls end. Partition 0 must not admit into the $6 it held: the ceiling is $5.
      await b!.setCeiling('team:payments', 5 * USD, ops);
      await copyStep(a!, 0, 'team:payments', 'add', grant[4]!, '', grant[5]!);
      for (const rid of held) await release(a!, rid);
      expect(await fill([a!], alice, USD)).toBe(5);
    } finally {
      await closeAll([a!, b!]);
    }
  });

  it('counts at home what a partition spent past its cap (an overrun), so the others get less', async () => {
    const [a, b] = await stores(2);
    try {
      await a!.setCeiling('team:payments', 10 * USD, ops);
      const r = await a!.admit({ identity: alice, amount: USD });
      if (!r.ok) throw new Error('refused');
      await a!.settle(r.reservation.id, { ...(await entryFor(r.reservation.id)), cost: 8 * USD });
      // $8 spent of $10: $2 left for everyone, wherever it is admitted.
      expect(await fill([b!], alice, USD / 2)).toBe(4);
      expect(await b!.getBudget('team:payments')).toMatchObject({ spent: 8 * USD, reserved: 2 * USD });
    } finally {
      await closeAll([a!, b!]);
    }
  });

  it('brings a partition that lost a freeze (a failover) up to the home on a beat', async () => {
    const [a, b] = await stores(2);
    try {
      expect((await b!.admit({ identity: alice, amount: 1 })).ok).toBe(true);
      await a!.setFrozen('env:prod', true, ops);
      // Partition 1's node failed over and its replica had not yet got the freeze.
      const p1 = b!.part(1);
      await b!.redis.hset(p1.keys.budget(budgetId('env:prod')), 'frozen', '0', 'fv', '0');
      expect((await b!.admit({ identity: alice, amount: 1 })).ok).toBe(true);
      await b!.replicaBeat('replica-b', Date.now());
      expect(await b!.admit({ identity: alice, amount: 1 })).toMatchObject({
        refusal: { code: 'budget_exhausted', budget: { scope: 'env:prod', state: 'frozen' } },
      });
      await a!.setFrozen('env:prod', false, ops);
      expect((await b!.admit({ identity: alice, amount: 1 })).ok).toBe(true);
    } finally {
      await closeAll([a!, b!]);
    }
  });

  it('is not stuck when the home missed what its own partition gave back', async () => {
    const [a] = await stores(1);
    try {
      await a!.setCeiling('team:payments', 10 * USD, ops);
      for (let i = 0; i < 5; i++) expect((await a!.admit({ identity: alice, amount: USD })).ok).toBe(true);
      // Partition 0 gave its idle cap back; the report to the home was lost.
      await copyStep(a!, 0, 'team:payments', 'trim', await grantedTo(a!, 0, 'team:payments'), '0', '');
      // The other $5 are still there for it.
      for (let i = 0; i < 5; i++) expect((await a!.admit({ identity: alice, amount: USD })).ok).toBe(true);
      expect((await a!.admit({ identity: alice, amount: 1 })).ok).toBe(false);
    } finally {
      await closeAll([a!]);
    }
  });

  it('never moves a copy back to an older ceiling epoch (two operators changing a ceiling at once)', async () => {
    const [a] = await stores(1);
    try {
      await a!.setCeiling('team:payments', 10 * USD, ops);
      const held = [];
      for (let i = 0; i < 6; i++) {
        const r = await a!.admit({ identity: alice, amount: USD });
        if (r.ok) held.push(r.reservation.id);
      }
      const home = a!.home;
      const id = budgetId('team:payments');
      const capsKey = `${home.keys.prefix}:cap:${id}`;
      const epochBefore = Number((await a!.redis.hget(capsKey, 'e')) ?? 0);
      await a!.setCeiling('team:payments', 2 * USD, ops);
      // A close from an earlier ceiling change arrives late, then a grant from before it is added.
      const granted = await grantedTo(a!, 0, 'team:payments');
      await copyStep(a!, 0, 'team:payments', 'trim', granted, '1', String(epochBefore));
      await copyStep(a!, 0, 'team:payments', 'add', granted, '', String(epochBefore));
      for (const rid of held) await release(a!, rid);
      expect(await fill([a!], alice, USD)).toBe(2);
    } finally {
      await closeAll([a!]);
    }
  });

  it('writes nothing of a lease batch with a bad step, in any partition', async () => {
    const [a, b] = await stores(2);
    try {
      const l0 = await a!.admit({ identity: alice, amount: 2 * USD, lease: { upTo: 2 * USD, share: 1 } });
      const l1 = await b!.admit({ identity: alice, amount: USD, lease: { upTo: USD, share: 1 } });
      if (!l0.ok || !l1.ok) throw new Error('refused');
      const charge = { ...(await entryFor('req_c1')), reserved: 2 * USD, cost: 9 * USD };
      await expect(
        a!.leaseOps([
          { reservationId: l0.reservation.id, call: 'c1', entry: charge, close: true },
          { reservationId: l1.reservation.id, free: -1 },
        ]),
      ).rejects.toThrow(/free/);
      // Caught while a partition's script is built (a NUL byte, a time that is no time): the same.
      for (const bad of [
        { reservationId: l1.reservation.id, call: 'bad\0call', entry: await entryFor('req_c2') },
        {
          reservationId: l1.reservation.id,
          call: 'c3',
          entry: { ...(await entryFor('req_c3')), at: Number.NaN },
        },
      ]) {
        const first = { reservationId: l0.reservation.id, call: 'c1', entry: charge };
        await expect(a!.leaseOps([first, bad])).rejects.toBeInstanceOf(StoreInputError);
      }
      expect(await a!.listLedger()).toEqual([]);
    } finally {
      await closeAll([a!, b!]);
    }
  });

  it('reports an overrun on the budgets the reservation holds, whatever identity the entry names', async () => {
    const [a, b] = await stores(2);
    try {
      const onBedrock = { ...alice, provider: 'bedrock' };
      await a!.setCeiling('provider:bedrock', 10 * USD, ops);
      const r = await a!.admit({ identity: onBedrock, amount: 2 * USD });
      if (!r.ok) throw new Error('refused');
      // Settled naming alice without the provider: the provider's budget is still the one charged.
      await a!.settle(r.reservation.id, { ...(await entryFor(r.reservation.id)), cost: 9 * USD });
      expect(await fill([b!], onBedrock, USD)).toBe(1);
    } finally {
      await closeAll([a!, b!]);
    }
  });
});
