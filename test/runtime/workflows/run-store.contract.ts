import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JournalEntry, RunRecord, RunState, RunStore } from '../../../runtime/store/runs.ts';

/** One store under test, fresh and empty for each test. */
export interface RunStoreHarness {
  store: RunStore;
  /** A lease the harness can outlive with `lapse`: short for real clocks, anything for fake ones. */
  leaseMs: number;
  /** Lets `ms` pass for leases: advances an injected clock, or really waits. */
  lapse(ms: number): Promise<void>;
  /** Another store on the same backend (its own connection where the backend has them). */
  peer(): Promise<RunStore>;
  /** Closes the store and every peer, and drops what they held. */
  close(): Promise<void>;
}

const T0 = 1_700_000_000_000;

export function runRecord(id: string, over: Partial<RunRecord> = {}): RunRecord {
  const startedAt = over.startedAt ?? T0;
  return {
    id,
    workflow: 'triage',
    version: '1',
    identity: { team: 'payments', env: 'prod', seat: 'alice', workflow: 'triage', run: id },
    input: { ticket: 'T-1' },
    state: 'running',
    limits: { spend: 2_000_000, time: 60_000, steps: 20 },
    steps: 0,
    startedAt,
    clockStart: startedAt,
    updatedAt: startedAt,
    suspensions: 0,
    grants: [],
    ...over,
  };
}

function entry(key: string, over: Partial<JournalEntry> = {}): JournalEntry {
  return { key, kind: 'model', name: 'claude-haiku', result: { text: `answer ${key}` }, at: T0, ...over };
}

/** Ids that sort the same bytewise and by locale, so ties order alike in every store. */
const rid = (n: number) => `r_${String(n).padStart(4, '0')}`;

export function runStoreContract(name: string, open: () => Promise<RunStoreHarness>): void {
  describe(`${name}: run store contract`, () => {
    let h: RunStoreHarness;
    let store: RunStore;
    beforeEach(async () => {
      h = await open();
      store = h.store;
    });
    afterEach(() => h.close());

    async function listAll(filter: Parameters<RunStore['list']>[0] = {}, limit = 7): Promise<string[]> {
      const ids: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; ; pages++) {
        if (pages > 1_000) throw new Error('paging does not end');
        const page = await store.list({ ...filter, limit, cursor });
        expect(page.runs.length).toBeLessThanOrEqual(limit);
        ids.push(...page.runs.map((r) => r.id));
        if (!page.next) return ids;
        expect(page.runs).toHaveLength(limit);
        cursor = page.next;
      }
    }

    describe('records', () => {
      it('returns a saved run exactly as it was saved, snapshot and unicode included', async () => {
        const run = runRecord('r_unicode', {
          state: 'suspended',
          reason: 'spend_box',
          detail: { spent: 1_999_999, ceiling: 2_000_000, note: 'naïve café — 日本語 🚦' },
          input: { ticket: 'Ünïcödé ✓', nested: { list: [1, 'two', { three: null }], empty: {} } },
          snapshot: {
            status: 'active',
            value: { triage: 'waitingForTool' },
            context: { messages: [{ role: 'user', content: 'héllo 👋' }], n: 0.5, flag: false },
            children: {},
          },
          steps: 3,
          suspensions: 1,
          grants: ['tool:abc', 'deny:tool:def'],
          output: ['∑', { '🔑': '値' }],
          error: 'boom: «quoted»',
          endedAt: T0 + 5,
        });
        await store.save(run);
        expect(await store.get('r_unicode')).toEqual(run);
      });

      it('has no run for an unknown id', async () => {
        expect(await store.get('r_missing')).toBeUndefined();
      });

      it('replaces the record on save, moving it between the state lists', async () => {
        await store.save(runRecord('r_1'));
        const suspended = runRecord('r_1', { state: 'suspended', reason: 'approval_required', steps: 4 });
        await store.save(suspended);
        expect(await store.get('r_1')).toEqual(suspended);
        expect((await store.list({ state: 'running' })).runs).toEqual([]);
        expect((await store.list({ state: 'suspended' })).runs.map((r) => r.id)).toEqual(['r_1']);
        expect((await store.list()).runs.map((r) => r.id)).toEqual(['r_1']);
        const counts = await store.counts();
        expect(counts.running).toBe(0);
        expect(counts.suspended).toBe(1);
      });

      it('lets a second store on the same backend read what the first saved', async () => {
        const peer = await h.peer();
        const run = runRecord('r_shared', { snapshot: { value: 'x' } });
        await store.save(run);
        expect(await peer.get('r_shared')).toEqual(run);
      });
    });

    describe('list', () => {
      it('lists newest started first, as summaries without snapshot or input', async () => {
        await store.save(runRecord('r_old', { startedAt: T0 }));
        await store.save(runRecord('r_new', { startedAt: T0 + 2_000 }));
        await store.save(runRecord('r_mid', { startedAt: T0 + 1_000, snapshot: { big: 'x'.repeat(100) } }));
        const { runs, next } = await store.list();
        expect(runs.map((r) => r.id)).toEqual(['r_new', 'r_mid', 'r_old']);
        expect(next).toBeUndefined();
        for (const r of runs) {
          expect(r).not.toHaveProperty('snapshot');
          expect(r).not.toHaveProperty('input');
        }
        const { snapshot: _s, input: _i, ...mid } = runRecord('r_mid', { startedAt: T0 + 1_000 });
        expect(runs[1]).toEqual(mid);
      });

      it('lists nothing from an empty store', async () => {
        expect(await store.list()).toEqual({ runs: [] });
        expect(await store.list({ state: 'suspended', workflow: 'w', team: 't' })).toEqual({ runs: [] });
      });

      it('filters by workflow, state and team, alone and combined', async () => {
        const spec: [string, string, RunState, string][] = [
          [rid(1), 'triage', 'running', 'payments'],
          [rid(2), 'triage', 'suspended', 'payments'],
          [rid(3), 'triage', 'suspended', 'search'],
          [rid(4), 'refunds', 'suspended', 'payments'],
          [rid(5), 'refunds', 'done', 'search'],
          [rid(6), 'triage', 'suspended', 'payments'],
        ];
        for (const [id, workflow, state, team] of spec) {
          const run = runRecord(id, { workflow, state, startedAt: T0 + Number(id.slice(2)) });
          run.identity = { ...run.identity, team, workflow };
          await store.save(run);
        }
        const ids = async (f: Parameters<RunStore['list']>[0]) => (await store.list(f)).runs.map((r) => r.id);
        expect(await ids({ workflow: 'triage' })).toEqual([rid(6), rid(3), rid(2), rid(1)]);
        expect(await ids({ state: 'suspended' })).toEqual([rid(6), rid(4), rid(3), rid(2)]);
        expect(await ids({ team: 'search' })).toEqual([rid(5), rid(3)]);
        expect(await ids({ workflow: 'triage', state: 'suspended' })).toEqual([rid(6), rid(3), rid(2)]);
        expect(await ids({ workflow: 'triage', state: 'suspended', team: 'payments' })).toEqual([
          rid(6),
          rid(2),
        ]);
        expect(await ids({ workflow: 'refunds', team: 'search' })).toEqual([rid(5)]);
        expect(await ids({ state: 'killed' })).toEqual([]);
        expect(await ids({ workflow: 'nope' })).toEqual([]);
      });

      it('pages with limit and cursor, covering every run exactly once, ties included', async () => {
        const expected: string[] = [];
        for (let i = 0; i < 23; i++) {
          // Groups of three share a start time: ties order by id, newest id first.
          await store.save(runRecord(rid(i), { startedAt: T0 + Math.floor(i / 3) * 1_000 }));
          expected.unshift(rid(i));
        }
        expect(await listAll({}, 5)).toEqual(expected);
        expect(await listAll({}, 1)).toEqual(expected);
        expect(await listAll({}, 23)).toEqual(expected);
        expect(await listAll({}, 1_000)).toEqual(expected);
        const first = await store.list({ limit: 23 });
        expect(first.next).toBeUndefined();
        const second = await store.list({ limit: 22 });
        expect(second.next).toBeDefined();
        expect((await store.list({ limit: 22, cursor: second.next })).runs.map((r) => r.id)).toEqual([
          rid(0),
        ]);
      });

      it('pages through filtered lists exactly once', async () => {
        const expected: Record<string, string[]> = { payments: [], search: [] };
        for (let i = 0; i < 40; i++) {
          const team = i % 3 === 0 ? 'search' : 'payments';
          const state: RunState = i % 2 ? 'suspended' : 'running';
          const run = runRecord(rid(i), { state, startedAt: T0 + Math.floor(i / 4) * 1_000 });
          run.identity = { ...run.identity, team };
          await store.save(run);
          if (state === 'suspended') expected[team]!.unshift(rid(i));
        }
        expect(await listAll({ state: 'suspended', team: 'search' }, 2)).toEqual(expected.search);
        expect(await listAll({ state: 'suspended', team: 'payments' }, 3)).toEqual(expected.payments);
        expect((await listAll({ team: 'search' }, 4)).length).toBe(14);
        expect((await listAll({ state: 'running' }, 6)).length).toBe(20);
      });

      it('returns 50 by default and at most 1,000', async () => {
        for (let i = 0; i < 55; i++) await store.save(runRecord(rid(i), { startedAt: T0 + i }));
        const page = await store.list();
        expect(page.runs).toHaveLength(50);
        expect(page.runs[0]!.id).toBe(rid(54));
        expect(page.next).toBeDefined();
        const rest = await store.list({ cursor: page.next });
        expect(rest.runs.map((r) => r.id)).toEqual([rid(4), rid(3), rid(2), rid(1), rid(0)]);
        expect(rest.next).toBeUndefined();
        expect((await store.list({ limit: 5_000 })).runs).toHaveLength(55);
        expect((await store.list({ limit: 0 })).runs).toHaveLength(1);
      });

      it('counts runs by state, every state present', async () => {
        expect(await store.counts()).toEqual({
          running: 0,
          suspended: 0,
          done: 0,
          failed: 0,
          killed: 0,
          denied: 0,
          expired: 0,
        });
        await store.save(runRecord('r_1', { state: 'suspended' }));
        await store.save(runRecord('r_2', { state: 'suspended' }));
        await store.save(runRecord('r_3', { state: 'done' }));
        await store.save(runRecord('r_4'));
        await store.save(runRecord('r_4', { state: 'killed' }));
        expect(await store.counts()).toEqual({
          running: 0,
          suspended: 2,
          done: 1,
          failed: 0,
          killed: 1,
          denied: 0,
          expired: 0,
        });
      });
    });

    describe('journal', () => {
      it('keeps entries in the order they were appended', async () => {
        const entries = [
          entry('z-model', { ledgerId: 'l_1' }),
          entry('a-tool', { kind: 'tool', name: 'lookup', result: { rows: ['ü', 2] } }),
          entry('m-model', { result: 'plain 🚦 string', at: T0 + 9 }),
        ];
        for (const e of entries) await store.appendJournal('r_1', e);
        expect(await store.journal('r_1')).toEqual(entries);
      });

      it('keeps the first of two appends with the same key', async () => {
        await store.appendJournal('r_1', entry('k1', { result: 'first' }));
        await store.appendJournal('r_1', entry('k2'));
        await store.appendJournal('r_1', entry('k1', { result: 'second' }));
        const journal = await store.journal('r_1');
        expect(journal.map((e) => [e.key, e.result])).toEqual([
          ['k1', 'first'],
          ['k2', { text: 'answer k2' }],
        ]);
      });

      it('keeps each run its own journal', async () => {
        await store.appendJournal('r_1', entry('k1'));
        await store.appendJournal('r_2', entry('k1', { result: 'other run' }));
        expect((await store.journal('r_1'))[0]!.result).toEqual({ text: 'answer k1' });
        expect((await store.journal('r_2'))[0]!.result).toBe('other run');
      });

      it('has an empty journal for an unknown run', async () => {
        expect(await store.journal('r_missing')).toEqual([]);
      });

      it('measures a run in bytes that grow with its journal', async () => {
        await store.save(runRecord('r_1'));
        const bare = await store.sizeOf('r_1');
        expect(bare).toBeGreaterThanOrEqual(Buffer.byteLength(JSON.stringify(runRecord('r_1'))));
        await store.appendJournal('r_1', entry('k1', { result: { text: 'x'.repeat(1_000) } }));
        const one = await store.sizeOf('r_1');
        expect(one).toBeGreaterThan(bare + 1_000);
        await store.appendJournal('r_1', entry('k1', { result: { text: 'y'.repeat(5_000) } }));
        expect(await store.sizeOf('r_1')).toBe(one);
        await store.appendJournal('r_1', entry('k2'));
        expect(await store.sizeOf('r_1')).toBeGreaterThan(one);
      });
    });

    describe('leases', () => {
      it('refuses a second owner while the lease is live and lets it in once it lapses', async () => {
        expect(await store.claim('r_1', 'a', h.leaseMs)).toBe(true);
        expect(await store.claim('r_1', 'a', h.leaseMs)).toBe(true);
        expect(await store.claim('r_1', 'b', h.leaseMs)).toBe(false);
        expect(await store.claim('r_2', 'b', h.leaseMs)).toBe(true);
        await h.lapse(h.leaseMs * 1.5);
        expect(await store.claim('r_1', 'b', h.leaseMs)).toBe(true);
        expect(await store.claim('r_1', 'a', h.leaseMs)).toBe(false);
      });

      it('extends the leases renewed and returns the ids the owner no longer holds', async () => {
        expect(await store.claim('r_1', 'a', h.leaseMs)).toBe(true);
        expect(await store.claim('r_2', 'a', h.leaseMs)).toBe(true);
        expect(await store.claim('r_3', 'b', h.leaseMs)).toBe(true);
        await h.lapse(h.leaseMs * 0.6);
        expect(await store.renew('a', ['r_1', 'r_2', 'r_3', 'r_never'], h.leaseMs)).toEqual([
          'r_3',
          'r_never',
        ]);
        await h.lapse(h.leaseMs * 0.6);
        // Past the first lease, within the renewed one.
        expect(await store.claim('r_1', 'b', h.leaseMs)).toBe(false);
        expect(await store.claim('r_3', 'a', h.leaseMs)).toBe(true);
        expect(await store.renew('b', ['r_3'], h.leaseMs)).toEqual(['r_3']);
        expect(await store.renew('a', [], h.leaseMs)).toEqual([]);
      });

      it('renews a lapsed lease nobody else took, and not one somebody did', async () => {
        expect(await store.claim('r_1', 'a', h.leaseMs)).toBe(true);
        expect(await store.claim('r_2', 'a', h.leaseMs)).toBe(true);
        await h.lapse(h.leaseMs * 1.5);
        expect(await store.claim('r_2', 'b', h.leaseMs)).toBe(true);
        expect(await store.renew('a', ['r_1', 'r_2'], h.leaseMs)).toEqual(['r_2']);
        expect(await store.claim('r_1', 'b', h.leaseMs)).toBe(false);
      });

      it('lets only the holder unclaim', async () => {
        expect(await store.claim('r_1', 'a', h.leaseMs)).toBe(true);
        await store.unclaim('r_1', 'b');
        expect(await store.claim('r_1', 'b', h.leaseMs)).toBe(false);
        await store.unclaim('r_1', 'a');
        expect(await store.renew('a', ['r_1'], h.leaseMs)).toEqual(['r_1']);
        expect(await store.claim('r_1', 'b', h.leaseMs)).toBe(true);
        await store.unclaim('r_missing', 'a');
      });

      it('gives a contested run to exactly one of two stores racing for it, every time', async () => {
        const peer = await h.peer();
        const lease = 60_000;
        const wins = { first: 0, second: 0 };
        for (let i = 0; i < 50; i++) {
          const [x, y] = i % 2 ? [store, peer] : [peer, store];
          const [a, b] = await Promise.all([
            x.claim('r_race', `a${i}`, lease),
            y.claim('r_race', `b${i}`, lease),
          ]);
          expect([a, b].filter(Boolean)).toHaveLength(1);
          const [winner, owner] = a ? [x, `a${i}`] : [y, `b${i}`];
          wins[winner === store ? 'first' : 'second']++;
          expect(await (winner === store ? peer : store).claim('r_race', `c${i}`, lease)).toBe(false);
          await winner.unclaim('r_race', owner);
        }
        expect(wins.first + wins.second).toBe(50);
      });
    });

    describe('workflow prefixes', () => {
      it('keeps the first hash recorded for a workflow version', async () => {
        expect(await store.recordPrefix('triage', '1', 'h1')).toBe('h1');
        expect(await store.recordPrefix('triage', '1', 'h2')).toBe('h1');
        expect(await store.recordPrefix('triage', '2', 'h2')).toBe('h2');
        expect(await store.recordPrefix('refunds', '1', 'h3')).toBe('h3');
        const peer = await h.peer();
        expect(await peer.recordPrefix('triage', '1', 'h4')).toBe('h1');
      });
    });
  });
}
