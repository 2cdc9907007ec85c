import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Identity } from '../../../runtime/identity.ts';
import type { Admission, LedgerInput, MoneyStore, Reservation } from '../../../runtime/store/port.ts';
import { type StoreHarness, storeOptions, TestClock, USD } from './contract.ts';

/**
 * The store half of budget leases, one contract for both backends: admit's `lease` grant and the
 * batched lease steps (`leaseOps`). The in-memory half is test/runtime/store/leases.test.ts.
 */
const alice: Identity = { team: 'payments', env: 'prod', seat: 'alice' };

function entry(cost: number, reserved: number, requestId = 'req_1'): LedgerInput {
  return {
    requestId,
    identity: alice,
    kind: 'model',
    name: 'claude-haiku-4-5',
    tokens: { input: 10, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 5 },
    reserved,
    cost,
    outcome: 'ok',
    latencyMs: 3,
  };
}

function held(a: Admission): Reservation {
  if (!a.ok) throw new Error(`refused: ${JSON.stringify(a.refusal)}`);
  return a.reservation;
}

export function leaseStoreContract(harness: StoreHarness): void {
  describe('budget leases (store steps)', () => {
    let clock: TestClock;
    let store: MoneyStore;
    beforeEach(async () => {
      clock = new TestClock();
      store = await harness.open(storeOptions(clock));
      await store.ensureBudget('team:payments', { ceiling: 1 * USD, window: 'day' });
    });
    afterEach(() => store.close());

    it.skipIf(harness.capped)(
      'grants up to upTo, no more than the room over share or half the unspent, never less than the call',
      async () => {
        const a = held(
          await store.admit({ identity: alice, amount: 1_000, lease: { upTo: 100_000, share: 4 } }),
        );
        expect(a.amount).toBe(100_000);
        const team = await store.getBudget('team:payments');
        expect(team).toMatchObject({ reserved: 100_000, spent: 0 });
        // Room is 900,000: a quarter is 225,000, above upTo → upTo.
        const b = held(
          await store.admit({ identity: alice, amount: 1_000, lease: { upTo: 800_000, share: 4 } }),
        );
        expect(b.amount).toBe(225_000);
        // Room 675,000 over share 1,000 is 675: below the call's amount → exactly the amount.
        const c = held(
          await store.admit({ identity: alice, amount: 5_000, lease: { upTo: 800_000, share: 1_000 } }),
        );
        expect(c.amount).toBe(5_000);
        // Slices hold at most half of what is unspent: 500,000 less the 330,000 reserved leaves 170,000.
        const d = held(
          await store.admit({ identity: alice, amount: 1_000, lease: { upTo: 800_000, share: 1 } }),
        );
        expect(d.amount).toBe(170_000);
        // At that cap a lease is the call alone, while the room is there for per-call admissions.
        const e = held(
          await store.admit({ identity: alice, amount: 2_000, lease: { upTo: 800_000, share: 1 } }),
        );
        expect(e.amount).toBe(2_000);
        const refused = await store.admit({
          identity: alice,
          amount: 700_000,
          lease: { upTo: 800_000, share: 1 },
        });
        expect(refused.ok).toBe(false);
      },
    );

    it('charges calls from a lease in one batch: spent moves, the lease holds less, one entry each', async () => {
      const lease = held(
        await store.admit({ identity: alice, amount: 1_000, lease: { upTo: 50_000, share: 1 } }),
      );
      const results = await store.leaseOps([
        { reservationId: lease.id, entry: entry(700, 1_000, 'req_a') },
        { reservationId: lease.id, entry: entry(0, 1_000, 'req_b') },
        { reservationId: lease.id, entry: entry(1_300, 1_000, 'req_c') },
      ]);
      expect(results.map((r) => r.held)).toEqual([49_300, 49_300, 48_000]);
      expect(results.every((r) => r.open)).toBe(true);
      expect(results[2]!.entry).toMatchObject({
        requestId: 'req_c',
        cost: 1_300,
        reserved: 1_000,
        overrun: 300,
      });
      expect(await store.getBudget('team:payments')).toMatchObject({ spent: 2_000, reserved: 48_000 });
      const ledger = await store.listLedger({ scope: 'team:payments' });
      expect(ledger.map((e) => e.requestId).sort()).toEqual(['req_a', 'req_b', 'req_c']);
      expect(ledger.every((e) => e.reservationId === lease.id)).toBe(true);
    });

    it('frees part, moves the expiry, and closes: what is left goes back to the budgets', async () => {
      const lease = held(
        await store.admit({ identity: alice, amount: 1_000, lease: { upTo: 50_000, share: 1 } }),
      );
      const [shrunk] = await store.leaseOps([
        { reservationId: lease.id, free: 30_000, expiresAt: clock.t + 600_000 },
      ]);
      expect(shrunk).toMatchObject({ held: 20_000, open: true });
      expect(await store.getBudget('team:payments')).toMatchObject({ reserved: 20_000, spent: 0 });
      // The old expiry passes: the lease was renewed, nothing is swept.
      clock.advance(120_000);
      expect(await store.sweepExpired()).toBe(0);
      const [closed] = await store.leaseOps([
        { reservationId: lease.id, entry: entry(400, 1_000), close: true },
      ]);
      expect(closed).toMatchObject({ held: 0, open: false });
      expect(await store.getBudget('team:payments')).toMatchObject({ reserved: 0, spent: 400 });
    });

    it('a returned or unknown lease still charges what it admitted, to the identity budgets', async () => {
      const lease = held(
        await store.admit({ identity: alice, amount: 1_000, lease: { upTo: 10_000, share: 1 } }),
      );
      await store.leaseOps([{ reservationId: lease.id, close: true }]);
      const [late] = await store.leaseOps([{ reservationId: lease.id, entry: entry(900, 1_000, 'late') }]);
      expect(late).toMatchObject({ open: false, entry: { requestId: 'late', cost: 900 } });
      const [unknown] = await store.leaseOps([
        { reservationId: 'res_unknown', entry: entry(100, 100, 'lost') },
      ]);
      expect(unknown!.entry).toMatchObject({ cost: 100 });
      expect(await store.getBudget('team:payments')).toMatchObject({ spent: 1_000, reserved: 0 });
      expect(await store.getBudget('global')).toMatchObject({ spent: 1_000, reserved: 0 });
    });

    it('an expired lease is charged everything it held; a late step changes nothing', async () => {
      const lease = held(
        await store.admit({ identity: alice, amount: 1_000, lease: { upTo: 40_000, share: 1 } }),
      );
      await store.leaseOps([{ reservationId: lease.id, entry: entry(2_000, 1_000) }]);
      clock.advance(61_000);
      expect(await store.sweepExpired()).toBe(1);
      expect(await store.getBudget('team:payments')).toMatchObject({ spent: 40_000, reserved: 0 });
      const [late] = await store.leaseOps([{ reservationId: lease.id, entry: entry(500, 1_000, 'late') }]);
      expect(late).toMatchObject({ open: false, held: 0, entry: { outcome: 'expired', cost: 38_000 } });
      expect(await store.getBudget('team:payments')).toMatchObject({ spent: 40_000, reserved: 0 });
    });

    it('charges a call once however often its step is sent: open, then closed', async () => {
      const lease = held(
        await store.admit({ identity: alice, amount: 1_000, lease: { upTo: 50_000, share: 1 } }),
      );
      const batch = [
        { reservationId: lease.id, call: '1', entry: { ...entry(700, 1_000, 'req_a'), id: 'led_a', at: 5 } },
        { reservationId: lease.id, call: '2', entry: { ...entry(300, 1_000, 'req_b'), id: 'led_b', at: 6 } },
      ];
      const first = await store.leaseOps(batch);
      expect(first.map((r) => r.repeated ?? false)).toEqual([false, false]);
      // The same batch again (its reply was lost): nothing more is charged or written.
      const again = await store.leaseOps(batch);
      expect(again.map((r) => r.repeated)).toEqual([true, true]);
      expect(again[1]).toMatchObject({ open: true, held: 49_000, entry: { id: 'led_b', cost: 300 } });
      expect(await store.getBudget('team:payments')).toMatchObject({ spent: 1_000, reserved: 49_000 });
      // A new call and the close in the same batch as a repeat, then the whole batch once more.
      const last = [
        batch[0]!,
        { reservationId: lease.id, call: '3', entry: entry(100, 1_000, 'req_c') },
        { reservationId: lease.id, close: true },
      ];
      await store.leaseOps(last);
      await store.leaseOps(last);
      expect(await store.getBudget('team:payments')).toMatchObject({ spent: 1_100, reserved: 0 });
      const ledger = await store.listLedger();
      expect(ledger.map((e) => e.requestId).sort()).toEqual(['req_a', 'req_b', 'req_c']);
      // The day's rollup and the ledger's indexes count each call once too.
      const [row] = await store.spend({ by: 'team', since: 0, until: clock.t + 1 });
      expect(row).toMatchObject({ key: 'payments', cost: 1_100, calls: 3 });
      expect(row!.tokens).toMatchObject({ input: 30, output: 15 });
      expect(await store.listLedger({ scope: 'seat:alice' })).toHaveLength(3);
    });

    it('charges calls once whatever their order, with holes, and calls not named by a number', async () => {
      const lease = held(
        await store.admit({ identity: alice, amount: 1_000, lease: { upTo: 50_000, share: 1 } }),
      );
      const step = (call: string) => ({
        reservationId: lease.id,
        call,
        entry: { ...entry(10, 1_000, `req_${call}`), id: `led_${call}`, at: 5 },
      });
      // Out of order, a hole at 4 and 8, names that are not numbers (a sign, a leading zero, a word,
      // a number too long to be one): each batch repeats some of the ones before.
      const batches = [
        ['5', '3', '1'],
        ['2', '3', '7', '01', 'x'],
        ['1', '2', '3', '5', '6', '9', '01', '-1', '1234567890123456'],
        ['9', '7', 'x', '-1', '1234567890123456', '10', '0'],
        ['5', '3', '1', '2', '6', '7', '9', '10', '0', '01', 'x', '-1', '1234567890123456'],
      ];
      const repeatedPerBatch: number[] = [];
      for (const calls of batches) {
        const replies = await store.leaseOps(calls.map(step));
        repeatedPerBatch.push(replies.filter((r) => r.repeated).length);
      }
      expect(repeatedPerBatch).toEqual([0, 1, 5, 5, 13]);
      const charged = [...new Set(batches.flat())];
      expect(await store.getBudget('team:payments')).toMatchObject({ spent: 10 * charged.length });
      const ledger = await store.listLedger({ limit: 100 });
      expect(ledger.map((e) => e.id).sort()).toEqual(charged.map((c) => `led_${c}`).sort());
    });

    it('charges a call sent twice in one batch once, and reads back a batch of 1,200 entries', async () => {
      const lease = held(
        await store.admit({ identity: alice, amount: 1_000, lease: { upTo: 400_000, share: 1 } }),
      );
      const n = 1_200; // more entries than one stream entry packs, more calls than one SMISMEMBER takes
      const batch = Array.from({ length: n }, (_, i) => ({
        reservationId: lease.id,
        call: String(i),
        entry: { ...entry(100 + (i % 100), 1_000, `req_${i}`), id: `led_${i}`, at: 10 + i },
      }));
      const replies = await store.leaseOps([...batch, batch[7]!]);
      expect(replies.filter((r) => r.repeated)).toHaveLength(1);
      expect(replies[n]).toMatchObject({ repeated: true });
      const cost = 100 * n + 12 * ((100 * 99) / 2);
      expect(await store.getBudget('team:payments')).toMatchObject({
        spent: cost,
        reserved: lease.amount - cost,
      });
      const newest = await store.listLedger({ limit: 3 });
      expect(newest.map((e) => e.id)).toEqual(['led_1199', 'led_1198', 'led_1197']);
      const all = await store.listLedger({ scope: 'seat:alice', limit: 5_000 });
      expect(all).toHaveLength(n);
      expect(new Set(all.map((e) => e.id)).size).toBe(n);
      expect(all.at(-1)).toMatchObject({ id: 'led_0', cost: 100, requestId: 'req_0' });
      expect(await store.listLedger({ since: 510, until: 512 })).toMatchObject([
        { id: 'led_501' },
        { id: 'led_500' },
      ]);
      const [row] = await store.spend({ by: 'seat', since: 0, until: clock.t + 1 });
      expect(row).toMatchObject({
        key: 'alice',
        cost,
        calls: n,
        tokens: { input: 10 * n, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 5 * n },
      });
    });

    it('charges one batch of equal calls on many identities, every budget once', async () => {
      // Eight seats on four teams, each on its own lease, each call costing the same: their
      // budgets (more than one identity's worth) share a window and the same sums.
      const seats = Array.from({ length: 8 }, (_, i) => ({
        team: `team${i % 4}`,
        env: 'prod',
        seat: `seat${i}`,
      }));
      for (let t = 0; t < 4; t++)
        await store.ensureBudget(`team:team${t}`, { ceiling: 1 * USD, window: 'day' });
      const leases: Reservation[] = [];
      for (const identity of seats) {
        leases.push(held(await store.admit({ identity, amount: 1_000, lease: { upTo: 10_000, share: 1 } })));
      }
      const replies = await store.leaseOps(
        seats.map((identity, i) => ({
          reservationId: leases[i]!.id,
          call: '0',
          entry: { ...entry(700, 1_000, `req_${i}`), identity, id: `led_${i}`, at: 10 + i },
        })),
      );
      expect(replies.every((r) => r.entry && !r.repeated)).toBe(true);
      for (let t = 0; t < 4; t++) {
        expect(await store.getBudget(`team:team${t}`)).toMatchObject({ spent: 1_400, reserved: 18_600 });
      }
      expect(await store.getBudget('global')).toMatchObject({ spent: 5_600 });
      for (const s of seats) {
        expect(await store.getBudget(`seat:${s.seat}`)).toMatchObject({ spent: 700, reserved: 9_300 });
      }
      expect(await store.listLedger({ limit: 20 })).toHaveLength(8);
    });

    it('keeps the replicas alive by their last beat (which reads the kill switches), drops one that leaves', async () => {
      await store.replicaBeat('rep_a', 1_000);
      await store.replicaBeat('rep_b', 5_000);
      await store.replicaBeat('rep_a', 6_000);
      expect((await store.replicasSince(0)).sort()).toEqual(['rep_a', 'rep_b']);
      expect(await store.replicasSince(5_500)).toEqual(['rep_a']);
      await store.replicaLeave('rep_a');
      expect(await store.replicasSince(0)).toEqual(['rep_b']);
      // A beat reads the kill switches in the same step.
      await store.setKill('team:payments', { actor: 'oncall@acme', reason: 'runaway loop' });
      expect(await store.replicaBeat('rep_b', 7_000)).toMatchObject([{ scope: 'team:payments' }]);
    });

    it('checks its input before anything is written', async () => {
      await expect(store.leaseOps([{ reservationId: '' }])).rejects.toThrow(/reservationId/);
      await expect(
        store.admit({ identity: alice, amount: 1, lease: { upTo: 10, share: 0 } }),
      ).rejects.toThrow(/share/);
    });
  });
}
