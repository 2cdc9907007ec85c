import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Identity, Scope, ScopeKind } from '../../../runtime/identity.ts';
import {
  type Admission,
  type BudgetSpec,
  EnforcementUnavailableError,
  type LedgerInput,
  type MoneyStore,
  type MoneyStoreOptions,
  NO_TOKENS,
  type Reservation,
  StoreInputError,
} from '../../../runtime/store/port.ts';
import { budgetId } from '../../../runtime/store/records.ts';

/** What a backend's test file provides so the one contract suite can run against it. */
export interface StoreHarness {
  open(options: MoneyStoreOptions): Promise<MoneyStore>;
  /** Overwrites the stored ceiling of the scope's budget with something that is not a number. */
  corruptCeiling(store: MoneyStore, scope: Scope): Promise<void>;
  /** A store whose backend the test takes away mid-test (`cut`). */
  openDoomed(options: MoneyStoreOptions): Promise<{ store: MoneyStore; cut(): Promise<void> }>;
  /**
   * The store admits in a partition that holds a cap of each budget, not the whole budget
   * (runtime/backends/redis/money/partitioned.ts): a lease's slice is sized from the cap, so the
   * exact whole-budget slice arithmetic does not apply (redis-partitioned.test.ts bounds it).
   */
  capped?: boolean;
}

export const USD = 1_000_000;

/** The injected clock: tests move it instead of sleeping. */
export class TestClock {
  constructor(public t = Date.parse('2024-06-10T10:00:00Z')) {}
  readonly now = () => this.t;
  set(iso: string): void {
    this.t = Date.parse(iso);
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export const DEFAULTS: Record<ScopeKind, BudgetSpec> = {
  global: { ceiling: 1_000 * USD, window: 'day' },
  team: { ceiling: 50 * USD, window: 'day', owner: 'platform' },
  env: { ceiling: 500 * USD, window: 'month' },
  seat: { ceiling: 100 * USD, window: 'day' },
  workflow: { ceiling: 100 * USD, window: 'month' },
  run: { ceiling: 2 * USD, window: 'total' },
  provider: { ceiling: 1_000 * USD, window: 'day' },
};

export function storeOptions(clock: TestClock, over: Partial<MoneyStoreOptions> = {}): MoneyStoreOptions {
  return { defaults: DEFAULTS, timeZone: 'Europe/Berlin', reservationTtlMs: 60_000, now: clock.now, ...over };
}

const alice: Identity = { team: 'payments', env: 'prod', seat: 'alice' };
const inRun = (run: string, workflow = 'triage'): Identity => ({ ...alice, workflow, run });
const ops = { actor: 'oncall@acme', reason: 'incident 42' };

function call(identity: Identity, over: Partial<LedgerInput> = {}): LedgerInput {
  return {
    requestId: 'req_1',
    identity,
    kind: 'model',
    name: 'claude-sonnet-4-5',
    tokens: { input: 1000, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 100 },
    reserved: 0,
    cost: 0,
    outcome: 'ok',
    latencyMs: 12,
    ...over,
  };
}

function reservationOf(a: Admission): Reservation {
  if (!a.ok) throw new Error(`expected an admission, got ${JSON.stringify(a.refusal)}`);
  return a.reservation;
}

function refusalOf(a: Admission) {
  if (a.ok) throw new Error('expected a refusal, got an admission');
  return a.refusal;
}

export function moneyStoreContract(harness: StoreHarness): void {
  let clock: TestClock;
  let store: MoneyStore;
  const open = async (over: Partial<MoneyStoreOptions> = {}) => {
    await store?.close();
    store = await harness.open(storeOptions(clock, over));
    return store;
  };
  const budget = async (scope: Scope) => {
    const b = await store.getBudget(scope);
    if (!b) throw new Error(`no budget for ${scope}`);
    return b;
  };
  const admitAndSettle = async (identity: Identity, amount: number, cost: number) => {
    const r = reservationOf(await store.admit({ identity, amount }));
    return store.settle(r.id, call(identity, { reserved: amount, cost }));
  };

  beforeEach(async () => {
    clock = new TestClock();
    store = await harness.open(storeOptions(clock));
  });
  afterEach(async () => {
    await store.close();
  });

  describe('provisioning', () => {
    it('creates a budget for every scope of a new identity from the defaults on first admission', async () => {
      expect(await store.listBudgets()).toEqual([]);
      reservationOf(await store.admit({ identity: alice, amount: 1000 }));
      const scopes = (await store.listBudgets()).map((b) => b.scope).sort();
      expect(scopes).toEqual(['env:prod', 'global', 'seat:alice', 'team:payments']);
      const team = await budget('team:payments');
      expect(team).toMatchObject({
        id: budgetId('team:payments'),
        owner: 'platform',
        ceiling: 50 * USD,
        window: 'day',
        state: 'active',
        spent: 0,
        reserved: 1000,
        createdAt: clock.t,
      });
      expect(team.id).toMatch(/^bgt_[0-9a-f]{16}$/);
      expect(await store.getBudget(team.id)).toEqual(team);
    });

    it("creates a run's budget from the request's provisioning instead of the default", async () => {
      const provision = { 'run:r_1': { ceiling: 5 * USD, window: 'total' as const } };
      reservationOf(await store.admit({ identity: inRun('r_1'), amount: 3 * USD, provision }));
      expect(await budget('run:r_1')).toMatchObject({ ceiling: 5 * USD, window: 'total', reserved: 3 * USD });
      expect(await budget('workflow:triage')).toMatchObject({ ceiling: 100 * USD, window: 'month' });
    });

    it('creates exactly one budget when many first admissions for a new scope race', async () => {
      const identity = { ...alice, team: 'newcomers' };
      const results = await Promise.all(
        Array.from({ length: 40 }, () => store.admit({ identity, amount: 2 * USD })),
      );
      const admitted = results.filter((a) => a.ok).length;
      expect(admitted).toBe(25);
      const teams = await store.listBudgets({ kind: 'team' });
      expect(teams.map((b) => b.scope)).toEqual(['team:newcomers']);
      expect(teams[0]).toMatchObject({ ceiling: 50 * USD, reserved: 50 * USD });
    });

    it('ensureBudget creates a budget once and returns the existing one afterwards', async () => {
      const made = await store.ensureBudget('team:search', {
        ceiling: 7 * USD,
        window: '7d',
        owner: 'search',
      });
      expect(made).toMatchObject({ scope: 'team:search', ceiling: 7 * USD, window: '7d', owner: 'search' });
      const again = await store.ensureBudget('team:search', { ceiling: 99 * USD, window: 'day' });
      expect(again).toEqual(made);
      expect(await store.ensureBudget('seat:bob')).toMatchObject({ ceiling: 100 * USD, window: 'day' });
    });

    it('rejects budgets without a finite whole ceiling: there is no unlimited', async () => {
      for (const ceiling of [Number.POSITIVE_INFINITY, -1, 1.5, Number.NaN]) {
        await expect(store.ensureBudget('team:x', { ceiling, window: 'day' })).rejects.toBeInstanceOf(
          StoreInputError,
        );
      }
      await expect(store.ensureBudget('team:x', { ceiling: 1, window: 'week' as 'day' })).rejects.toThrow(
        /window/,
      );
      await expect(store.ensureBudget('team:has space')).rejects.toMatchObject({ code: 'invalid' });
    });
  });

  describe('admission', () => {
    it('reserves the amount on every budget that applies', async () => {
      const r = reservationOf(await store.admit({ identity: inRun('r_1'), amount: 1500 }));
      expect(r).toMatchObject({ amount: 1500, createdAt: clock.t, expiresAt: clock.t + 60_000 });
      expect(r.scopes).toEqual([
        'global',
        'team:payments',
        'env:prod',
        'seat:alice',
        'workflow:triage',
        'run:r_1',
      ]);
      for (const s of r.scopes) expect((await budget(s)).reserved).toBe(1500);
    });

    it('refuses a call that would pass the team ceiling, naming the budget', async () => {
      await admitAndSettle(alice, 20 * USD, 19 * USD);
      reservationOf(await store.admit({ identity: alice, amount: 30 * USD }));
      const refusal = refusalOf(await store.admit({ identity: alice, amount: 2 * USD }));
      expect(refusal).toMatchObject({
        code: 'budget_exhausted',
        amount: 2 * USD,
        budget: {
          scope: 'team:payments',
          ceiling: 50 * USD,
          spent: 19 * USD,
          reserved: 30 * USD,
          window: 'day',
          windowStart: Date.parse('2024-06-09T22:00:00Z'),
          resetsAt: Date.parse('2024-06-10T22:00:00Z'),
        },
      });
    });

    it('admits a call that lands exactly on the ceiling', async () => {
      reservationOf(await store.admit({ identity: alice, amount: 50 * USD }));
      expect(refusalOf(await store.admit({ identity: alice, amount: 1 }))).toMatchObject({
        budget: { scope: 'team:payments' },
      });
    });

    it('reserves nothing anywhere when one budget refuses (all or nothing)', async () => {
      const refusal = refusalOf(await store.admit({ identity: inRun('r_1'), amount: 3 * USD }));
      expect(refusal).toMatchObject({
        code: 'budget_exhausted',
        budget: { scope: 'run:r_1', ceiling: 2 * USD },
      });
      for (const b of await store.listBudgets()) expect(b.reserved).toBe(0);
    });

    it('refuses every call under a frozen budget, even a cheap one', async () => {
      await store.setFrozen('seat:alice', true, ops);
      const refusal = refusalOf(await store.admit({ identity: alice, amount: 1 }));
      expect(refusal).toMatchObject({
        code: 'budget_exhausted',
        budget: { scope: 'seat:alice', state: 'frozen' },
      });
      await store.setFrozen('seat:alice', false, ops);
      reservationOf(await store.admit({ identity: alice, amount: 1 }));
    });

    it('reports a budget whose window is spent as exhausted', async () => {
      await admitAndSettle(alice, 50 * USD, 50 * USD);
      expect(await budget('team:payments')).toMatchObject({
        state: 'exhausted',
        spent: 50 * USD,
        reserved: 0,
      });
    });

    it('rejects an identity without a team, env and seat', async () => {
      const partial = { team: 'payments', env: 'prod' } as Identity;
      await expect(store.admit({ identity: partial, amount: 1 })).rejects.toMatchObject({ code: 'invalid' });
      await expect(store.admit({ identity: { ...alice, seat: 'a b' }, amount: 1 })).rejects.toBeInstanceOf(
        StoreInputError,
      );
      expect(await store.listBudgets()).toEqual([]);
    });

    it('rejects an amount that is not whole non-negative micro-dollars', async () => {
      await expect(store.admit({ identity: alice, amount: -5 })).rejects.toBeInstanceOf(StoreInputError);
      await expect(store.admit({ identity: alice, amount: 0.5 })).rejects.toBeInstanceOf(StoreInputError);
    });
  });

  describe('settle and release', () => {
    it('replaces the reservation by a lower actual cost', async () => {
      const r = reservationOf(await store.admit({ identity: alice, amount: 3 * USD }));
      const entry = await store.settle(r.id, call(alice, { reserved: 3 * USD, cost: 1 * USD }));
      expect(entry).toMatchObject({
        reserved: 3 * USD,
        cost: 1 * USD,
        overrun: 0,
        outcome: 'ok',
        reservationId: r.id,
      });
      expect(entry.id).toMatch(/^led_/);
      expect(entry.at).toBe(clock.t);
      expect(await budget('team:payments')).toMatchObject({ spent: 1 * USD, reserved: 0 });
      expect(await budget('global')).toMatchObject({ spent: 1 * USD, reserved: 0 });
    });

    it('charges the full actual cost when it exceeds the reservation and records the overrun', async () => {
      const r = reservationOf(await store.admit({ identity: alice, amount: 1 * USD }));
      const entry = await store.settle(r.id, call(alice, { reserved: 1 * USD, cost: 1_250_000 }));
      expect(entry).toMatchObject({ reserved: 1 * USD, cost: 1_250_000, overrun: 250_000 });
      expect(await budget('team:payments')).toMatchObject({ spent: 1_250_000, reserved: 0 });
      const [logged] = await store.listLedger({ outcome: 'ok' });
      expect(logged).toEqual(entry);
    });

    it('charges once and keeps one ledger entry when the same reservation is settled twice', async () => {
      const r = reservationOf(await store.admit({ identity: alice, amount: 3 * USD }));
      const first = await store.settle(r.id, call(alice, { reserved: 3 * USD, cost: 2 * USD }));
      const second = await store.settle(r.id, call(alice, { reserved: 3 * USD, cost: 2 * USD }));
      expect(second).toEqual(first);
      expect(await budget('team:payments')).toMatchObject({ spent: 2 * USD, reserved: 0 });
      expect(await store.listLedger()).toHaveLength(1);
      expect(await store.release(r.id, call(alice, { outcome: 'error' }))).toEqual(first);
    });

    it('release frees the reservation and records the call at no cost', async () => {
      const r = reservationOf(await store.admit({ identity: alice, amount: 3 * USD }));
      const entry = await store.release(
        r.id,
        call(alice, { reserved: 3 * USD, outcome: 'error', code: 'api_error' }),
      );
      expect(entry).toMatchObject({
        cost: 0,
        overrun: 0,
        outcome: 'error',
        code: 'api_error',
        reservationId: r.id,
      });
      expect(await budget('team:payments')).toMatchObject({ spent: 0, reserved: 0 });
      expect(await store.listLedger()).toEqual([entry]);
    });

    it('refuses to release with a cost: a billed call is settled', async () => {
      const r = reservationOf(await store.admit({ identity: alice, amount: 3 * USD }));
      await expect(store.release(r.id, call(alice, { cost: 5 }))).rejects.toMatchObject({ code: 'invalid' });
    });

    it('keeps the worst case charged at expiry when a settle arrives after it: closed once, never less', async () => {
      const r = reservationOf(await store.admit({ identity: alice, amount: 3 * USD }));
      clock.advance(61_000);
      expect(await store.sweepExpired()).toBe(1);
      expect(await budget('team:payments')).toMatchObject({ spent: 3 * USD, reserved: 0 });
      const late = await store.settle(r.id, call(alice, { reserved: 3 * USD, cost: 2 * USD }));
      expect(late).toMatchObject({ cost: 3 * USD, outcome: 'expired', code: 'reservation_expired' });
      expect(await budget('team:payments')).toMatchObject({ spent: 3 * USD, reserved: 0 });
      expect(await store.release(r.id, call(alice, { cost: 0 }))).toEqual(late);
      expect((await store.listLedger()).map((e) => e.outcome)).toEqual(['expired']);
    });

    it('charges a settle for a reservation it never saw rather than lose the cost', async () => {
      const entry = await store.settle('res_unknown', call(inRun('r_9'), { cost: 700 }));
      expect(entry).toMatchObject({ cost: 700, reservationId: 'res_unknown', overrun: 700 });
      expect(await budget('team:payments')).toMatchObject({ spent: 700, reserved: 0 });
      expect(await budget('run:r_9')).toMatchObject({ spent: 700, ceiling: 2 * USD });
      await store.settle('res_unknown', call(inRun('r_9'), { cost: 700 }));
      expect(await budget('team:payments')).toMatchObject({ spent: 700 });
    });

    it('settles against the budgets the reservation holds, whatever identity the entry names', async () => {
      const r = reservationOf(await store.admit({ identity: inRun('r_1'), amount: 1 * USD }));
      const entry = await store.settle(r.id, call(alice, { cost: 400_000 }));
      expect(entry).toMatchObject({ identity: alice, reserved: 1 * USD, cost: 400_000 });
      expect(await budget('run:r_1')).toMatchObject({ spent: 400_000, reserved: 0 });
      expect(await budget('workflow:triage')).toMatchObject({ spent: 400_000, reserved: 0 });
      expect(await budget('team:payments')).toMatchObject({ spent: 400_000, reserved: 0 });
    });

    it('appendLedger records a refusal without touching any budget', async () => {
      await store.ensureBudget('team:payments');
      const entry = await store.appendLedger(
        call(alice, { outcome: 'refused', code: 'budget_exhausted', cost: 0 }),
      );
      expect(entry).toMatchObject({ outcome: 'refused', code: 'budget_exhausted', overrun: 0, at: clock.t });
      expect(await budget('team:payments')).toMatchObject({ spent: 0, reserved: 0 });
      expect(await store.listLedger()).toEqual([entry]);
    });
  });

  describe('reservation expiry', () => {
    it('charges reservations past their expiry their worst case, each one expired ledger entry', async () => {
      const r = reservationOf(
        await store.admit({
          identity: inRun('r_1'),
          amount: 1 * USD,
          requestId: 'req_7',
          name: 'claude-opus-4-1',
        }),
      );
      clock.advance(59_999);
      expect(await store.sweepExpired()).toBe(0);
      clock.advance(1);
      expect(await store.sweepExpired()).toBe(1);
      expect(await budget('team:payments')).toMatchObject({ reserved: 0, spent: 1 * USD });
      expect(await budget('run:r_1')).toMatchObject({ reserved: 0, spent: 1 * USD });
      const [expired] = await store.listLedger({ outcome: 'expired' });
      expect(expired).toMatchObject({
        requestId: 'req_7',
        identity: inRun('r_1'),
        kind: 'model',
        name: 'claude-opus-4-1',
        reserved: 1 * USD,
        cost: 1 * USD,
        outcome: 'expired',
        code: 'reservation_expired',
        reservationId: r.id,
        at: clock.t,
        latencyMs: 60_000,
      });
      expect(await store.sweepExpired()).toBe(0);
      // Counted as spend, like any charged call.
      const rows = await store.spend({ by: 'team', since: 0, until: clock.t + 1 });
      expect(rows).toMatchObject([{ key: 'payments', cost: 1 * USD, calls: 1 }]);
    });

    it("expires a dead run's reservations at once when it is adopted: charged their worst case now", async () => {
      const mine = reservationOf(
        await store.admit({ identity: inRun('r_dead'), amount: 2 * USD, requestId: 'req_a' }),
      );
      const other = reservationOf(await store.admit({ identity: inRun('r_alive'), amount: 1 * USD }));
      expect(await store.expireNow('run:r_dead')).toBe(1);
      expect(await budget('run:r_dead')).toMatchObject({ spent: 2 * USD, reserved: 0 });
      expect(await budget('run:r_alive')).toMatchObject({ spent: 0, reserved: 1 * USD });
      const [e] = await store.listLedger({ outcome: 'expired' });
      expect(e).toMatchObject({ requestId: 'req_a', cost: 2 * USD, reservationId: mine.id });
      // The dead process's late settle changes nothing; the live run's still settles.
      await store.settle(mine.id, call(inRun('r_dead'), { cost: 1 }));
      expect(await budget('run:r_dead')).toMatchObject({ spent: 2 * USD });
      await store.settle(other.id, call(inRun('r_alive'), { cost: 500_000 }));
      expect(await budget('run:r_alive')).toMatchObject({ spent: 500_000, reserved: 0 });
      expect(await store.expireNow('run:r_dead')).toBe(0);
    });

    it('expires due reservations inside admission: their worst case moves from reserved to spent', async () => {
      reservationOf(await store.admit({ identity: alice, amount: 40 * USD }));
      clock.advance(60_000);
      reservationOf(await store.admit({ identity: alice, amount: 5 * USD }));
      expect(await budget('team:payments')).toMatchObject({ spent: 40 * USD, reserved: 5 * USD });
      expect(await store.listLedger({ outcome: 'expired' })).toHaveLength(1);
    });
  });

  describe('windows', () => {
    it('starts a daily budget empty after local midnight in the configured zone', async () => {
      clock.set('2024-06-10T21:30:00Z'); // 23:30 in Berlin
      await admitAndSettle(alice, 45 * USD, 45 * USD);
      clock.set('2024-06-10T21:59:59Z');
      expect(refusalOf(await store.admit({ identity: alice, amount: 10 * USD }))).toMatchObject({
        budget: { scope: 'team:payments', spent: 45 * USD, resetsAt: Date.parse('2024-06-10T22:00:00Z') },
      });
      clock.set('2024-06-10T22:00:00Z');
      reservationOf(await store.admit({ identity: alice, amount: 10 * USD }));
      expect(await budget('team:payments')).toMatchObject({
        spent: 0,
        reserved: 10 * USD,
        windowStart: Date.parse('2024-06-10T22:00:00Z'),
      });
    });

    it('rolls a monthly budget over at the end of February in a leap year', async () => {
      clock.set('2024-02-29T20:00:00Z');
      await admitAndSettle(alice, 30 * USD, 30 * USD);
      clock.set('2024-02-29T22:59:59Z');
      expect(await budget('env:prod')).toMatchObject({
        spent: 30 * USD,
        resetsAt: Date.parse('2024-02-29T23:00:00Z'),
      });
      clock.set('2024-02-29T23:00:00Z'); // March 1st, 00:00 in Berlin
      expect(await budget('env:prod')).toMatchObject({
        spent: 0,
        windowStart: Date.parse('2024-02-29T23:00:00Z'),
        resetsAt: Date.parse('2024-03-31T22:00:00Z'),
      });
    });

    it('keeps a day window 23 hours long across the spring DST change', async () => {
      clock.set('2024-03-30T23:30:00Z'); // 00:30 on March 31st in Berlin
      await admitAndSettle(alice, 40 * USD, 40 * USD);
      clock.set('2024-03-31T21:59:59Z'); // 23:59:59 in Berlin, 22.5 hours later
      expect(await budget('team:payments')).toMatchObject({
        spent: 40 * USD,
        windowStart: Date.parse('2024-03-30T23:00:00Z'),
        resetsAt: Date.parse('2024-03-31T22:00:00Z'),
      });
      clock.set('2024-03-31T22:00:00Z');
      expect(await budget('team:payments')).toMatchObject({ spent: 0 });
    });

    it('keeps a day window 25 hours long across the fall DST change in New York', async () => {
      await open({ timeZone: 'America/New_York' });
      clock.set('2024-11-03T04:30:00Z'); // 00:30 EDT
      await admitAndSettle(alice, 40 * USD, 40 * USD);
      clock.set('2024-11-04T04:59:59Z'); // 23:59:59 EST, 24.5 hours later
      expect(await budget('team:payments')).toMatchObject({ spent: 40 * USD });
      clock.set('2024-11-04T05:00:00Z');
      expect(await budget('team:payments')).toMatchObject({ spent: 0 });
    });

    it('lets spend leave a rolling window after its duration, at most one bucket late', async () => {
      await store.ensureBudget('seat:alice', { ceiling: 10 * USD, window: '24h' });
      clock.set('2024-06-10T10:20:00Z');
      await admitAndSettle(alice, 6 * USD, 6 * USD);
      clock.set('2024-06-10T16:00:00Z');
      await admitAndSettle(alice, 3 * USD, 3 * USD);
      clock.set('2024-06-11T10:19:59Z');
      expect(refusalOf(await store.admit({ identity: alice, amount: 2 * USD }))).toMatchObject({
        budget: { scope: 'seat:alice', spent: 9 * USD, resetsAt: Date.parse('2024-06-11T11:00:00Z') },
      });
      clock.set('2024-06-11T10:59:59Z');
      expect(await budget('seat:alice')).toMatchObject({ spent: 9 * USD });
      clock.set('2024-06-11T11:00:00Z');
      expect(await budget('seat:alice')).toMatchObject({ spent: 3 * USD });
      reservationOf(await store.admit({ identity: alice, amount: 2 * USD }));
      clock.set('2024-06-11T17:00:00Z');
      expect(await budget('seat:alice')).toMatchObject({ spent: 0, reserved: 2 * USD });
    });

    it('never resets a total window', async () => {
      const provision = { 'run:r_1': { ceiling: 5 * USD, window: 'total' as const } };
      const r = reservationOf(await store.admit({ identity: inRun('r_1'), amount: 4 * USD, provision }));
      await store.settle(r.id, call(inRun('r_1'), { cost: 4 * USD }));
      clock.set('2025-06-10T10:00:00Z');
      expect(await budget('run:r_1')).toMatchObject({ spent: 4 * USD, windowStart: 0, resetsAt: null });
      expect(refusalOf(await store.admit({ identity: inRun('r_1'), amount: 2 * USD }))).toMatchObject({
        budget: { scope: 'run:r_1' },
      });
    });
  });

  describe('kill switches', () => {
    const identity = inRun('r_1');
    it.each([['global'], ['team:payments'], ['env:prod'], ['seat:alice'], ['workflow:triage'], ['run:r_1']])(
      'refuses a call covered by a kill switch on %s',
      async (scope) => {
        const kill = await store.setKill(scope, ops);
        expect(kill).toEqual({ scope, actor: ops.actor, reason: ops.reason, at: clock.t });
        expect(await store.admit({ identity, amount: 1 })).toEqual({
          ok: false,
          refusal: { code: 'killed', kill },
        });
        expect(await store.killedBy(identity)).toEqual(kill);
        expect(await store.killedBy({ ...alice, team: 'other', env: 'dev', seat: 'bob' })).toEqual(
          scope === 'global' ? kill : undefined,
        );
      },
    );

    it('names the widest kill switch first and reserves nothing', async () => {
      await store.setKill('run:r_1', ops);
      clock.advance(1000);
      const team = await store.setKill('team:payments', { actor: 'cfo', reason: 'spend review' });
      expect(refusalOf(await store.admit({ identity, amount: 1 }))).toEqual({ code: 'killed', kill: team });
      for (const b of await store.listBudgets()) expect(b.reserved).toBe(0);
      expect((await store.listKills()).map((k) => k.scope).sort()).toEqual(['run:r_1', 'team:payments']);
    });

    it('admits again once the kill switch is lifted', async () => {
      await store.setKill('seat:alice', ops);
      expect(await store.liftKill('seat:alice', ops)).toBe(true);
      expect(await store.liftKill('seat:alice', ops)).toBe(false);
      reservationOf(await store.admit({ identity, amount: 1 }));
      expect(await store.listKills()).toEqual([]);
    });
  });

  describe('audit', () => {
    it('records a ceiling change with the ceiling before and after', async () => {
      await store.ensureBudget('team:payments');
      clock.advance(5000);
      const b = await store.setCeiling('team:payments', 80 * USD, ops);
      expect(b).toMatchObject({ ceiling: 80 * USD, updatedAt: clock.t });
      expect(await store.listAudit({ target: 'team:payments' })).toEqual([
        {
          id: expect.stringMatching(/^aud_/),
          at: clock.t,
          actor: ops.actor,
          reason: ops.reason,
          action: 'budget.ceiling',
          target: 'team:payments',
          before: { ceiling: 50 * USD },
          after: { ceiling: 80 * USD },
        },
      ]);
    });

    it('raises a ceiling so a refused call is admitted', async () => {
      reservationOf(await store.admit({ identity: alice, amount: 45 * USD }));
      refusalOf(await store.admit({ identity: alice, amount: 10 * USD }));
      await store.setCeiling('team:payments', 60 * USD, ops);
      reservationOf(await store.admit({ identity: alice, amount: 10 * USD }));
    });

    it('provisions a missing budget from the defaults before changing its ceiling', async () => {
      const b = await store.setCeiling('team:growth', 5 * USD, ops);
      expect(b).toMatchObject({ scope: 'team:growth', ceiling: 5 * USD, window: 'day' });
      const [entry] = await store.listAudit({ target: 'team:growth' });
      expect(entry).toMatchObject({ before: { ceiling: 50 * USD }, after: { ceiling: 5 * USD } });
    });

    it('records freeze and unfreeze with before and after', async () => {
      await store.setFrozen('team:payments', true, ops);
      clock.advance(1);
      await store.setFrozen('team:payments', false, { actor: 'lead', reason: 'resolved' });
      const entries = await store.listAudit({ target: 'team:payments' });
      expect(entries.map((e) => [e.action, e.before, e.after, e.actor])).toEqual([
        ['budget.unfreeze', { frozen: true }, { frozen: false }, 'lead'],
        ['budget.freeze', { frozen: false }, { frozen: true }, ops.actor],
      ]);
    });

    it('records kill and unkill with the switch before and after', async () => {
      const kill = await store.setKill('env:prod', ops);
      clock.advance(1);
      await store.liftKill('env:prod', { actor: 'lead', reason: 'resolved' });
      const entries = await store.listAudit({ target: 'env:prod' });
      expect(entries.map((e) => [e.action, e.before, e.after])).toEqual([
        ['kill.lift', kill, null],
        ['kill.set', null, kill],
      ]);
    });

    it('lists audit entries by target and time, newest first', async () => {
      const a = await store.appendAudit({
        actor: 'x',
        action: 'key.create',
        target: 'key:k1',
        reason: 'new app',
      });
      clock.advance(10);
      const b = await store.appendAudit({
        actor: 'x',
        action: 'key.revoke',
        target: 'key:k1',
        reason: 'leaked',
      });
      clock.advance(10);
      const c = await store.appendAudit({
        actor: 'x',
        action: 'key.create',
        target: 'key:k2',
        reason: 'new app',
      });
      expect(await store.listAudit()).toEqual([c, b, a]);
      expect(await store.listAudit({ target: 'key:k1' })).toEqual([b, a]);
      expect(await store.listAudit({ since: b.at })).toEqual([c, b]);
      expect(await store.listAudit({ until: b.at })).toEqual([a]);
      expect(await store.listAudit({ limit: 1 })).toEqual([c]);
    });

    it('refuses operator actions without an actor and a reason, and ceilings that are not amounts', async () => {
      await expect(store.setCeiling('team:payments', 1, { actor: 'x', reason: '' })).rejects.toBeInstanceOf(
        StoreInputError,
      );
      await expect(store.setKill('global', { actor: '', reason: 'x' })).rejects.toBeInstanceOf(
        StoreInputError,
      );
      await expect(store.setCeiling('team:payments', Number.POSITIVE_INFINITY, ops)).rejects.toMatchObject({
        code: 'invalid',
      });
      expect(await store.listAudit()).toEqual([]);
    });
  });

  describe('ledger queries', () => {
    const bob: Identity = { team: 'search', env: 'dev', seat: 'bob' };
    const seed = async () => {
      const e1 = await admitAndSettle(inRun('r_1'), 1 * USD, 100);
      clock.advance(1000);
      const e2 = await store.appendLedger(
        call(bob, { outcome: 'refused', code: 'killed', kind: 'tool', name: 'web' }),
      );
      clock.advance(1000);
      const r = reservationOf(await store.admit({ identity: bob, amount: 1 * USD }));
      const e3 = await store.settle(
        r.id,
        call(bob, { cost: 300, kind: 'tool', name: 'web', tokens: { ...NO_TOKENS }, latencyMs: 5 }),
      );
      clock.advance(1000);
      const e4 = await admitAndSettle(inRun('r_2', 'review'), 1 * USD, 200);
      return { e1, e2, e3, e4 };
    };

    it('lists entries newest first, filtered by scope, run, kind, outcome and time', async () => {
      const { e1, e2, e3, e4 } = await seed();
      expect(await store.listLedger()).toEqual([e4, e3, e2, e1]);
      expect(await store.listLedger({ scope: 'team:search' })).toEqual([e3, e2]);
      expect(await store.listLedger({ scope: 'workflow:triage' })).toEqual([e1]);
      expect(await store.listLedger({ run: 'r_2' })).toEqual([e4]);
      expect(await store.listLedger({ scope: 'run:r_1' })).toEqual([e1]);
      expect(await store.listLedger({ kind: 'tool' })).toEqual([e3, e2]);
      expect(await store.listLedger({ outcome: 'refused' })).toEqual([e2]);
      expect(await store.listLedger({ since: e2.at, until: e4.at })).toEqual([e3, e2]);
      expect(await store.listLedger({ limit: 2 })).toEqual([e4, e3]);
      expect(await store.listLedger({ scope: 'global', kind: 'model', limit: 1 })).toEqual([e4]);
    });

    it('sums spend by team, env, seat, workflow and model, counting only calls that reached a provider', async () => {
      await seed();
      const since = Date.parse('2024-06-01T00:00:00Z');
      const until = Date.parse('2024-07-01T00:00:00Z');
      const keyed = async (by: 'team' | 'env' | 'seat' | 'workflow' | 'model' | 'day') =>
        (await store.spend({ by, since, until })).map((r) => [r.key, r.cost, r.calls]);
      expect(await keyed('team')).toEqual([
        ['payments', 300, 2],
        ['search', 300, 1],
      ]);
      expect(await keyed('env')).toEqual([
        ['dev', 300, 1],
        ['prod', 300, 2],
      ]);
      expect(await keyed('seat')).toEqual([
        ['alice', 300, 2],
        ['bob', 300, 1],
      ]);
      expect(await keyed('workflow')).toEqual([
        ['(none)', 300, 1],
        ['review', 200, 1],
        ['triage', 100, 1],
      ]);
      expect(await keyed('model')).toEqual([
        ['claude-sonnet-4-5', 300, 2],
        ['tool:web', 300, 1],
      ]);
      expect(await keyed('day')).toEqual([['2024-06-10', 600, 3]]);
      const [row] = await store.spend({ by: 'team', since, until, scope: 'team:payments' });
      expect(row).toEqual({
        key: 'payments',
        cost: 300,
        calls: 2,
        tokens: { input: 2000, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 200 },
        corrections: 0,
        correctedCost: 0,
      });
      expect(await store.spend({ by: 'model', since, until, scope: 'run:r_2' })).toMatchObject([
        { key: 'claude-sonnet-4-5', cost: 200, calls: 1 },
      ]);
    });

    it('sums spend by provider: settled and expired calls under theirs, older entries under anthropic, tools apart', async () => {
      const settleVia = async (provider: string | undefined, cost: number) => {
        const r = reservationOf(await store.admit({ identity: alice, amount: USD, provider }));
        return store.settle(r.id, call(alice, { reserved: USD, cost, ...(provider ? { provider } : {}) }));
      };
      expect(await settleVia('bedrock', 300)).toMatchObject({ provider: 'bedrock' });
      await settleVia('bedrock', 200);
      await settleVia(undefined, 50);
      await store.admit({ identity: alice, amount: 7_000, requestId: 'req_v', provider: 'vertex' });
      clock.advance(60_000);
      expect(await store.sweepExpired()).toBe(1);
      expect((await store.listLedger({ outcome: 'expired' }))[0]).toMatchObject({
        requestId: 'req_v',
        provider: 'vertex',
        cost: 7_000,
      });
      const tool = reservationOf(
        await store.admit({ identity: alice, amount: 100, kind: 'tool', name: 'search' }),
      );
      await store.settle(tool.id, call(alice, { kind: 'tool', name: 'search', reserved: 100, cost: 10 }));
      const rows = await store.spend({ by: 'provider', since: 0, until: clock.t + 1 });
      expect(rows.map((r) => [r.key, r.cost, r.calls])).toEqual([
        ['vertex', 7_000, 1],
        ['bedrock', 500, 2],
        ['anthropic', 50, 1],
        ['(tool)', 10, 1],
      ]);
      // One provider's spend by model (what reconciliation against that provider's bill reads).
      const bedrock = await store.spend({ by: 'model', since: 0, until: clock.t + 1, provider: 'bedrock' });
      expect(bedrock.map((r) => [r.key, r.cost, r.calls])).toEqual([['claude-sonnet-4-5', 500, 2]]);
      const anthropic = await store.spend({
        by: 'team',
        since: 0,
        until: clock.t + 1,
        provider: 'anthropic',
      });
      expect(anthropic.map((r) => [r.key, r.cost])).toEqual([['payments', 50]]);
    });

    it("admits a provider's committed spend as one more scope: its budget, its ledger, its kill switch", async () => {
      const viaBedrock = { ...alice, provider: 'bedrock' };
      const spec = { ceiling: 3_000, window: 'day' as const };
      const r = reservationOf(
        await store.admit({
          identity: viaBedrock,
          amount: 2_000,
          provider: 'bedrock',
          provision: { 'provider:bedrock': spec },
        }),
      );
      expect(await budget('provider:bedrock')).toMatchObject({ ceiling: 3_000, reserved: 2_000 });
      await store.settle(r.id, call(viaBedrock, { reserved: 2_000, cost: 1_500, provider: 'bedrock' }));
      const refused = await store.admit({
        identity: viaBedrock,
        amount: 2_000,
        provider: 'bedrock',
        provision: { 'provider:bedrock': spec },
      });
      expect(refused).toMatchObject({
        ok: false,
        refusal: { code: 'budget_exhausted', budget: { scope: 'provider:bedrock' } },
      });
      expect((await store.listLedger({ scope: 'provider:bedrock' })).map((e) => e.cost)).toEqual([1_500]);
      const rows = await store.spend({
        by: 'provider',
        since: 0,
        until: clock.t + 1,
        scope: 'provider:bedrock',
      });
      expect(rows.map((x) => [x.key, x.cost])).toEqual([['bedrock', 1_500]]);
      await store.setKill('provider:bedrock', { actor: 'oncall', reason: 'cloud incident' });
      expect(await store.admit({ identity: viaBedrock, amount: 1 })).toMatchObject({
        ok: false,
        refusal: { code: 'killed' },
      });
      expect(await store.admit({ identity: alice, amount: 1 })).toMatchObject({ ok: true });
    });

    it('sums spend over exactly the time range asked, by local day', async () => {
      clock.set('2024-06-09T21:59:00Z'); // 23:59 on June 9th in Berlin
      await admitAndSettle(alice, 1 * USD, 10);
      clock.set('2024-06-09T22:01:00Z'); // 00:01 on June 10th
      await admitAndSettle(alice, 1 * USD, 20);
      clock.set('2024-06-10T12:00:00Z');
      await admitAndSettle(alice, 1 * USD, 40);
      clock.set('2024-06-11T12:00:00Z');
      await admitAndSettle(alice, 1 * USD, 80);
      const all = { since: Date.parse('2024-06-01T00:00:00Z'), until: Date.parse('2024-07-01T00:00:00Z') };
      expect((await store.spend({ by: 'day', ...all })).map((r) => [r.key, r.cost])).toEqual([
        ['2024-06-11', 80],
        ['2024-06-10', 60],
        ['2024-06-09', 10],
      ]);
      const part = { since: Date.parse('2024-06-09T22:00:00Z'), until: Date.parse('2024-06-11T12:00:00Z') };
      expect((await store.spend({ by: 'team', ...part })).map((r) => [r.key, r.cost])).toEqual([
        ['payments', 60],
      ]);
      const noon = { since: Date.parse('2024-06-10T11:00:00Z'), until: Date.parse('2024-06-11T12:00:01Z') };
      expect((await store.spend({ by: 'day', ...noon })).map((r) => [r.key, r.cost])).toEqual([
        ['2024-06-11', 80],
        ['2024-06-10', 40],
      ]);
    });
  });

  describe('fail closed', () => {
    it('refuses to admit when a budget record is corrupt', async () => {
      await store.ensureBudget('team:payments');
      await harness.corruptCeiling(store, 'team:payments');
      await expect(store.admit({ identity: alice, amount: 1 })).rejects.toBeInstanceOf(
        EnforcementUnavailableError,
      );
      await expect(store.getBudget('team:payments')).rejects.toBeInstanceOf(EnforcementUnavailableError);
      await expect(store.admit({ identity: { ...alice, team: 'other' }, amount: 1 })).resolves.toMatchObject({
        ok: true,
      });
    });

    it('refuses only the calls a corrupt record concerns when asked for together', async () => {
      // Operations asked for at once may be committed together (the embedded group commit): the one
      // that cannot decide rejects alone and leaves nothing behind; the others take effect.
      const other: Identity = { ...alice, team: 'other' };
      const held = reservationOf(await store.admit({ identity: other, amount: 5 }));
      await store.ensureBudget('team:payments');
      await harness.corruptCeiling(store, 'team:payments');
      const [bad, good, settled] = await Promise.allSettled([
        // A new env: its budget would be created before the corrupt team budget is read.
        store.admit({ identity: { ...alice, env: 'staging' }, amount: 3 }),
        store.admit({ identity: other, amount: 2 }),
        store.settle(held.id, call(other, { cost: 4 })),
      ]);
      expect(bad.status === 'rejected' && bad.reason).toBeInstanceOf(EnforcementUnavailableError);
      expect(good.status === 'fulfilled' && good.value.ok).toBe(true);
      expect(settled.status === 'fulfilled' && settled.value.cost).toBe(4);
      // alice's failed admission reserved nothing on the budgets it shares with the others.
      expect(await store.getBudget('seat:alice')).toMatchObject({ reserved: 2, spent: 4 });
      expect(await store.getBudget('team:other')).toMatchObject({ reserved: 2, spent: 4 });
      expect(await store.getBudget('env:staging')).toBeUndefined();
      expect(await store.listLedger({ scope: 'team:payments' })).toEqual([]);
    });

    it('refuses promptly once the backend is gone', async () => {
      const doomed = await harness.openDoomed(storeOptions(clock));
      try {
        const r = reservationOf(await doomed.store.admit({ identity: alice, amount: 1 }));
        await doomed.cut();
        const started = Date.now();
        await expect(doomed.store.admit({ identity: alice, amount: 1 })).rejects.toBeInstanceOf(
          EnforcementUnavailableError,
        );
        await expect(doomed.store.settle(r.id, call(alice, { cost: 1 }))).rejects.toMatchObject({
          code: 'enforcement_unavailable',
        });
        await expect(doomed.store.killedBy(alice)).rejects.toBeInstanceOf(EnforcementUnavailableError);
        await expect(doomed.store.ping()).rejects.toBeInstanceOf(EnforcementUnavailableError);
        expect(Date.now() - started).toBeLessThan(3000);
      } finally {
        await doomed.store.close();
      }
    });
  });
}
