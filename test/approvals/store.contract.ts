import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  APPROVAL_STATES,
  type ApprovalChange,
  ApprovalConflictError,
  type ApprovalItem,
  ApprovalNotFoundError,
  type ApprovalState,
  type ApprovalStore,
  type Decision,
  type DecisionAction,
} from '../../runtime/store/approvals.ts';

/** One store under test, fresh and empty for each test. */
export interface ApprovalStoreHarness {
  store: ApprovalStore;
  /** A second store on the same data, as another process would have it (its own connection). */
  other: ApprovalStore;
  /**
   * The backend coordinates processes: changes made through `other` reach `store.subscribe`, and
   * of two stores running expiry exactly one handles each item (Redis). Embedded: in-process.
   */
  distributed: boolean;
  /** Closes both stores and drops what they held. */
  cleanup(): Promise<void>;
}

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;

/** Ids that sort the same bytewise and by locale, so ties order alike in every store. */
export const aid = (n: number) => `r_${String(n).padStart(4, '0')}.1`;

export function approvalItem(id: string, over: Partial<ApprovalItem> = {}): ApprovalItem {
  const runId = id.replace(/\.\d+$/, '');
  const createdAt = over.createdAt ?? T0;
  return {
    id,
    kind: 'run',
    runId,
    workflow: 'triage',
    version: '1',
    identity: { team: 'payments', env: 'prod', seat: 'alice', workflow: 'triage', run: runId },
    reason: 'time_box',
    summary: 'time box: ran 10m of 10m',
    detail: { elapsedMs: 600_000, timeBox: 600_000 },
    context: {
      spendByModel: { 'claude-haiku': 120_000 },
      spent: 120_000,
      elapsedMs: 600_000,
      steps: 4,
      cacheHitRate: 0.5,
      lastMessages: [{ role: 'assistant', text: 'checking the ledger' }],
    },
    state: 'pending',
    createdAt,
    // Far enough ahead that nothing expires unless a test means it to.
    expiresAt: Date.now() + HOUR,
    ...over,
  };
}

function decision(action: Decision['action'], over: Partial<Decision> = {}): Decision {
  return { action, actor: 'alice', reason: `because ${action}`, at: T0 + 60_000, ...over };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `check` holds (polling), or fails after `ms`. */
async function until(check: () => boolean | Promise<boolean>, ms = 3_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(15);
  }
}

function zeroCounts(over: Partial<Record<ApprovalState, number>> = {}): Record<ApprovalState, number> {
  return {
    ...(Object.fromEntries(APPROVAL_STATES.map((s) => [s, 0])) as Record<ApprovalState, number>),
    ...over,
  };
}

export function approvalStoreContract(name: string, factory: () => Promise<ApprovalStoreHarness>): void {
  describe(`${name}: approval store contract`, () => {
    let h: ApprovalStoreHarness;
    let store: ApprovalStore;
    beforeEach(async () => {
      h = await factory();
      store = h.store;
    });
    afterEach(() => h.cleanup());

    async function listAll(filter: Parameters<ApprovalStore['list']>[0] = {}, limit = 7): Promise<string[]> {
      const ids: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; ; pages++) {
        if (pages > 1_000) throw new Error('paging does not end');
        const page = await store.list({ ...filter, limit, cursor });
        expect(page.items.length).toBeLessThanOrEqual(limit);
        ids.push(...page.items.map((i) => i.id));
        if (!page.next) return ids;
        expect(page.items).toHaveLength(limit);
        cursor = page.next;
      }
    }

    /** Opens `n` items, `aid(0)` oldest; `over(i)` varies each. */
    async function openMany(n: number, over: (i: number) => Partial<ApprovalItem> = () => ({})) {
      const opened: ApprovalItem[] = [];
      for (let start = 0; start < n; start += 200) {
        const batch = Array.from({ length: Math.min(200, n - start) }, (_, k) => {
          const i = start + k;
          return approvalItem(aid(i), { createdAt: T0 + i * 1_000, ...over(i) });
        });
        await Promise.all(batch.map((item) => store.open(item)));
        opened.push(...batch);
      }
      return opened;
    }

    describe('open and get', () => {
      it('reports its backend', () => {
        expect(['embedded', 'redis']).toContain(store.backend);
      });

      it('opens an item once: a second open of the id returns the stored one, not created', async () => {
        const item = approvalItem(aid(1));
        expect(await store.open(item)).toEqual({ item, created: true });
        const again = await store.open({ ...item, summary: 'a retry, with other words', createdAt: T0 + 5 });
        expect(again).toEqual({ item, created: false });
        expect((await store.list()).items).toEqual([item]);
        expect(await store.counts()).toEqual(zeroCounts({ pending: 1 }));
      });

      it('opens an item once when two stores open it at the same time', async () => {
        const item = approvalItem(aid(1));
        const results = await Promise.all([store.open(item), h.other.open(item), store.open(item)]);
        expect(results.filter((r) => r.created)).toHaveLength(1);
        for (const r of results) expect(r.item).toEqual(item);
        expect(await store.counts()).toEqual(zeroCounts({ pending: 1 }));
      });

      it('returns an item exactly as opened, unicode and nesting included', async () => {
        const item = approvalItem(aid(7), {
          kind: 'session',
          reason: 'session_time_box',
          summary: 'naïve café — 日本語 🚦 «quoted»',
          detail: {
            nested: { list: [1, 'two', { three: null }], empty: {}, none: [] },
            big: 9_007_199_254_740,
          },
          context: {
            spendByModel: {},
            spent: 0,
            elapsedMs: 0,
            steps: 0,
            lastMessages: [],
          },
        });
        await store.open(item);
        expect(await store.get(item.id)).toEqual(item);
        expect(await h.other.get(item.id)).toEqual(item);
      });

      it('has no item for an unknown id', async () => {
        expect(await store.get('r_missing.1')).toBeUndefined();
      });
    });

    describe('list', () => {
      it('lists nothing from an empty store', async () => {
        expect(await store.list()).toEqual({ items: [] });
        expect(
          await store.list({ state: 'pending', workflow: 'w', team: 't', reason: 'r', runId: 'x' }),
        ).toEqual({
          items: [],
        });
      });

      it('lists newest first, ties by id descending', async () => {
        await store.open(approvalItem('r_old.1', { createdAt: T0 }));
        await store.open(approvalItem('r_new.1', { createdAt: T0 + 2_000 }));
        await store.open(approvalItem('r_mid_a.1', { createdAt: T0 + 1_000 }));
        await store.open(approvalItem('r_mid_b.1', { createdAt: T0 + 1_000 }));
        const { items, next } = await store.list();
        expect(items.map((i) => i.id)).toEqual(['r_new.1', 'r_mid_b.1', 'r_mid_a.1', 'r_old.1']);
        expect(next).toBeUndefined();
      });

      it('filters by state, workflow, team, reason and run, alone and combined', async () => {
        const team = (i: number) => (i % 2 ? 'payments' : 'search');
        const workflow = (i: number) => (i % 3 ? 'triage' : 'refund');
        const reason = (i: number) => (i % 4 ? 'time_box' : 'spend_box');
        const opened = await openMany(24, (i) => ({
          workflow: workflow(i),
          reason: reason(i),
          identity: { team: team(i), env: 'prod', seat: 'bob' },
        }));
        for (const i of [0, 5, 10]) await store.decide(aid(i), decision('approve'));
        const newestFirst = (pick: (i: number) => boolean) =>
          opened
            .map((_, i) => i)
            .filter(pick)
            .reverse()
            .map(aid);
        const decided = new Set([0, 5, 10]);
        expect(await listAll({ state: 'approved' })).toEqual(newestFirst((i) => decided.has(i)));
        expect(await listAll({ state: 'pending' })).toEqual(newestFirst((i) => !decided.has(i)));
        expect(await listAll({ state: 'denied' })).toEqual([]);
        expect(await listAll({ workflow: 'refund' })).toEqual(newestFirst((i) => workflow(i) === 'refund'));
        expect(await listAll({ team: 'search' })).toEqual(newestFirst((i) => team(i) === 'search'));
        expect(await listAll({ reason: 'spend_box' })).toEqual(newestFirst((i) => reason(i) === 'spend_box'));
        expect(await listAll({ runId: 'r_0007' })).toEqual([aid(7)]);
        expect(await listAll({ runId: 'r_9999' })).toEqual([]);
        expect(
          await listAll({ state: 'pending', team: 'payments', workflow: 'triage', reason: 'time_box' }),
        ).toEqual(
          newestFirst(
            (i) =>
              !decided.has(i) &&
              team(i) === 'payments' &&
              workflow(i) === 'triage' &&
              reason(i) === 'time_box',
          ),
        );
      });

      it('returns 50 by default and at most the limit, with a cursor only when there are more', async () => {
        await openMany(60);
        const page = await store.list();
        expect(page.items).toHaveLength(50);
        expect(page.items[0]!.id).toBe(aid(59));
        expect(page.next).toBeDefined();
        const rest = await store.list({ cursor: page.next });
        expect(rest.items.map((i) => i.id)).toEqual(Array.from({ length: 10 }, (_, k) => aid(9 - k)));
        expect(rest.next).toBeUndefined();
        const three = await store.list({ limit: 3 });
        expect(three.items.map((i) => i.id)).toEqual([aid(59), aid(58), aid(57)]);
        const exact = await store.list({ limit: 60 });
        expect(exact.items).toHaveLength(60);
        expect(exact.next).toBeUndefined();
      });

      it('lists at most 1,000 however many are asked for', async () => {
        await openMany(1_003);
        const page = await store.list({ limit: 5_000 });
        expect(page.items).toHaveLength(1_000);
        expect(page.items[0]!.id).toBe(aid(1_002));
        expect(page.next).toBeDefined();
        const rest = await store.list({ limit: 5_000, cursor: page.next });
        expect(rest.items.map((i) => i.id)).toEqual([aid(2), aid(1), aid(0)]);
      });

      it('pages through 120 items without gaps or duplicates, ties included, filtered or not', async () => {
        // Three items share each createdAt: the cursor must break ties by id.
        await openMany(120, (i) => ({ createdAt: T0 + Math.floor(i / 3) * 1_000 }));
        for (let i = 0; i < 120; i += 4) await store.decide(aid(i), decision('deny'));
        const all = Array.from({ length: 120 }, (_, k) => aid(119 - k));
        expect(await listAll({}, 7)).toEqual(all);
        expect(await listAll({}, 1)).toEqual(all);
        expect(await listAll({ state: 'pending' }, 7)).toEqual(all.filter((_, k) => (119 - k) % 4 !== 0));
        expect(await listAll({ state: 'denied' }, 4)).toEqual(all.filter((_, k) => (119 - k) % 4 === 0));
        expect(await listAll({ team: 'payments' }, 11)).toEqual(all);
      });

      it('keeps a cursor valid after the item it points at leaves the listed state', async () => {
        await openMany(10, (i) => ({ createdAt: T0 + Math.floor(i / 2) }));
        const first = await store.list({ state: 'pending', limit: 3 });
        expect(first.items.map((i) => i.id)).toEqual([aid(9), aid(8), aid(7)]);
        await store.decide(aid(7), decision('approve'));
        await store.decide(aid(9), decision('kill'));
        const rest = await store.list({ state: 'pending', limit: 100, cursor: first.next });
        expect(rest.items.map((i) => i.id)).toEqual([6, 5, 4, 3, 2, 1, 0].map(aid));
      });

      it('refuses a cursor it did not make', async () => {
        await expect(store.list({ cursor: 'not a cursor' })).rejects.toThrow(/cursor/);
      });
    });

    describe('counts', () => {
      it('counts every state, zeros included', async () => {
        expect(await store.counts()).toEqual(zeroCounts());
        await openMany(9);
        const actions: Decision['action'][] = ['approve', 'extend', 'deny', 'kill', 'expire', 'approve'];
        for (const [i, action] of actions.entries()) await store.decide(aid(i), decision(action));
        expect(await store.counts()).toEqual(
          zeroCounts({ pending: 3, approved: 2, extended: 1, denied: 1, killed: 1, expired: 1 }),
        );
        expect(await h.other.counts()).toEqual(await store.counts());
      });
    });

    describe('decide', () => {
      const cases: [DecisionAction, ApprovalState, Partial<Decision>][] = [
        ['approve', 'approved', {}],
        ['extend', 'extended', { addSpend: 500_000, addTime: 300_000 }],
        ['deny', 'denied', { reason: 'too dear' }],
        ['kill', 'killed', { actor: 'ops@example.com' }],
      ];
      for (const [action, state, over] of cases) {
        it(`${action}: moves a pending item to ${state} and records the decision`, async () => {
          const item = approvalItem(aid(1));
          await store.open(item);
          const d = decision(action, over);
          const decided = await store.decide(item.id, d);
          expect(decided).toEqual({ ...item, state, decision: d });
          expect(await store.get(item.id)).toEqual(decided);
          expect(await h.other.get(item.id)).toEqual(decided);
          expect(await store.counts()).toEqual(zeroCounts({ [state]: 1 }));
          expect((await store.list({ state })).items).toEqual([decided]);
          expect((await store.list({ state: 'pending' })).items).toEqual([]);
        });
      }

      it('refuses a second decision, naming the first', async () => {
        await store.open(approvalItem(aid(1)));
        const first = await store.decide(aid(1), decision('approve', { actor: 'alice' }));
        for (const [s, action] of [
          [store, 'deny'],
          [h.other, 'approve'],
          [store, 'expire'],
        ] as const) {
          const err = await s.decide(aid(1), decision(action, { actor: 'bob' })).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(ApprovalConflictError);
          expect((err as ApprovalConflictError).code).toBe('conflict');
          expect((err as ApprovalConflictError).item).toEqual(first);
          expect((err as Error).message).toMatch(/already approved \(approve by alice\)/);
        }
        expect(await store.get(aid(1))).toEqual(first);
        expect(await store.counts()).toEqual(zeroCounts({ approved: 1 }));
      });

      it('refuses a decision on an unknown item', async () => {
        const err = await store.decide('r_missing.1', decision('approve')).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ApprovalNotFoundError);
        expect((err as ApprovalNotFoundError).code).toBe('not_found');
        expect(await store.counts()).toEqual(zeroCounts());
      });

      it('expires only a pending item, and nothing decides an expired one', async () => {
        await store.open(approvalItem(aid(1)));
        await store.open(approvalItem(aid(2)));
        const expired = await store.decide(
          aid(1),
          decision('expire', { actor: 'system', reason: 'timeout' }),
        );
        expect(expired.state).toBe('expired');
        expect(expired.decision).toMatchObject({ action: 'expire', actor: 'system', reason: 'timeout' });
        await expect(store.decide(aid(1), decision('approve'))).rejects.toBeInstanceOf(ApprovalConflictError);
        await store.decide(aid(2), decision('deny'));
        const err = await store.decide(aid(2), decision('expire')).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ApprovalConflictError);
        expect((err as ApprovalConflictError).item.state).toBe('denied');
        expect(await store.counts()).toEqual(zeroCounts({ expired: 1, denied: 1 }));
      });

      it('lets exactly one of two racing decisions win, in one store and across two', async () => {
        const n = 20;
        await openMany(n);
        const actions: Decision['action'][] = ['approve', 'deny', 'kill', 'extend', 'expire'];
        const races = Array.from({ length: n }, (_, i) => {
          const [a, b] = [actions[i % 5]!, actions[(i + 2) % 5]!];
          // Even items race within one store, odd ones across the two.
          const second = i % 2 ? h.other : store;
          return Promise.allSettled([
            store.decide(aid(i), decision(a, { actor: 'first' })),
            second.decide(aid(i), decision(b, { actor: 'second' })),
          ]);
        });
        const settled = await Promise.all(races);
        for (const [i, outcome] of settled.entries()) {
          const won = outcome.filter((o) => o.status === 'fulfilled');
          const lost = outcome.filter((o) => o.status === 'rejected');
          expect(won, aid(i)).toHaveLength(1);
          expect(lost).toHaveLength(1);
          const winner = (won[0] as PromiseFulfilledResult<ApprovalItem>).value;
          const reason = (lost[0] as PromiseRejectedResult).reason as unknown;
          expect(reason).toBeInstanceOf(ApprovalConflictError);
          expect((reason as ApprovalConflictError).item).toEqual(winner);
          expect(await store.get(aid(i))).toEqual(winner);
        }
        const counts = await store.counts();
        expect(counts.pending).toBe(0);
        expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(n);
      });
    });

    describe('reopen', () => {
      it('undoes a decision that could not be applied: pending again, decidable again, still expiring', async () => {
        const changes: ApprovalChange[] = [];
        const off = store.subscribe((c) => changes.push(c));
        const calls: string[] = [];
        await store.startExpiry(async (id) => {
          calls.push(id);
        });
        const item = approvalItem(aid(1), { createdAt: Date.now(), expiresAt: Date.now() + 400 });
        await store.open(item);
        const d = decision('extend', { addSpend: 1_000_000 });
        await store.decide(aid(1), d);
        // Another decision (not this one) is not undone by it.
        expect(await store.reopen(aid(1), { ...d, actor: 'mallory' })).toMatchObject({ state: 'extended' });
        const reopened = await store.reopen(aid(1), d);
        expect(reopened).toEqual(item);
        expect(await store.get(aid(1))).toEqual(item);
        expect(await h.other.get(aid(1))).toEqual(item);
        expect(await store.counts()).toEqual(zeroCounts({ pending: 1 }));
        expect((await store.list({ state: 'pending' })).items).toEqual([item]);
        expect((await store.list({ state: 'extended' })).items).toEqual([]);
        await until(() =>
          changes.some((c) => c.id === aid(1) && c.state === 'pending' && changes.length > 2),
        );
        // Its expiry still comes.
        await until(() => calls.includes(aid(1)), 3_000, 'the expiry of the reopened item');
        // Reopening again (or an unknown item) changes nothing.
        expect(await store.reopen(aid(1), d)).toEqual(item);
        expect(await store.reopen('r_missing.1', d)).toBeUndefined();
        const second = await store.decide(aid(1), decision('deny', { actor: 'bob' }));
        expect(second.state).toBe('denied');
        off();
      });
    });

    describe('expiry', () => {
      it('hands over an item once it is due, an overdue one at start, and never a decided one', async () => {
        const calls: { id: string; at: number }[] = [];
        const started = Date.now();
        await store.open(
          approvalItem('r_overdue.1', { createdAt: started - 2_000, expiresAt: started - 1_000 }),
        );
        await store.startExpiry(async (id) => {
          calls.push({ id, at: Date.now() });
          await store.decide(id, decision('expire', { actor: 'system', at: Date.now() }));
        });
        const dueAt = Date.now() + 300;
        await store.open(approvalItem('r_due.1', { createdAt: Date.now(), expiresAt: dueAt }));
        await store.open(approvalItem('r_decided.1', { createdAt: Date.now(), expiresAt: dueAt }));
        await store.decide('r_decided.1', decision('approve'));
        await until(() => calls.some((c) => c.id === 'r_due.1'), 3_000, 'the due item');
        expect(calls.find((c) => c.id === 'r_due.1')!.at).toBeGreaterThanOrEqual(dueAt - 5);
        await sleep(300);
        expect(calls.map((c) => c.id).sort()).toEqual(['r_due.1', 'r_overdue.1']);
        expect((await store.get('r_due.1'))?.state).toBe('expired');
        expect((await store.get('r_overdue.1'))?.state).toBe('expired');
        expect((await store.get('r_decided.1'))?.state).toBe('approved');
      });

      it('survives a handler that throws', async () => {
        const calls: string[] = [];
        await store.startExpiry(async (id) => {
          calls.push(id);
          throw new Error('handler broke');
        });
        await store.open(approvalItem(aid(1), { createdAt: Date.now(), expiresAt: Date.now() + 50 }));
        await until(() => calls.length > 0, 3_000, 'the handler');
        await sleep(50);
        expect(calls[0]).toBe(aid(1));
        expect((await store.get(aid(1)))?.state).toBe('pending');
      });

      it('hands each due item to one of two stores running expiry, when the backend coordinates them', async () => {
        if (!h.distributed) return;
        const calls: string[] = [];
        const onDue = (who: string) => async (id: string) => {
          calls.push(`${who}:${id}`);
          await store.decide(id, decision('expire')).catch(() => {});
        };
        await store.startExpiry(onDue('a'));
        await h.other.startExpiry(onDue('b'));
        const at = Date.now() + 200;
        await Promise.all(
          [1, 2, 3, 4].map((i) => store.open(approvalItem(aid(i), { createdAt: at, expiresAt: at }))),
        );
        await until(async () => (await store.counts()).expired === 4, 3_000, 'four expired');
        await sleep(100);
        expect(calls.map((c) => c.split(':')[1]).sort()).toEqual([1, 2, 3, 4].map(aid));
      });
    });

    describe('subscribe', () => {
      it('tells a listener of openings and decisions until it unsubscribes', async () => {
        const seen: ApprovalChange[] = [];
        const off = store.subscribe((c) => seen.push(c));
        await store.open(approvalItem(aid(1)));
        await store.open(approvalItem(aid(1))); // not a change
        await store.decide(aid(1), decision('deny'));
        await store.open(approvalItem(aid(2)));
        await store.decide(aid(2), decision('expire'));
        await until(() => seen.length >= 4, 2_000, 'four changes');
        off();
        await store.open(approvalItem(aid(3)));
        await sleep(200); // anything echoed back through the backend would be here by now
        expect(seen).toEqual([
          { id: aid(1), state: 'pending' },
          { id: aid(1), state: 'denied' },
          { id: aid(2), state: 'pending' },
          { id: aid(2), state: 'expired' },
        ]);
      });

      it('keeps telling the other listeners when one throws', async () => {
        const seen: ApprovalChange[] = [];
        store.subscribe(() => {
          throw new Error('listener broke');
        });
        store.subscribe((c) => seen.push(c));
        const { created } = await store.open(approvalItem(aid(1)));
        expect(created).toBe(true);
        await until(() => seen.length === 1, 2_000, 'the change');
      });

      it('tells a listener of changes made through another store, when the backend shares them', async () => {
        if (!h.distributed) return;
        const seen: ApprovalChange[] = [];
        store.subscribe((c) => seen.push(c));
        await h.other.open(approvalItem(aid(1)));
        await h.other.decide(aid(1), decision('approve'));
        await until(() => seen.length >= 2, 3_000, 'changes from the other store');
        await sleep(100);
        expect(seen).toEqual([
          { id: aid(1), state: 'pending' },
          { id: aid(1), state: 'approved' },
        ]);
      });
    });
  });
}
