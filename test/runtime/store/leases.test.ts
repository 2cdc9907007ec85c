import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { localBroadcast } from '../../../runtime/backends/embedded/broadcast.ts';
import { openEmbeddedStore } from '../../../runtime/backends/embedded/money/store.ts';
import { redisBroadcast } from '../../../runtime/backends/redis/broadcast.ts';
import { openRedisStore } from '../../../runtime/backends/redis/money/store.ts';
import type { Broadcast } from '../../../runtime/broadcast.ts';
import type { Identity } from '../../../runtime/identity.ts';
import { createLogger } from '../../../runtime/log.ts';
import { type LeasedMoneyStore, type LeaseOptions, openLeases } from '../../../runtime/store/leases.ts';
import type { LedgerInput, MoneyStore, MoneyStoreOptions } from '../../../runtime/store/port.ts';
import { storeOptions, TestClock, USD } from './contract.ts';
import { REDIS_URL, testPrefixes } from './redis-harness.ts';

/**
 * Budget leases over a real store, both backends: admission from memory, settlements in batches,
 * zero overshoot under concurrency, kill switches on the next request on every replica, and a dead
 * process's slices charged what they held.
 */
const log = createLogger({ level: 'silent' });
const prefixes = testPrefixes('leases');
afterAll(() => prefixes.cleanup());

const alice: Identity = { team: 'payments', env: 'prod', seat: 'alice' };
const bob: Identity = { team: 'payments', env: 'prod', seat: 'bob' };
const ops = { actor: 'oncall@acme', reason: 'runaway loop' };
const FAST: Partial<LeaseOptions> = { idleMs: 60_000, validityMs: 60_000, ttlMs: 60_000 };

function entry(identity: Identity, cost: number, requestId: string): LedgerInput {
  return {
    requestId,
    identity,
    kind: 'model',
    name: 'claude-haiku-4-5',
    tokens: { input: 10, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 5 },
    reserved: 0,
    cost,
    outcome: 'ok',
    latencyMs: 1,
  };
}

/** One call admitted and released: the identity has called within idleMs, so its next call leases. */
async function warm(l: MoneyStore, who: Identity): Promise<void> {
  const a = await l.admit({ identity: who, amount: 1 });
  if (!a.ok) throw new Error('refused');
  await l.release(a.reservation.id, { ...entry(who, 0, 'warm'), reserved: 1 });
}

/** The other replicas `l` counts as alive (the store's registry, read now). */
async function livePeers(l: LeasedMoneyStore): Promise<number> {
  const peers = (l as unknown as { peers: { live(fresh: boolean): Promise<Set<string>> } }).peers;
  return (await peers.live(true)).size;
}

interface Backend {
  name: string;
  /** One store per "process", all on the same data. */
  stores(n: number, options: MoneyStoreOptions): Promise<{ stores: MoneyStore[]; broadcasts: Broadcast[] }>;
}

const redisConns: Redis[] = [];
afterAll(async () => {
  for (const r of redisConns) r.disconnect();
});

const backends: Backend[] = [
  {
    name: 'embedded',
    async stores(n, options) {
      // One process: one store, one in-process broadcast (more replicas are a Redis deployment).
      if (n > 1) throw new Error('embedded is one process');
      return { stores: [openEmbeddedStore(':memory:', options)], broadcasts: [localBroadcast()] };
    },
  },
  {
    name: 'redis',
    async stores(n, options) {
      const prefix = prefixes.next();
      const stores: MoneyStore[] = [];
      const broadcasts: Broadcast[] = [];
      for (let i = 0; i < n; i++) {
        stores.push(await openRedisStore(REDIS_URL, { ...options, prefix }));
        const cmd = new Redis(REDIS_URL);
        const sub = new Redis(REDIS_URL);
        redisConns.push(cmd, sub);
        broadcasts.push(redisBroadcast(cmd, sub, prefix, log));
      }
      return { stores, broadcasts };
    },
  },
];

describe.each(backends)('budget leases on $name', (backend) => {
  const open: LeasedMoneyStore[] = [];
  afterEach(async () => {
    for (const l of open.splice(0)) await l.close();
  });

  async function leased(n: number, clock: TestClock, lease: Partial<LeaseOptions> = FAST) {
    const { stores, broadcasts } = await backend.stores(n, storeOptions(clock));
    const out: LeasedMoneyStore[] = [];
    for (let i = 0; i < n; i++) {
      out.push(await openLeases(stores[i]!, lease, { now: clock.now, log, broadcast: broadcasts[i] }));
    }
    open.push(...out);
    return out;
  }

  it('holds a slice for the lease ttl from its grant, even under a shorter reservationTtl', async () => {
    // A process killed between a grant and its first renewal leaves its slice in the store: held
    // for reservationTtl alone, it could expire before the next process read the journal.
    for (const known of [true, false]) {
      const clock = new TestClock();
      const { stores } = await backend.stores(1, storeOptions(clock, { reservationTtlMs: 2_000 }));
      const inner = stores[0]!;
      const l = await openLeases(
        inner,
        { ...FAST, ttlMs: 60_000 },
        { now: clock.now, log, upkeep: 'manual', ...(known ? { reservationTtlMs: 2_000 } : {}) },
      );
      open.push(l);
      await warm(l, alice);
      await l.ship();
      const a = await l.admit({ identity: alice, amount: 1_000 });
      expect(a.ok).toBe(true);
      const slice = (await inner.getBudget('seat:alice'))!.reserved;
      expect(slice).toBeGreaterThan(1_000);
      // No renewal (upkeep is manual): 3 s later, another identity's admission sweeps what is due.
      clock.advance(3_000);
      expect((await inner.admit({ identity: bob, amount: 1 })).ok).toBe(true);
      const expiredLeases = (await inner.listLedger({ outcome: 'expired' })).filter((e) =>
        e.requestId.startsWith('lease:'),
      );
      if (known) {
        expect((await inner.getBudget('seat:alice'))!.reserved).toBe(slice);
        expect(expiredLeases).toEqual([]);
      } else {
        // Without the store's reservationTtl the grant takes it: the slice expired (the old way).
        expect(expiredLeases).toHaveLength(1);
      }
    }
  });

  it('admits the calls after the first from memory and settles them in batches, one entry each', async () => {
    const clock = new TestClock();
    const [l] = await leased(1, clock);
    await l!.ensureBudget('team:payments', { ceiling: 10 * USD, window: 'day' });
    // An identity seen for the first time (or after idleMs) is admitted per call…
    const first = await l!.admit({ identity: alice, amount: 1_000 });
    expect(first.ok).toBe(true);
    expect(first.ok && first.reservation.id.includes(':')).toBe(false);
    // …and one calling again gets a slice: one grant, the rest from memory.
    const admissions = await Promise.all(
      Array.from({ length: 40 }, () => l!.admit({ identity: alice, amount: 1_000 })),
    );
    expect(admissions.every((a) => a.ok)).toBe(true);
    expect(l!.stats.grants).toBe(1);
    expect(l!.stats.fromMemory).toBe(39);
    const all = [first, ...admissions].map((a) => (a.ok ? a.reservation.id : ''));
    const entries = await Promise.all(all.map((id, i) => l!.settle(id, entry(alice, 600, `req_${i}`))));
    expect(new Set(entries.map((e) => e.requestId)).size).toBe(41);
    expect(l!.stats.batches).toBeLessThan(5);
    const team = await l!.getBudget('team:payments');
    expect(team!.spent).toBe(41 * 600);
    // The slice (64 calls' worst case) is still held, less what was spent from it.
    expect(team!.reserved).toBe(64_000 - 40 * 600);
    expect(await l!.listLedger({ scope: 'team:payments', limit: 100 })).toHaveLength(41);
  });

  it('sizes slices to demand: one used up within a second makes the next twice as large', async () => {
    const clock = new TestClock();
    const [l] = await leased(1, clock);
    await l!.ensureBudget('team:payments', { ceiling: 100 * USD, window: 'day' });
    await warm(l!, alice);
    // Calls faster than a slice lasts a second (1 ms apart): 64, then 128, 256, 512 calls' worth.
    const sizes: number[] = [];
    for (let grant = 0; grant < 4; grant++) {
      const before = l!.stats.grants;
      while (l!.stats.grants === before) {
        const a = await l!.admit({ identity: alice, amount: 1_000 });
        if (!a.ok) throw new Error('refused');
        await l!.settle(a.reservation.id, entry(alice, 1_000, `r${grant}`));
        clock.advance(1);
      }
      await l!.ship();
      // The new slice holds its size less the one call that asked for it.
      sizes.push((await l!.getBudget('team:payments'))!.reserved + 1_000);
    }
    expect(sizes).toEqual([64_000, 128_000, 256_000, 512_000]);
  });

  it('never passes a ceiling: 300 concurrent calls against room for 100, exactly 100 admitted', async () => {
    const clock = new TestClock();
    const [l] = await leased(1, clock);
    await l!.ensureBudget('team:payments', { ceiling: 100_000, window: 'day' });
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => {
        const who = i % 2 ? alice : bob;
        return l!.admit({ identity: who, amount: 1_000 }).then(async (a) => {
          if (!a.ok) return 0;
          await l!.settle(a.reservation.id, entry(who, 1_000, `r${i}`));
          return 1;
        });
      }),
    );
    const admitted = results.reduce((a: number, b) => a + b, 0);
    const team = await l!.getBudget('team:payments');
    expect(team!.spent).toBeLessThanOrEqual(100_000);
    // Slack held by the other seat's slice is given back when a grant is refused: all of it is used.
    expect(admitted).toBe(100);
    expect(team!.spent).toBe(100_000);
  });

  it('near a ceiling a settlement gives back at once what its call did not spend, and its slice what no call holds', async () => {
    const clock = new TestClock();
    const { stores } = await backend.stores(1, storeOptions(clock));
    const inner = stores[0]!;
    // Batches would ship only on the hour: whatever reaches the store before that went at once.
    const l = await openLeases(inner, { ...FAST, shipMs: 3_600_000 }, { now: clock.now, log });
    open.push(l);
    await l.ensureBudget('team:payments', { ceiling: 100_000, window: 'day' });
    await warm(l, alice);
    await warm(l, bob);
    await l.ship();
    const team = async () => (await inner.getBudget('team:payments'))!;
    const until = async (what: string, ok: (b: { spent: number; reserved: number }) => boolean) => {
      for (let i = 0; i < 2_000 && !ok(await team()); i++) await new Promise((r) => setTimeout(r, 5));
      expect(await team(), what).toSatisfy(ok);
    };
    const held = (a: Awaited<ReturnType<MoneyStore['admit']>>) => {
      if (!a.ok) throw new Error('refused');
      return a.reservation;
    };

    // Far from any refusal, settlements wait for the batch.
    const far1 = held(await l.admit({ identity: alice, amount: 1_000 }));
    const far2 = held(await l.admit({ identity: alice, amount: 1_000 }));
    const slice = (await team()).reserved;
    expect(slice).toBeGreaterThan(2_000);
    await l.settle(far1.id, entry(alice, 400, 'far1'));
    await l.settle(far2.id, entry(alice, 400, 'far2'));
    expect(await team()).toMatchObject({ spent: 0, reserved: slice });
    await l.ship();
    expect(await team()).toMatchObject({ spent: 800, reserved: slice - 800 });

    // A refusal on the team budget: it is near its ceiling from now on.
    const big = await l.admit({ identity: bob, amount: 200_000 });
    expect(big.ok).toBe(false);
    const a1 = held(await l.admit({ identity: alice, amount: 1_000 }));
    const a2 = held(await l.admit({ identity: alice, amount: 1_000 }));
    const lease = a1.id.slice(0, a1.id.lastIndexOf(':'));
    expect(a2.id.startsWith(`${lease}:`)).toBe(true);
    const before = await team();
    expect(before.reserved).toBeGreaterThan(2_000);
    // Settled: its cost charged, the rest of the slice back but the call still in flight.
    await l.settle(a1.id, entry(alice, 400, 'a1'));
    await until('charged at once, the slice down to the call in flight', (b) => {
      return b.spent === 1_200 && b.reserved === 1_000;
    });
    // The identity's next call asks the store again instead of taking from the old slice.
    const a3 = held(await l.admit({ identity: alice, amount: 1_000 }));
    expect(a3.id.startsWith(`${lease}:`)).toBe(false);
    await l.settle(a2.id, entry(alice, 300, 'a2'));
    await l.settle(a3.id, entry(alice, 200, 'a3'));
    await until('the last calls charged and their slices closed', (b) => {
      return b.spent === 1_700 && b.reserved === 0;
    });
    expect(await l.listLedger({ scope: 'seat:alice', limit: 10 })).toHaveLength(6);
  });

  it('a kill switch refuses the very next call, slices go back, and lifting it admits again', async () => {
    const clock = new TestClock();
    const [l] = await leased(1, clock);
    const a = await l!.admit({ identity: alice, amount: 1_000 });
    expect(a.ok).toBe(true);
    await l!.setKill('seat:alice', ops);
    const refused = await l!.admit({ identity: alice, amount: 1_000 });
    expect(refused).toMatchObject({ ok: false, refusal: { code: 'killed', kill: { scope: 'seat:alice' } } });
    // The call in flight settles; its slice then goes back whole.
    if (a.ok) await l!.settle(a.reservation.id, entry(alice, 300, 'in-flight'));
    await expect.poll(async () => (await l!.getBudget('seat:alice'))!.reserved).toBe(0);
    expect((await l!.getBudget('seat:alice'))!.spent).toBe(300);
    await l!.liftKill('seat:alice', ops);
    expect((await l!.admit({ identity: alice, amount: 1_000 })).ok).toBe(true);
  });

  it('a process that dies leaves its slice to expire, charged what it held (never zero)', async () => {
    const clock = new TestClock();
    const [l] = await leased(1, clock);
    await warm(l!, alice);
    const a = await l!.admit({ identity: alice, amount: 2_000 });
    if (!a.ok) throw new Error('refused');
    const held = (await l!.getBudget('seat:alice'))!.reserved;
    expect(held).toBe(128_000);
    // The process dies: no settlement, no renewal. The store's sweep finds the slice past its TTL.
    const inner = (l as unknown as { store: MoneyStore }).store;
    clock.advance(61_000);
    expect(await inner.sweepExpired()).toBe(1);
    const seat = (await inner.getBudget('seat:alice'))!;
    expect(seat).toMatchObject({ spent: held, reserved: 0 });
    const [expired] = await inner.listLedger({ scope: 'seat:alice', outcome: 'expired' });
    expect(expired).toMatchObject({ cost: held, requestId: expect.stringMatching(/^lease:/) });
  });

  it("upkeep 'manual': idle slices go back and live ones are renewed only on tick(), on the injected clock", async () => {
    const clock = new TestClock();
    const { stores } = await backend.stores(1, storeOptions(clock));
    const l = await openLeases(
      stores[0]!,
      { idleMs: 5_000, validityMs: 2_000, ttlMs: 60_000 },
      { now: clock.now, log, upkeep: 'manual' },
    );
    open.push(l);
    await warm(l, alice);
    await warm(l, bob);
    const a = await l.admit({ identity: alice, amount: 1_000 });
    const b = await l.admit({ identity: bob, amount: 1_000 });
    if (!a.ok || !b.ok) throw new Error('refused');
    await l.settle(a.reservation.id, entry(alice, 600, 'a'));
    // alice's slice has been idle 5 s; bob's still holds a call, 50 s on (past 2/3 of its TTL).
    clock.advance(50_000);
    expect(l.holding().leases).toBe(2);
    await l.tick();
    await expect.poll(async () => (await l.getBudget('seat:alice'))!.reserved).toBe(0);
    expect(l.holding().leases).toBe(1);
    // Renewed by that tick: past the slice's first expiry, the store's sweep finds nothing due.
    clock.advance(20_000);
    const inner = (l as unknown as { store: MoneyStore }).store;
    expect(await inner.sweepExpired()).toBe(0);
    expect((await l.getBudget('seat:bob'))!.reserved).toBe(64_000);
  });

  it('a settlement replayed after a restart is charged once, on its lease', async () => {
    const clock = new TestClock();
    const [l] = await leased(1, clock);
    const a = await l!.admit({ identity: alice, amount: 1_000 });
    if (!a.ok) throw new Error('refused');
    const inner = (l as unknown as { store: MoneyStore }).store;
    // A new process on the same store: it never saw the call, only its reservation id.
    const again = await openLeases(inner, FAST, { now: clock.now, log });
    const e = await again.settle(a.reservation.id, entry(alice, 700, 'replayed'));
    expect(e).toMatchObject({ cost: 700, requestId: 'replayed' });
    expect((await inner.getBudget('seat:alice'))!.spent).toBe(700);
    await again.stop();
  });

  it('refuses with enforcement_unavailable, not from memory, once the store is gone', async () => {
    const clock = new TestClock();
    const [l] = await leased(1, clock);
    expect((await l!.admit({ identity: alice, amount: 1_000 })).ok).toBe(true);
    const inner = (l as unknown as { store: MoneyStore }).store;
    await inner.close();
    await expect.poll(() => inner.isUp()).toBe(false);
    await expect(l!.admit({ identity: alice, amount: 1_000 })).rejects.toMatchObject({
      code: 'enforcement_unavailable',
    });
  });

  if (backend.name === 'redis') {
    it('a kill on one replica refuses the next call on every replica before it returns', async () => {
      const clock = new TestClock();
      const [a, b, c] = await leased(3, clock, { idleMs: 60_000, validityMs: 2_000, ttlMs: 60_000 });
      // Each replica holds a slice for alice; each is alive in the store's replica registry.
      for (const l of [a!, b!, c!]) expect((await l.admit({ identity: alice, amount: 1_000 })).ok).toBe(true);
      expect(await livePeers(a!)).toBe(2);
      const t0 = performance.now();
      await a!.setKill('team:payments', ops);
      const took = performance.now() - t0;
      for (const l of [a!, b!, c!]) {
        expect(await l.admit({ identity: alice, amount: 1_000 })).toMatchObject({
          ok: false,
          refusal: { code: 'killed' },
        });
      }
      // Acknowledged by both peers, not waited out.
      expect(took).toBeLessThan(2_000);
    });

    it('a replica that cannot hear the kill stops admitting from memory once its validity ends', async () => {
      const clock = new TestClock();
      const [a, b] = await leased(2, clock, { idleMs: 60_000, validityMs: 2_000, ttlMs: 60_000 });
      expect((await b!.admit({ identity: alice, amount: 1_000 })).ok).toBe(true);
      // b is deaf: it never hears the broadcast (its subscription is gone).
      (b as unknown as { heard: (m: string) => void }).heard = () => {};
      await a!.setKill('team:payments', ops);
      // Within its validity b may still admit from memory; past it, it reads the kills first.
      clock.advance(2_001);
      expect(await b!.admit({ identity: alice, amount: 1_000 })).toMatchObject({
        ok: false,
        refusal: { code: 'killed' },
      });
    });

    it('zero overshoot over 4 replicas: 400 concurrent calls, room for 150', async () => {
      const clock = new TestClock();
      const replicas = await leased(4, clock);
      // Every replica knows the others (each beat into the store's registry when it started).
      for (const r of replicas) expect(await livePeers(r)).toBe(3);
      await replicas[0]!.ensureBudget('team:payments', { ceiling: 150_000, window: 'day' });
      const results = await Promise.all(
        Array.from({ length: 400 }, (_, i) => {
          const l = replicas[i % 4]!;
          const who = i % 3 ? alice : bob;
          return l.admit({ identity: who, amount: 1_000 }).then(async (a) => {
            if (!a.ok) return 0;
            await l.settle(a.reservation.id, entry(who, 1_000, `r${i}`));
            return 1;
          });
        }),
      );
      const team = await replicas[0]!.getBudget('team:payments');
      expect(team!.spent).toBeLessThanOrEqual(150_000);
      expect(team!.spent).toBe(results.reduce((a: number, b) => a + b, 0) * 1_000);
      // A refused grant asks the other replicas for their slack first: no room is stranded.
      expect(team!.spent).toBe(150_000);
    });
  }
});
