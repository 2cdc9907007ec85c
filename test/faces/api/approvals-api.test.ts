import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_TOKEN,
  type Backend,
  type Harness,
  OPERATOR_TOKEN,
  OPERATORS,
  startHarness,
  VIEWER_TOKEN,
} from '../../helpers/harness.ts';

/**
 * The approvals API on a real server over real HTTP, on both backends (SQLite + in-process queue;
 * Redis + BullMQ), with small fixture workflows run on the emulator: each kind of suspension
 * opens one item; approve, deny, extend and kill apply to the run once; a second decision is a
 * 409; undecided items expire; the inbox lists, filters, pages and streams changes; a session
 * past its session time box waits in the same inbox.
 */

const WORKFLOWS = new URL('../../fixtures/approval-workflows', import.meta.url).pathname;

const TASKS = {
  gated: 'Pay it [[emulator:tool_use pay={"order":"A1","amount_usd":5}]]',
  capped: 'Loop [[emulator:tool_use lookup={"order":"A1"}]]',
  slow: 'Slow [[emulator:tool_use slow_lookup={"q":"A1"}]]',
  spender: 'Spend [[emulator:tool_use lookup={"order":"A1"}]] [[emulator:output_tokens=900]]',
} as const;
type Fixture = keyof typeof TASKS;

interface Money {
  usd: string;
  micros: number;
}
interface Item {
  id: string;
  kind: 'run' | 'session';
  state: string;
  run: string;
  workflow: string;
  version: string;
  startedBy: { team: string; env: string; seat: string };
  reason: string;
  summary: string;
  detail: Record<string, unknown>;
  spent: Money;
  spendByModel: Record<string, Money>;
  elapsedMs: number;
  steps: number;
  cacheHitRate: number | null;
  lastMessages: { role: string; text: string }[];
  createdAt: string;
  expiresAt: string;
  decision: { action: string; actor: string; reason: string; at: string; addTimeMs?: number } | null;
}
interface Run {
  id: string;
  state: string;
  reason?: string;
  steps: number;
  clockStart: string;
  limits: { spend_usd: string; spend_micros: number; time_ms: number; steps: number };
  detail?: Record<string, unknown>;
  output?: unknown;
}
interface Decided {
  approval: Item;
  run?: { id: string; state: string; limits: { spend: number; time: number; steps: number } };
}
interface ErrorBody {
  type: 'error';
  error: { type: string; message: string };
  chokepoint: { code: string; field?: string; [k: string]: unknown };
}
interface Audit {
  action: string;
  actor: string;
  reason: string;
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** A live `GET /api/events` stream, read with fetch and a reader. */
async function openEvents(url: string) {
  const ac = new AbortController();
  const res = await fetch(`${url}/api/events`, {
    headers: { authorization: `Bearer ${VIEWER_TOKEN}`, accept: 'text/event-stream' },
    signal: ac.signal,
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const seen: { event: string; data: Record<string, unknown> }[] = [];
  let buf = '';
  let reading: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    seen,
    /** The first event (already seen or still to come) that matches, within `ms`. */
    async take(pred: (e: { event: string; data: Record<string, unknown> }) => boolean, ms = 10_000) {
      const end = Date.now() + ms;
      for (;;) {
        const hit = seen.find(pred);
        if (hit) return hit;
        const left = end - Date.now();
        if (left <= 0) throw new Error(`no matching event within ${ms} ms; saw ${JSON.stringify(seen)}`);
        reading ??= reader.read();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const r = await Promise.race([
          reading,
          new Promise<undefined>((resolve) => {
            timer = setTimeout(() => resolve(undefined), left);
          }),
        ]);
        clearTimeout(timer);
        if (!r) continue;
        reading = undefined;
        if (r.done) throw new Error(`the event stream ended; saw ${JSON.stringify(seen)}`);
        buf += decoder.decode(r.value, { stream: true });
        let cut = buf.indexOf('\n\n');
        while (cut >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trim());
          }
          if (data.length) seen.push({ event, data: JSON.parse(data.join('\n')) });
          cut = buf.indexOf('\n\n');
        }
      }
    },
    close() {
      ac.abort();
    },
  };
}

describe.each(['embedded', 'redis'] as Backend[])('approvals API (%s backend)', (backend) => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ backend, workflows: WORKFLOWS, config: OPERATORS });
    const wfs = await h.api<{ workflows: { id: string }[]; invalid: unknown[] }>('GET', '/api/workflows');
    expect(wfs.body.invalid).toEqual([]);
    expect(wfs.body.workflows.map((w) => w.id).sort()).toEqual(['capped', 'gated', 'slow', 'spender']);
  });
  afterAll(async () => {
    await h?.close();
  });

  const getItem = (id: string, token?: string) =>
    h.api<{ approval: Item } & ErrorBody>(
      'GET',
      `/api/approvals/${encodeURIComponent(id)}`,
      undefined,
      token,
    );
  const decide = (id: string, action: string, body: Record<string, unknown>, token = OPERATOR_TOKEN) =>
    h.api<Decided & ErrorBody>('POST', `/api/approvals/${encodeURIComponent(id)}/${action}`, body, token);
  const getRun = async (id: string, wait = 0) =>
    (
      await h.api<{ run: Run; journal: { kind: string; name: string; result: Record<string, unknown> }[] }>(
        'GET',
        `/api/runs/${id}${wait ? `?wait=${wait}` : ''}`,
      )
    ).body;
  const audit = async (runId: string) =>
    (await h.api<{ entries: Audit[] }>('GET', `/api/audit?target=run:${runId}`)).body.entries;
  const approvalAudit = async (runId: string) =>
    (await audit(runId)).filter((e) => e.action.startsWith('approval.'));

  /** Starts a fixture run, waits until it suspends, and returns the item it opened. */
  async function suspend(workflow: Fixture, opts: { team?: string } = {}): Promise<{ run: Run; item: Item }> {
    const res = await h.api<{ run: Run }>('POST', '/api/runs', {
      workflow,
      input: { task: TASKS[workflow] },
      wait: 20,
      ...(opts.team ? { team: opts.team } : {}),
    });
    expect(res.status).toBe(201);
    const run = res.body.run;
    expect(run.state).toBe('suspended');
    const item = await pendingItem(`${run.id}.1`);
    return { run, item };
  }

  /** The item with this id once it is open (it opens right after the run suspends). */
  const pendingItem = (id: string) =>
    waitFor(`approval ${id}`, async () => {
      const r = await getItem(id);
      return r.status === 200 ? r.body.approval : undefined;
    });

  /** The run once it is no longer running (after a decision resumed it). */
  const settled = (id: string) =>
    waitFor(`run ${id} to stop`, async () => {
      const r = await getRun(id, 5);
      return r.run.state === 'running' ? undefined : r;
    });

  it('a gate opens an item with the call, spend by model, steps and the last messages; approve runs the tool', async () => {
    const { run, item } = await suspend('gated');
    expect(item).toMatchObject({
      id: `${run.id}.1`,
      kind: 'run',
      state: 'pending',
      run: run.id,
      workflow: 'gated',
      version: '1',
      startedBy: { team: 'default', env: 'default', seat: 'admin' },
      reason: 'approval_required',
      summary: 'gate: wants to call pay with {"order":"A1","amount_usd":5}',
      detail: { tool: 'pay', input: { order: 'A1', amount_usd: 5 } },
      steps: 1,
      decision: null,
    });
    expect(item.spent.micros).toBeGreaterThan(0);
    const models = Object.keys(item.spendByModel);
    expect(models).toHaveLength(1);
    expect(models[0]).toMatch(/^claude-haiku-4-5/);
    expect(item.spendByModel[models[0]!]).toEqual(item.spent);
    expect(item.lastMessages).toEqual([
      { role: 'assistant', text: expect.stringContaining('→ pay({"order":"A1","amount_usd":5})') },
    ]);
    const ledger = await h.rt.store.listLedger({ run: run.id, limit: 100 });
    expect(item.spent.micros).toBe(ledger.reduce((n, e) => n + e.cost, 0));
    expect(Date.parse(item.expiresAt) - Date.parse(item.createdAt)).toBe(24 * 3_600_000);

    const ok = await decide(item.id, 'approve', { reason: 'a 5 USD payment is fine' });
    expect(ok.status).toBe(200);
    expect(ok.body.approval).toMatchObject({
      id: item.id,
      state: 'approved',
      decision: { action: 'approve', actor: 'oncall', reason: 'a 5 USD payment is fine' },
    });
    // The run is running again (or already done: it has one quick call left).
    expect(ok.body.run).toMatchObject({ id: run.id, state: expect.stringMatching(/^(running|done)$/) });
    const done = await settled(run.id);
    expect(done.run.state).toBe('done');
    const pay = done.journal.find((e) => e.name === 'pay');
    expect(pay?.result).toMatchObject({ content: 'paid $5.00 on order A1', isError: false });
    expect((await getItem(item.id)).body.approval.state).toBe('approved');

    // Decided once: the second decision is a 409 naming the first; nothing else is audited.
    const again = await decide(item.id, 'deny', { reason: 'changed my mind' }, ADMIN_TOKEN);
    expect(again.status).toBe(409);
    expect(again.body.chokepoint).toMatchObject({
      code: 'conflict',
      approval: item.id,
      state: 'approved',
      decided_by: 'oncall',
    });
    expect(again.body.error.message).toBe(
      `approval ${item.id} is already approved (approve by oncall): nothing to decide`,
    );
    expect(await approvalAudit(run.id)).toEqual([
      expect.objectContaining({
        action: 'approval.approve',
        actor: 'oncall',
        reason: 'a 5 USD payment is fine',
        after: expect.objectContaining({ approval: item.id, state: 'approved' }),
      }),
    ]);
  });

  it('deny on a gate: the model is told a human refused the call and the run goes on to done', async () => {
    const { run, item } = await suspend('gated');
    const res = await decide(item.id, 'deny', { reason: 'no payments today' });
    expect(res.status).toBe(200);
    expect(res.body.approval.state).toBe('denied');
    const done = await settled(run.id);
    expect(done.run.state).toBe('done');
    const pay = done.journal.find((e) => e.name === 'pay');
    expect(pay?.result).toMatchObject({ isError: true, content: expect.stringContaining('A human refused') });
    expect(done.journal.at(-1)).toMatchObject({ kind: 'model' });
    const ledger = await h.rt.store.listLedger({ run: run.id, limit: 100 });
    expect(ledger.find((e) => e.name === 'pay')).toMatchObject({
      outcome: 'refused',
      code: 'approval_denied',
    });
    expect((await approvalAudit(run.id)).map((e) => [e.action, e.actor, e.reason])).toEqual([
      ['approval.deny', 'oncall', 'no payments today'],
    ]);
  });

  it('a step cap: summary with the numbers; deny ends the run denied; kill on another ends it killed', async () => {
    const [a, b] = await Promise.all([suspend('capped'), suspend('capped')]);
    for (const { item } of [a, b]) {
      expect(item).toMatchObject({
        reason: 'step_cap',
        summary: 'step cap: 3 of 3 steps',
        steps: 3,
        detail: { steps: 3, stepCap: 3 },
      });
      expect(item.lastMessages.map((m) => m.role)).toEqual(['assistant', 'tool lookup', 'assistant']);
      expect(item.lastMessages[1]!.text).toContain('order A1: shipped');
    }
    const denied = await decide(a.item.id, 'deny', { reason: 'looping' });
    expect(denied.status).toBe(200);
    expect(denied.body.run).toMatchObject({ id: a.run.id, state: 'denied' });
    const runA = await getRun(a.run.id);
    expect(runA.run).toMatchObject({ state: 'denied', detail: { suspendedFor: 'step_cap', by: 'oncall' } });

    const killed = await decide(b.item.id, 'kill', { reason: 'runaway' });
    expect(killed.status).toBe(200);
    expect(killed.body.approval.state).toBe('killed');
    expect((await getRun(b.run.id)).run.state).toBe('killed');
    expect((await approvalAudit(b.run.id)).map((e) => [e.action, e.actor, e.reason])).toEqual([
      ['approval.kill', 'oncall', 'runaway'],
    ]);
    const again = await decide(b.item.id, 'approve', { reason: 'oops' });
    expect(again.status).toBe(409);
    expect(again.body.error.message).toContain('already killed (kill by oncall)');
  });

  it('approve on a step cap grants the steps again; the next suspension opens a new item', async () => {
    const { run, item } = await suspend('capped');
    const ok = await decide(item.id, 'approve', { reason: 'three more' });
    expect(ok.status).toBe(200);
    const next = await pendingItem(`${run.id}.2`);
    expect(next).toMatchObject({ reason: 'step_cap', summary: 'step cap: 6 of 6 steps', steps: 6 });
    expect((await getItem(item.id)).body.approval.state).toBe('approved');
    const pending = await h.api<{ approvals: Item[] }>('GET', `/api/approvals?run=${run.id}`);
    expect(pending.body.approvals.map((a) => a.id)).toEqual([next.id]);
  });

  it('two decisions racing on one item: exactly one wins, the other is a 409, one audit entry', async () => {
    const { run, item } = await suspend('capped');
    const results = await Promise.all([
      decide(item.id, 'kill', { reason: 'first' }),
      decide(item.id, 'deny', { reason: 'second' }, ADMIN_TOKEN),
      decide(item.id, 'extend', { reason: 'third', time: '+1m' }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409]);
    const winner = results.find((r) => r.status === 200)!.body.approval;
    const entries = await approvalAudit(run.id);
    expect(entries).toHaveLength(1);
    expect(entries[0]!.action).toBe(`approval.${winner.decision!.action}`);
    const ended = (await getRun(run.id)).run.state;
    if (winner.decision!.action === 'kill') expect(ended).toBe('killed');
    if (winner.decision!.action === 'deny') expect(ended).toBe('denied');
  });

  it('a time box: approve restarts the clock and the run completes; extend adds time', async () => {
    const [a, b] = await Promise.all([suspend('slow'), suspend('slow')]);
    for (const { item } of [a, b]) {
      expect(item.reason).toBe('time_box');
      expect(item.summary).toMatch(/^time box: ran \S+ of \S+$/);
      expect(item.detail).toMatchObject({ timeBox: 300 });
      expect(item.detail.elapsedMs as number).toBeGreaterThanOrEqual(300);
      expect(item.elapsedMs).toBeGreaterThanOrEqual(300);
    }
    const before = Date.now();
    const ok = await decide(a.item.id, 'approve', { reason: 'give it another go' });
    expect(ok.status).toBe(200);
    expect(ok.body.run).toMatchObject({
      state: expect.stringMatching(/^(running|done)$/),
      limits: { time: 300 },
    });
    const doneA = await settled(a.run.id);
    expect(doneA.run.state).toBe('done');
    expect(Date.parse(doneA.run.clockStart)).toBeGreaterThanOrEqual(before - 5);

    const ext = await decide(b.item.id, 'extend', { reason: 'slow upstream', time: '+5s' });
    expect(ext.status).toBe(200);
    expect(ext.body.approval).toMatchObject({
      state: 'extended',
      decision: { action: 'extend', addTimeMs: 5000 },
    });
    expect(ext.body.run).toMatchObject({
      state: expect.stringMatching(/^(running|done)$/),
      limits: { time: 5300 },
    });
    const doneB = await settled(b.run.id);
    expect(doneB.run).toMatchObject({ state: 'done', limits: { time_ms: 5300 } });
    expect(await approvalAudit(b.run.id)).toEqual([
      expect.objectContaining({
        action: 'approval.extend',
        actor: 'oncall',
        reason: 'slow upstream',
        after: expect.objectContaining({ add_time_ms: 5000 }),
      }),
    ]);
  });

  it('a spend box: summary in dollars; extend raises the box and the run:<id> ceiling, and the run completes', async () => {
    const { run, item } = await suspend('spender');
    expect(item.reason).toBe('spend_box');
    expect(item.summary).toMatch(
      /^spend box: \$0\.00\d+ of \$0\.008, the next call may cost up to \$0\.00\d+$/,
    );
    expect(item.detail).toMatchObject({ spendBox: 8000, budget: `run:${run.id}` });
    expect(item.spent.micros).toBeGreaterThan(4000);

    const ext = await decide(item.id, 'extend', { reason: 'worth a dollar', spend: '+$1' });
    expect(ext.status).toBe(200);
    expect(ext.body.run).toMatchObject({
      state: expect.stringMatching(/^(running|done)$/),
      limits: { spend: 1_008_000 },
    });
    const budget = await h.api<{ budget: { ceiling_micros: number; ceiling_usd: string } }>(
      'GET',
      `/api/budgets/run:${run.id}`,
    );
    expect(budget.body.budget).toMatchObject({ ceiling_micros: 1_008_000, ceiling_usd: '1.008' });
    const done = await settled(run.id);
    expect(done.run).toMatchObject({ state: 'done', limits: { spend_micros: 1_008_000 } });
    expect((await approvalAudit(run.id)).map((e) => [e.action, e.after?.add_spend_usd])).toEqual([
      ['approval.extend', '1.00'],
    ]);
  });

  it('deny on a box ends the run denied', async () => {
    const { run, item } = await suspend('spender');
    const res = await decide(item.id, 'deny', { reason: 'too expensive' });
    expect(res.status).toBe(200);
    expect((await getRun(run.id)).run).toMatchObject({
      state: 'denied',
      detail: { suspendedFor: 'spend_box', why: 'too expensive' },
    });
  });

  it('404 for an unknown item; 400 for a missing reason, an extend without an amount or a bad one', async () => {
    const { item } = await suspend('capped');
    const [get, approve] = await Promise.all([
      getItem('run_nope.1'),
      decide('run_nope.1', 'approve', { reason: 'r' }),
    ]);
    for (const r of [get, approve]) {
      expect(r.status).toBe(404);
      expect(r.body.chokepoint.code).toBe('not_found');
      expect(r.body.error.message).toContain('no approval run_nope.1');
    }
    const bad = await Promise.all([
      decide(item.id, 'approve', {}),
      decide(item.id, 'deny', { reason: '   ' }),
      decide(item.id, 'extend', { reason: 'r' }),
      decide(item.id, 'extend', { reason: 'r', spend: 'lots' }),
      decide(item.id, 'extend', { reason: 'r', spend: '-$1' }),
      decide(item.id, 'extend', { reason: 'r', time: 'forever' }),
      decide(item.id, 'approve', { reason: 'r', spend: '+$1' }),
    ]);
    expect(bad.map((r) => [r.status, r.body.chokepoint.code, r.body.chokepoint.field])).toEqual([
      [400, 'invalid_request', 'reason'],
      [400, 'invalid_request', 'reason'],
      [400, 'invalid_request', 'spend'],
      [400, 'invalid_request', 'spend'],
      [400, 'invalid_request', 'spend'],
      [400, 'invalid_request', 'time'],
      [400, 'invalid_request', 'spend'],
    ]);
    expect(bad[2]!.body.error.message).toContain('extend needs an amount');
    const body = await fetch(`${h.url}/api/approvals/${item.id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
      body: '{nope',
    });
    expect(body.status).toBe(400);
    expect(((await body.json()) as ErrorBody).chokepoint.field).toBe('body');
    // None of that decided anything.
    expect((await getItem(item.id)).body.approval.state).toBe('pending');
    expect(await approvalAudit(item.run)).toEqual([]);
  });

  it('an extend the run cannot take ("+$9999999999") is a 400 that leaves the item pending and unaudited', async () => {
    const { run, item } = await suspend('spender');
    const huge = await decide(item.id, 'extend', { reason: 'r', spend: '+$9999999999' });
    expect(huge.status).toBe(400);
    expect(huge.body.chokepoint).toMatchObject({ code: 'invalid_request', field: 'spend' });
    expect((await getItem(item.id)).body.approval).toMatchObject({ state: 'pending', decision: null });
    expect(await approvalAudit(run.id)).toEqual([]);
    expect((await getRun(run.id)).run.state).toBe('suspended');
    const pending = await h.api<{ approvals: Item[] }>('GET', `/api/approvals?run=${run.id}`);
    expect(pending.body.approvals.map((a) => a.id)).toEqual([item.id]);
    // And the item can still be decided.
    const ok = await decide(item.id, 'extend', { reason: 'a dollar', spend: '+$1' });
    expect(ok.status).toBe(200);
    expect((await settled(run.id)).run.state).toBe('done');
    expect((await approvalAudit(run.id)).map((e) => e.action)).toEqual(['approval.extend']);
  });

  it.each(['approve', 'extend', 'deny', 'kill'] as const)(
    'a %s that fails while being applied leaves the item pending, audited only as failed',
    async (action) => {
      const { run, item } = await suspend(action === 'deny' ? 'capped' : 'gated');
      const host = h.rt.runs!;
      const saved = { resume: host.resume, kill: host.kill, end: host.end };
      const boom = async () => {
        throw new Error('the store went away');
      };
      host.resume = boom;
      host.kill = boom;
      host.end = boom;
      let failed: Awaited<ReturnType<typeof decide>>;
      try {
        failed = await decide(item.id, action, {
          reason: 'try it',
          ...(action === 'extend' ? { time: '+1m' } : {}),
        });
      } finally {
        Object.assign(host, saved);
      }
      expect(failed.status).toBeGreaterThanOrEqual(500);
      expect((await getItem(item.id)).body.approval).toMatchObject({ state: 'pending', decision: null });
      const entries = await approvalAudit(run.id);
      expect(entries.map((e) => e.action)).toEqual(['approval.failed']);
      expect(entries[0]).toMatchObject({
        actor: 'oncall',
        after: { approval: item.id, state: 'pending', action },
      });
      expect(entries[0]!.reason).toContain('the store went away');
      expect((await getRun(run.id)).run.state).toBe('suspended');
      // Decided again once the fault is gone: this one is applied and audited.
      const ok = await decide(item.id, action, {
        reason: 'again',
        ...(action === 'extend' ? { time: '+1m' } : {}),
      });
      expect(ok.status).toBe(200);
      expect((await approvalAudit(run.id)).map((e) => e.action)).toEqual([
        `approval.${action}`,
        'approval.failed',
      ]);
    },
  );

  it('a viewer can read the inbox but gets 403 on every decision', async () => {
    const { item } = await suspend('capped');
    const [list, get] = await Promise.all([
      h.api('GET', '/api/approvals', undefined, VIEWER_TOKEN),
      getItem(item.id, VIEWER_TOKEN),
    ]);
    expect(list.status).toBe(200);
    expect(get.status).toBe(200);
    const denied = await Promise.all(
      (['approve', 'deny', 'kill', 'extend'] as const).map((a) =>
        decide(item.id, a, { reason: 'r', ...(a === 'extend' ? { time: '+1m' } : {}) }, VIEWER_TOKEN),
      ),
    );
    for (const r of denied) {
      expect(r.status).toBe(403);
      expect(r.body.chokepoint).toMatchObject({ code: 'forbidden', needed_role: 'operator' });
    }
    expect((await getItem(item.id)).body.approval.state).toBe('pending');
    const anon = await fetch(`${h.url}/api/approvals`);
    expect(anon.status).toBe(401);
  });

  it('lists pending items newest first; filters by workflow, team, reason, state and run; pages with a cursor', async () => {
    const team = `listing-${backend}`;
    const made: { run: Run; item: Item }[] = [];
    for (let i = 0; i < 3; i++) made.push(await suspend('capped', { team }));
    const gate = await suspend('gated', { team });
    type Page = { approvals: Item[]; next?: string };
    const list = async (q: string) => (await h.api<Page & ErrorBody>('GET', `/api/approvals?${q}`)).body;

    const all = await list(`team=${team}`);
    expect(all.approvals.map((a) => a.id)).toEqual([gate, ...made.reverse()].map((m) => m.item.id));
    expect(all.next).toBeUndefined();

    const p1 = await list(`team=${team}&limit=3`);
    expect(p1.approvals).toHaveLength(3);
    expect(p1.next).toEqual(expect.any(String));
    const p2 = await list(`team=${team}&limit=3&cursor=${encodeURIComponent(p1.next!)}`);
    expect(p2.approvals).toHaveLength(1);
    expect(p2.next).toBeUndefined();
    expect([...p1.approvals, ...p2.approvals].map((a) => a.id)).toEqual(all.approvals.map((a) => a.id));

    const [byWorkflow, byReason, byRun, none] = await Promise.all([
      list(`team=${team}&workflow=gated`),
      list(`team=${team}&reason=step_cap`),
      list(`run=${made[0]!.run.id}`),
      list(`team=${team}&reason=time_box`),
    ]);
    expect(byWorkflow.approvals.map((a) => a.id)).toEqual([gate.item.id]);
    expect(byReason.approvals).toHaveLength(3);
    expect(byReason.approvals.every((a) => a.reason === 'step_cap')).toBe(true);
    expect(byRun.approvals.map((a) => a.id)).toEqual([made[0]!.item.id]);
    expect(none.approvals).toEqual([]);

    expect((await decide(gate.item.id, 'deny', { reason: 'no' })).status).toBe(200);
    const [pending, denied, every] = await Promise.all([
      list(`team=${team}`),
      list(`team=${team}&state=denied`),
      list(`team=${team}&state=all`),
    ]);
    expect(pending.approvals).toHaveLength(3);
    expect(denied.approvals.map((a) => [a.id, a.state])).toEqual([[gate.item.id, 'denied']]);
    expect(every.approvals).toHaveLength(4);

    const [state, limit] = await Promise.all([list('state=sleeping'), list('limit=0')]);
    expect(state.chokepoint).toEqual({ code: 'invalid_request', field: 'state' });
    expect(limit.chokepoint.field).toBe('limit');
  });

  it('GET /events streams an approval event when an item opens and when it is decided', async () => {
    const events = await openEvents(h.url);
    try {
      expect(events.status).toBe(200);
      expect(events.type).toContain('text/event-stream');
      await events.take((e) => e.event === 'ready');
      const { run, item } = await suspend('gated');
      await events.take((e) => e.event === 'approval' && e.data.id === item.id && e.data.state === 'pending');
      await events.take((e) => e.event === 'run' && e.data.id === run.id && e.data.state === 'suspended');
      await decide(item.id, 'approve', { reason: 'fine' });
      await events.take(
        (e) => e.event === 'approval' && e.data.id === item.id && e.data.state === 'approved',
      );
      await events.take((e) => e.event === 'run' && e.data.id === run.id && e.data.state === 'done');
    } finally {
      events.close();
    }
  });

  it('a run resumed or killed through the runs API closes its pending item', async () => {
    const [gate, cap] = await Promise.all([suspend('gated'), suspend('capped')]);
    const resumed = await h.api<{ run: Run }>('POST', `/api/runs/${gate.run.id}/resume`, {
      reason: 'approved on the phone',
      gate: 'approve',
    });
    expect(resumed.status).toBe(200);
    const killed = await h.api<{ run: Run }>('POST', `/api/runs/${cap.run.id}/kill`, { reason: 'stop' });
    expect(killed.status).toBe(200);
    const closed = (id: string) =>
      waitFor(`approval ${id} closed`, async () => {
        const a = (await getItem(id)).body.approval;
        return a.state === 'pending' ? undefined : a;
      });
    const [g, c] = await Promise.all([closed(gate.item.id), closed(cap.item.id)]);
    expect(g).toMatchObject({ state: 'approved', decision: { actor: 'chokepoint' } });
    expect(c).toMatchObject({ state: 'killed', decision: { actor: 'chokepoint' } });
    const late = await decide(g.id, 'deny', { reason: 'too late' });
    expect(late.status).toBe(409);
    expect((await settled(gate.run.id)).run.state).toBe('done');
  });

  it('a decision on an item whose run already moved on is a 409 that names the run state; nothing is audited', async () => {
    const gate = await suspend('gated');
    // Kill the run underneath the item, then decide at once: before or after the item's own
    // closing lands, the decision is refused and never audited as taken.
    const killed = await h.api('POST', `/api/runs/${gate.run.id}/kill`, { reason: 'stop it' });
    const late = await decide(gate.item.id, 'approve', { reason: 'go' });
    expect(killed.status).toBe(200);
    expect(late.status).toBe(409);
    expect(JSON.stringify(late.body)).toMatch(/no longer applies: run \S+ is killed|already killed/);
    const audit = await h.api<{ entries: { action: string }[] }>(
      'GET',
      `/api/audit?target=run:${gate.run.id}`,
    );
    expect(audit.body.entries.filter((e) => e.action === 'approval.approve')).toEqual([]);
    expect((await settled(gate.run.id)).run.state).toBe('killed');
  });

  it('a run that moves on between the check and the decision: a 409, audited as not applied, never as taken', async () => {
    const gate = await suspend('gated');
    // Interleave a kill at the worst moment: after the decision's compare-and-set, before it is
    // applied (the window a decision and a kill from elsewhere can race in).
    const store = h.rt.approvals!.store;
    const cas = store.decide.bind(store);
    let interleaved = false;
    store.decide = async (id, d) => {
      const item = await cas(id, d);
      if (!interleaved && id === gate.item.id) {
        interleaved = true;
        await h.rt.runs!.kill(gate.run.id, { actor: 'elsewhere', reason: 'killed from elsewhere' });
      }
      return item;
    };
    try {
      const late = await decide(gate.item.id, 'approve', { reason: 'go' });
      expect(late.status).toBe(409);
      expect(late.body.error.message).toMatch(
        new RegExp(`approval ${gate.item.id.replace('.', '\\.')} was not approved: run \\S+ is killed`),
      );
    } finally {
      store.decide = cas;
    }
    const audit = await h.api<{ entries: Audit[] }>('GET', `/api/audit?target=run:${gate.run.id}`);
    const actions = audit.body.entries.map((e) => e.action);
    expect(actions).not.toContain('approval.approve');
    const note = audit.body.entries.find((e) => e.action === 'approval.not_applied');
    expect(note).toMatchObject({
      actor: 'chokepoint',
      before: { approval: gate.item.id, action: 'approve', by: 'oncall' },
      after: { approval: gate.item.id, run: 'killed' },
    });
    // The item says what happened to the run, not the decision that did nothing.
    expect((await getItem(gate.item.id)).body.approval).toMatchObject({
      state: 'killed',
      decision: { actor: 'chokepoint' },
    });
    expect((await settled(gate.run.id)).run.state).toBe('killed');
  });

  it('a session past its session time box waits in the inbox; approving it lets the next call through', async () => {
    const seat = `agent-${backend}`;
    const created = await h.api<{ key: string; record: { id: string } }>('POST', '/api/keys', {
      team: 'sessions',
      env: 'prod',
      seat,
      sessionTimeBox: '1s',
    });
    expect(created.status).toBe(201);
    const client = new Anthropic({ baseURL: h.url, apiKey: created.body.key, maxRetries: 0 });
    const call = () =>
      client.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 16,
        messages: [{ role: 'user', content: 'Hello' }],
      });
    const refusal = async () => {
      try {
        await call();
      } catch (err) {
        return err as InstanceType<typeof Anthropic.APIError>;
      }
      throw new Error('expected the call to be refused');
    };

    const t0 = Date.now();
    await call();
    let refused: InstanceType<typeof Anthropic.APIError> | undefined;
    let ok = 1;
    while (!refused && Date.now() - t0 < 5000) {
      await sleep(150);
      try {
        await call();
        ok++;
      } catch (err) {
        refused = err as InstanceType<typeof Anthropic.APIError>;
      }
    }
    expect(refused).toBeInstanceOf(Anthropic.APIError);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(ok).toBeGreaterThanOrEqual(3);
    expect(refused!.status).toBe(429);
    const body = refused!.error as ErrorBody;
    expect(body.chokepoint.code).toBe('time_box_exceeded');
    const sessionId = `${created.body.record.id}.auto`;
    expect(body.chokepoint).toMatchObject({ session: sessionId, approval: `${sessionId}.1` });

    const item = await pendingItem(`${sessionId}.1`);
    expect(item).toMatchObject({
      kind: 'session',
      reason: 'session_time_box',
      run: sessionId,
      state: 'pending',
      startedBy: { team: 'sessions', env: 'prod', seat },
    });
    expect(item.summary).toMatch(/^session time box: ran \d+(\.\d)?s of 1s$/);
    const listed = await h.api<{ approvals: Item[] }>('GET', '/api/approvals?reason=session_time_box');
    expect(listed.body.approvals.map((a) => a.id)).toContain(item.id);

    const still = await refusal();
    expect(still.status).toBe(429);
    expect((still.error as ErrorBody).chokepoint.code).toBe('time_box_exceeded');
    expect((still.error as ErrorBody).error.message).toContain('waits for a human');

    const approved = await decide(item.id, 'approve', { reason: 'let it finish' });
    expect(approved.status).toBe(200);
    expect(approved.body.approval.state).toBe('approved');
    const answer = await call();
    expect(answer.content[0]).toMatchObject({ type: 'text' });

    // The approval restarted the clock: a second second later the box runs out again. A session
    // has no spend box, so an extend must add time; with time it goes on.
    const second = await waitFor('the session box to run out again', async () => {
      await sleep(150);
      try {
        await call();
        return undefined;
      } catch (err) {
        return err as InstanceType<typeof Anthropic.APIError>;
      }
    });
    expect((second.error as ErrorBody).chokepoint).toMatchObject({
      code: 'time_box_exceeded',
      approval: `${sessionId}.2`,
    });
    const item2 = await pendingItem(`${sessionId}.2`);
    const spendOnly = await decide(item2.id, 'extend', { reason: 'more money', spend: '+$1' });
    expect(spendOnly.status).toBe(400);
    expect(spendOnly.body.chokepoint.field).toBe('spend');
    expect(spendOnly.body.error.message).toContain('a session has no spend box');
    expect((await getItem(item2.id)).body.approval.state).toBe('pending');
    const extended = await decide(item2.id, 'extend', { reason: 'ten more minutes', time: '+10m' });
    expect(extended.status).toBe(200);
    expect(extended.body.approval).toMatchObject({ state: 'extended', decision: { addTimeMs: 600_000 } });
    await call();

    const ledger = await h.api<{ entries: { code?: string; identity: { seat: string }; outcome: string }[] }>(
      'GET',
      '/api/ledger?outcome=refused&limit=1000',
    );
    const mine = ledger.body.entries.filter((e) => e.identity.seat === seat);
    expect(mine.map((e) => e.code)).toEqual(['time_box_exceeded', 'time_box_exceeded', 'time_box_exceeded']);
    expect(await audit(sessionId)).toEqual([]);
    const sessionAudit = await h.api<{ entries: Audit[] }>('GET', `/api/audit?target=session:${sessionId}`);
    expect(sessionAudit.body.entries.map((e) => [e.action, e.actor])).toEqual([
      ['approval.extend', 'oncall'],
      ['approval.approve', 'oncall'],
    ]);
  });
});

describe.each(['embedded', 'redis'] as Backend[])('approvals expiry (%s backend)', (backend) => {
  let expire: Harness;
  let deny: Harness;
  beforeAll(async () => {
    [expire, deny] = await Promise.all([
      startHarness({ backend, workflows: WORKFLOWS, config: { approvals: { timeout: '1s' } } }),
      startHarness({
        backend,
        workflows: WORKFLOWS,
        config: { approvals: { timeout: '1s', onTimeout: 'deny' } },
      }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([expire?.close(), deny?.close()]);
  });

  it.each([
    ['expire', 'expired'],
    ['deny', 'denied'],
  ])(
    'an item nobody decides within approvals.timeout expires; onTimeout %s ends the run %s',
    async (mode, runState) => {
      const h = mode === 'expire' ? expire : deny;
      const started = await h.api<{ run: Run }>('POST', '/api/runs', {
        workflow: 'gated',
        input: { task: TASKS.gated },
        wait: 20,
      });
      const runId = started.body.run.id;
      expect(started.body.run.state).toBe('suspended');
      const id = `${runId}.1`;
      const item = await waitFor('the item', async () => {
        const r = await h.api<{ approval: Item }>('GET', `/api/approvals/${id}`);
        return r.status === 200 ? r.body.approval : undefined;
      });
      expect(item.state).toBe('pending');
      expect(Date.parse(item.expiresAt) - Date.parse(item.createdAt)).toBe(1000);
      const expired = await waitFor(
        'the item to expire',
        async () => {
          const r = await h.api<{ approval: Item }>('GET', `/api/approvals/${id}`);
          return r.body.approval.state === 'pending' ? undefined : r.body.approval;
        },
        10_000,
      );
      expect(expired).toMatchObject({
        state: 'expired',
        decision: { action: 'expire', actor: 'chokepoint' },
      });
      expect(Date.parse(expired.decision!.at)).toBeGreaterThanOrEqual(Date.parse(item.expiresAt));
      const run = await waitFor('the run to end', async () => {
        const r = await h.api<{ run: Run }>('GET', `/api/runs/${runId}`);
        return r.body.run.state === 'suspended' ? undefined : r.body.run;
      });
      expect(run).toMatchObject({
        state: runState,
        detail: { by: 'chokepoint', suspendedFor: 'approval_required' },
      });
      const late = await h.api<ErrorBody>('POST', `/api/approvals/${id}/approve`, { reason: 'late' });
      expect(late.status).toBe(409);
      expect(late.body.error.message).toContain('already expired');
      const audit = await h.api<{ entries: Audit[] }>('GET', `/api/audit?target=run:${runId}`);
      expect(audit.body.entries.filter((e) => e.action.startsWith('approval.'))).toEqual([
        expect.objectContaining({ action: 'approval.expire', actor: 'chokepoint' }),
      ]);
    },
  );
});

describe('live events across processes (redis backend)', () => {
  // Two replicas on one Redis: `worker` runs the runs, `front` has no workers (as `serve
  // --no-workers`). The inbox served by `front` sees the runs change state on `worker`.
  const prefix = `{cpt-events-${process.pid}-${Date.now() % 100000}}`;
  let worker: Harness;
  let front: Harness;
  beforeAll(async () => {
    worker = await startHarness({ backend: 'redis', prefix, workflows: WORKFLOWS, config: OPERATORS });
    front = await startHarness({
      backend: 'redis',
      prefix,
      workflows: WORKFLOWS,
      config: { ...OPERATORS, workers: { enabled: false } },
    });
  });
  afterAll(async () => {
    await Promise.all([front?.close(), worker?.close()]);
  });

  it('GET /events on a replica without workers streams the run changes another process makes', async () => {
    const events = await openEvents(front.url);
    try {
      await events.take((e) => e.event === 'ready');
      const started = await front.api<{ run: Run }>('POST', '/api/runs', {
        workflow: 'gated',
        input: { task: TASKS.gated },
      });
      expect(started.status).toBe(201);
      const id = started.body.run.id;
      await events.take((e) => e.event === 'run' && e.data.id === id && e.data.state === 'suspended');
      await events.take(
        (e) => e.event === 'approval' && e.data.id === `${id}.1` && e.data.state === 'pending',
      );
      const r = await front.api('POST', `/api/approvals/${id}.1/approve`, { reason: 'fine' }, OPERATOR_TOKEN);
      expect(r.status).toBe(200);
      await events.take((e) => e.event === 'run' && e.data.id === id && e.data.state === 'done');
      // Each change arrives once, though it went through Redis.
      expect(
        events.seen.filter((e) => e.event === 'run' && e.data.id === id && e.data.state === 'done'),
      ).toHaveLength(1);
    } finally {
      events.close();
    }
  });
});
