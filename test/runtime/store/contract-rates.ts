import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Identity } from '../../../runtime/identity.ts';
import {
  type Admission,
  type LedgerInput,
  type MoneyStore,
  type RateCharge,
  StoreInputError,
} from '../../../runtime/store/port.ts';
import { type StoreHarness, storeOptions, TestClock } from './contract.ts';

/**
 * Rate limits as budgets of other units, held to one contract on both backends: admitted in the
 * same atomic step as the money, settled to the units used, freed on release, zero overshoot.
 */

const bob: Identity = { team: 'payments', env: 'prod', seat: 'bob', keyId: 'key_bob' };
const perMinute = (limit: number, over: Partial<RateCharge> = {}): RateCharge => ({
  scope: 'team:payments',
  unit: 'requests',
  window: '1m',
  limit,
  amount: 1,
  ...over,
});

function entry(over: Partial<LedgerInput> = {}): LedgerInput {
  return {
    requestId: 'req_r',
    identity: bob,
    kind: 'model',
    name: 'claude-sonnet-4-5',
    tokens: { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 },
    reserved: 1000,
    cost: 0,
    outcome: 'ok',
    latencyMs: 3,
    ...over,
  };
}

const idOf = (a: Admission) => {
  if (!a.ok) throw new Error(`expected an admission, got ${JSON.stringify(a.refusal)}`);
  return a.reservation.id;
};

export function rateLimitContract(harness: StoreHarness): void {
  let clock: TestClock;
  let store: MoneyStore;
  const admit = (rates: RateCharge[], amount = 1000) => store.admit({ identity: bob, amount, rates });
  const rateBudget = async (scope: string, unit: string) => {
    const b = (await store.listBudgets({ rates: true })).find((x) => x.scope === scope && x.unit === unit);
    if (!b) throw new Error(`no rate budget ${scope} ${unit}`);
    return b;
  };

  beforeEach(async () => {
    clock = new TestClock(Date.parse('2024-06-10T10:00:01Z'));
    store = await harness.open(storeOptions(clock));
  });
  afterEach(async () => {
    await store.close();
  });

  describe('rate limits', () => {
    it('refuses the 61st request of a minute with a retry time, and admits again once the window moves past it', async () => {
      const limit = [perMinute(60)];
      for (let i = 0; i < 60; i++) {
        await store.settle(
          idOf(await admit(limit)),
          entry({ cost: 10, tokens: { ...entry().tokens, input: 5 } }),
        );
        clock.advance(100);
      }
      const refused = await admit(limit);
      if (refused.ok || refused.refusal.code !== 'rate_limited') throw new Error('expected rate_limited');
      const { budget, amount, retryAt } = refused.refusal;
      expect(budget).toMatchObject({ scope: 'team:payments', unit: 'requests', ceiling: 60, spent: 60 });
      expect(amount).toBe(1);
      // The oldest requests leave the rolling minute at most one bucket (2.5 s) after 60 s.
      expect(retryAt).toBeGreaterThan(clock.t);
      expect(retryAt! - Date.parse('2024-06-10T10:00:01Z')).toBeGreaterThanOrEqual(60_000);
      expect(retryAt! - Date.parse('2024-06-10T10:00:01Z')).toBeLessThanOrEqual(62_500);
      clock.t = retryAt! - 1;
      expect((await admit(limit)).ok).toBe(false);
      clock.t = retryAt!;
      expect((await admit(limit)).ok).toBe(true);
      // Nothing reserved on the money side by the refusals.
      expect((await store.getBudget('team:payments'))?.reserved).toBe(1000);
    });

    it('admits exactly the limit out of 200 concurrent admissions', async () => {
      const results = await Promise.all(Array.from({ length: 200 }, () => admit([perMinute(60)])));
      expect(results.filter((a) => a.ok)).toHaveLength(60);
      const codes = new Set(results.filter((a) => !a.ok).map((a) => (a.ok ? '' : a.refusal.code)));
      expect(codes).toEqual(new Set(['rate_limited']));
      expect(await rateBudget('team:payments', 'requests')).toMatchObject({ reserved: 60, spent: 0 });
      expect((await store.getBudget('team:payments'))?.reserved).toBe(60 * 1000);
    });

    it('counts calls in flight: a concurrent-calls limit frees on settle and on release, and spends nothing', async () => {
      const two = [perMinute(2, { unit: 'concurrent', scope: 'key:key_bob' })];
      const a = idOf(await admit(two));
      const b = idOf(await admit(two));
      const third = await admit(two);
      if (third.ok || third.refusal.code !== 'rate_limited') throw new Error('expected rate_limited');
      // Only a finishing call frees a slot: no time to wait for.
      expect(third.refusal.retryAt).toBeNull();
      await store.settle(a, entry({ cost: 5 }));
      const c = idOf(await admit(two));
      await store.release(b, entry({ outcome: 'error' }));
      idOf(await admit(two));
      expect((await admit(two)).ok).toBe(false);
      expect(await rateBudget('key:key_bob', 'concurrent')).toMatchObject({ spent: 0, reserved: 2 });
      await store.release(c, entry({ outcome: 'error' }));
      expect(await rateBudget('key:key_bob', 'concurrent')).toMatchObject({ spent: 0, reserved: 1 });
    });

    it('settles token limits to the tokens used: input and cache writes in, cache reads not; output', async () => {
      const rates = [
        perMinute(10_000, { unit: 'input_tokens', amount: 5_000 }),
        perMinute(8_000, { unit: 'output_tokens', amount: 4_000, scope: 'model:claude-sonnet-4-5' }),
      ];
      const id = idOf(await admit(rates));
      expect(await rateBudget('team:payments', 'input_tokens')).toMatchObject({ reserved: 5_000, spent: 0 });
      const tokens = { input: 1_000, cacheWrite5m: 150, cacheWrite1h: 50, cacheRead: 4_000, output: 70 };
      await store.settle(id, entry({ tokens, cost: 100 }));
      expect(await rateBudget('team:payments', 'input_tokens')).toMatchObject({ reserved: 0, spent: 1_200 });
      expect(await rateBudget('model:claude-sonnet-4-5', 'output_tokens')).toMatchObject({
        reserved: 0,
        spent: 70,
      });
      // A second settle of the same reservation changes nothing.
      await store.settle(id, entry({ tokens, cost: 100 }));
      expect(await rateBudget('team:payments', 'input_tokens')).toMatchObject({ spent: 1_200 });
    });

    it('refuses a call that asks for more than the limit itself, with no time to retry at', async () => {
      const a = await admit([perMinute(1_000, { unit: 'output_tokens', amount: 4_096 })]);
      if (a.ok || a.refusal.code !== 'rate_limited') throw new Error('expected rate_limited');
      expect(a.refusal.retryAt).toBeNull();
    });

    it('is all or nothing with the money: a budget refusal reserves no units, a rate refusal no money', async () => {
      await store.ensureBudget('team:payments', { ceiling: 5_000, window: 'day' });
      const refusedByMoney = await admit([perMinute(10)], 6_000);
      expect(refusedByMoney.ok ? '' : refusedByMoney.refusal.code).toBe('budget_exhausted');
      expect(await store.listBudgets({ rates: true })).toEqual([]);
      const full = [perMinute(0)];
      const refusedByRate = await admit(full, 1_000);
      expect(refusedByRate.ok ? '' : refusedByRate.refusal.code).toBe('rate_limited');
      expect((await store.getBudget('team:payments'))?.reserved).toBe(0);
      expect(await rateBudget('team:payments', 'requests')).toMatchObject({ reserved: 0, ceiling: 0 });
    });

    it('keeps rate budgets apart from money budgets: no money budget for a key or model scope', async () => {
      idOf(
        await admit([perMinute(5, { scope: 'key:key_bob' }), perMinute(5, { scope: 'model:claude-opus-5' })]),
      );
      const money = (await store.listBudgets()).map((b) => b.scope).sort();
      expect(money).toEqual(['env:prod', 'global', 'seat:bob', 'team:payments']);
      expect(money.every((s) => !s.includes('#'))).toBe(true);
      const rates = (await store.listBudgets({ rates: true })).map((b) => `${b.scope} ${b.unit} ${b.window}`);
      expect(rates.sort()).toEqual(['key:key_bob requests 1m', 'model:claude-opus-5 requests 1m']);
      expect((await store.getBudget('team:payments'))?.unit).toBeUndefined();
    });

    it('enforces a changed limit on the next call', async () => {
      for (let i = 0; i < 3; i++) idOf(await admit([perMinute(5)]));
      expect((await admit([perMinute(3)])).ok).toBe(false);
      expect((await admit([perMinute(4)])).ok).toBe(true);
      expect(await rateBudget('team:payments', 'requests')).toMatchObject({ ceiling: 4, reserved: 4 });
    });

    it('charges an expired reservation the units it reserved, but frees its concurrent slot', async () => {
      const rates = [
        perMinute(100, { unit: 'output_tokens', amount: 40 }),
        perMinute(1, { unit: 'concurrent', scope: 'seat:bob' }),
      ];
      idOf(await admit(rates));
      clock.advance(60_001);
      await store.sweepExpired();
      expect(await rateBudget('team:payments', 'output_tokens')).toMatchObject({ spent: 40, reserved: 0 });
      expect(await rateBudget('seat:bob', 'concurrent')).toMatchObject({ spent: 0, reserved: 0 });
      expect((await admit(rates)).ok).toBe(true);
    });

    it('rejects rate charges that are not what a rate limit can be, naming the field', async () => {
      const bad: [Partial<RateCharge>, RegExp][] = [
        [{ scope: 'team' }, /rates\[0\]\.scope/],
        [{ scope: 'planet:mars' }, /rates\[0\]\.scope/],
        [{ unit: 'dollars' as never }, /rates\[0\]\.unit/],
        [{ window: 'day' }, /rates\[0\]\.window/],
        [{ limit: -1 }, /rates\[0\]\.limit/],
        [{ amount: 1.5 }, /rates\[0\]\.amount/],
      ];
      for (const [over, message] of bad) {
        const err = await admit([perMinute(5, over)]).catch((e) => e);
        expect(err).toBeInstanceOf(StoreInputError);
        expect(err.message).toMatch(message);
      }
    });
  });
}
