import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Services } from '../../../runtime/compose.ts';
import { allowedTeams } from '../../../runtime/faces/api/runs.ts';
import {
  type Backend,
  type Harness,
  OPERATOR_TOKEN,
  OPERATORS,
  startHarness,
  VIEWER_TOKEN,
} from '../../helpers/harness.ts';

/** The workflow runs API on a real server over real HTTP, with small agents run on the emulator. */

const LOOKUP = '[[emulator:tool_use lookup={"order":"A1"}]]';
const CLASSES = { routing: { classes: { cheap: ['claude-haiku-4-5'], standard: ['claude-sonnet-4-6'] } } };

/** An agent file: its tool echoes `echo` back (an emulator directive there makes it loop). */
const agent = (id: string, opts: { version?: number; steps?: number; echo?: string } = {}) => `
import { defineAgent, z } from 'chokepoint/workflow';
export default defineAgent({
  id: ${JSON.stringify(id)}, version: ${opts.version ?? 1}, description: 'test agent ${id}',
  input: z.object({ task: z.string().min(1) }),
  system: 'You are the ${id} agent (v${opts.version ?? 1}).',
  tools: {
    lookup: {
      description: 'Looks up an order',
      input_schema: z.object({ order: z.string() }),
      run: ({ order }) => 'order ' + order + ': shipped ' + ${JSON.stringify(opts.echo ?? '')},
    },
  },
  limits: { spend: '$1.00', time: '1m', steps: ${opts.steps ?? 20} },
  task: (i) => i.task,
});
`;

/** A temp workflows folder: echo (v1 and v2), looper (step cap 3) and one broken file. */
function writeTestWorkflows(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cp-runs-api-'));
  writeFileSync(join(dir, 'echo.ts'), agent('echo'));
  writeFileSync(join(dir, 'echo-v2.ts'), agent('echo', { version: 2 }));
  writeFileSync(join(dir, 'looper.ts'), agent('looper', { steps: 3, echo: LOOKUP }));
  writeFileSync(join(dir, 'broken.ts'), agent('broken').replace("spend: '$1.00'", "spend: 'lots'"));
  return dir;
}

interface Run {
  id: string;
  workflow: string;
  version: string;
  state: string;
  reason?: string;
  identity: Record<string, string>;
  steps: number;
  limits: { spend_usd: string; spend_micros: number; time_ms: number; steps: number };
  spent_usd: string;
  spent_micros: number;
  output?: unknown;
  input?: unknown;
  snapshot?: unknown;
  detail?: Record<string, unknown>;
  startedAt: string;
  endedAt: string | null;
}
interface ErrorBody {
  type: 'error';
  error: { type: string; message: string };
  chokepoint: { code: string; field?: string };
}

const waitFor = async (cond: () => Promise<boolean>, ms = 5000) => {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('timed out waiting');
};

describe('runs API (embedded backend)', () => {
  let h: Harness;
  let dir: string;

  beforeAll(async () => {
    dir = writeTestWorkflows();
    h = await startHarness({ workflows: dir, config: { ...CLASSES, ...OPERATORS } });
  });
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = (body: Record<string, unknown>, token?: string) =>
    h.api<{ run: Run } & ErrorBody>('POST', '/api/runs', body, token);
  const show = (id: string, wait = 0) =>
    h.api<{ run: Run; journal: Record<string, unknown>[]; spend: Record<string, unknown> } & ErrorBody>(
      'GET',
      `/api/runs/${id}${wait ? `?wait=${wait}` : ''}`,
    );

  it('GET /workflows lists the loaded versions (latest first) and the broken file with its field', async () => {
    const res = await h.api<{
      workflows: { id: string; version: string; latest: boolean; limits: { steps: number } }[];
      invalid: { file: string; problems: { field: string }[] }[];
    }>('GET', '/api/workflows', undefined, VIEWER_TOKEN);
    expect(res.status).toBe(200);
    expect(res.body.workflows.map((w) => [w.id, w.version, w.latest])).toEqual([
      ['echo', '2', true],
      ['echo', '1', false],
      ['looper', '1', true],
    ]);
    expect(res.body.invalid).toEqual([
      { file: 'broken.ts', problems: [expect.objectContaining({ field: 'limits.spend' })] },
    ]);
  });

  it('POST /runs starts a run (201) as runAs team/env with the operator as seat; GET ?wait= follows it to done', async () => {
    const res = await start({ workflow: 'echo', input: { task: `Where is A1? ${LOOKUP}` } });
    expect(res.status).toBe(201);
    expect(res.body.run).toMatchObject({
      id: expect.stringMatching(/^run_/),
      workflow: 'echo',
      version: '2',
      state: 'running',
      identity: { team: 'default', env: 'default', seat: 'admin', workflow: 'echo' },
      limits: { spend_usd: '1.00', spend_micros: 1_000_000, time_ms: 60_000, steps: 20 },
    });
    expect(res.body.run).not.toHaveProperty('snapshot');
    const done = await show(res.body.run.id, 10);
    expect(done.status).toBe(200);
    expect(done.body.run).toMatchObject({ state: 'done', steps: 3 });
  });

  it('POST /runs with wait returns the finished run with its output and spend; version pins an older one', async () => {
    const res = await start({
      workflow: 'echo',
      version: 1,
      input: { task: `Where is A1? ${LOOKUP}` },
      team: 'payments',
      env: 'prod',
      wait: 20,
    });
    expect(res.status).toBe(201);
    expect(res.body.run).toMatchObject({
      version: '1',
      state: 'done',
      steps: 3,
      identity: { team: 'payments', env: 'prod', seat: 'admin' },
      output: { answer: expect.stringContaining('Emulated reply after tool result') },
    });
    expect(res.body.run.spent_micros).toBeGreaterThan(0);
    expect(res.body.run.endedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('400 naming input.<field> when the input does not match the workflow schema', async () => {
    const res = await start({ workflow: 'echo', input: { task: 42 } });
    expect(res.status).toBe(400);
    expect(res.body.chokepoint).toEqual({ code: 'invalid_request', field: 'input.task' });
    expect(res.body.error.message).toMatch(/^input\.task: /);
    const empty = await start({ workflow: 'echo', input: {} });
    expect(empty.body.chokepoint.field).toBe('input.task');
  });

  it.each([
    [{ input: {} }, 'workflow'],
    [{ workflow: 'echo' }, 'input'],
    [{ workflow: 'echo', input: [] }, 'input'],
    [{ workflow: 'echo', input: {}, wait: 301 }, 'wait'],
    [{ workflow: 'echo', input: {}, wait: 'soon' }, 'wait'],
    [{ workflow: 'echo', input: {}, team: 'pay ments' }, 'team'],
    [{ workflow: 'echo', input: {}, version: true }, 'version'],
    [{ workflow: 'echo', input: {}, colour: 'blue' }, 'colour'],
  ])('400 for a bad body field: %j → %s', async (body, field) => {
    const res = await start(body);
    expect(res.status).toBe(400);
    expect(res.body.chokepoint).toMatchObject({ code: 'invalid_request', field });
    expect(res.body.error.message).toMatch(new RegExp(`^${field}: `));
  });

  it('400 for a body that is not a JSON object', async () => {
    const res = await fetch(`${h.url}/api/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).chokepoint.field).toBe('body');
  });

  it('404 for an unknown workflow, an unknown version and an unknown run', async () => {
    const [wf, version, run, kill, resume] = await Promise.all([
      start({ workflow: 'nope', input: {} }),
      start({ workflow: 'echo', version: '9', input: { task: 'x' } }),
      show('run_nope'),
      h.api<ErrorBody>('POST', '/api/runs/run_nope/kill', { reason: 'r' }),
      h.api<ErrorBody>('POST', '/api/runs/run_nope/resume', { reason: 'r' }),
    ]);
    for (const r of [wf, version, run, kill, resume]) {
      expect(r.status).toBe(404);
      expect(r.body.chokepoint.code).toBe('not_found');
    }
    expect(wf.body.error.message).toContain("no workflow 'nope'");
    expect(version.body.error.message).toContain("no workflow 'echo' version 9");
    expect(run.body.error.message).toContain('no run run_nope');
  });

  it('GET /runs filters by workflow, state and team and pages with a cursor', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await start({ workflow: 'echo', input: { task: `hello ${i}` }, team: 'listing', wait: 10 });
      expect(r.body.run.state).toBe('done');
      ids.push(r.body.run.id);
    }
    const p1 = await h.api<{ runs: Run[]; next?: string }>(
      'GET',
      '/api/runs?team=listing&limit=2',
      undefined,
      VIEWER_TOKEN,
    );
    expect(p1.status).toBe(200);
    expect(p1.body.runs).toHaveLength(2);
    expect(p1.body.next).toEqual(expect.any(String));
    const p2 = await h.api<{ runs: Run[]; next?: string }>(
      'GET',
      `/api/runs?team=listing&limit=2&cursor=${encodeURIComponent(p1.body.next!)}`,
    );
    expect(p2.body.runs).toHaveLength(1);
    expect(p2.body.next).toBeUndefined();
    const all = [...p1.body.runs, ...p2.body.runs];
    expect(all.map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(all[0]).not.toHaveProperty('input');
    expect(all[0]).not.toHaveProperty('snapshot');
    expect(all.every((r) => r.spent_micros > 0 && r.identity.team === 'listing')).toBe(true);

    const [byWorkflow, byState] = await Promise.all([
      h.api<{ runs: Run[] }>('GET', '/api/runs?workflow=looper&limit=1000'),
      h.api<{ runs: Run[] }>('GET', '/api/runs?state=done&team=listing'),
    ]);
    expect(byWorkflow.body.runs.every((r) => r.workflow === 'looper')).toBe(true);
    expect(byState.body.runs).toHaveLength(3);
  });

  it('400 naming the query field for a bad state or limit', async () => {
    const [state, limit, zero, wait] = await Promise.all([
      h.api<ErrorBody>('GET', '/api/runs?state=sleeping'),
      h.api<ErrorBody>('GET', '/api/runs?limit=lots'),
      h.api<ErrorBody>('GET', '/api/runs?limit=0'),
      h.api<ErrorBody>('GET', '/api/runs/run_x?wait=900'),
    ]);
    expect(state.status).toBe(400);
    expect(state.body.chokepoint).toEqual({ code: 'invalid_request', field: 'state' });
    expect(state.body.error.message).toContain('running, suspended, done');
    for (const r of [limit, zero]) {
      expect(r.status).toBe(400);
      expect(r.body.chokepoint.field).toBe('limit');
    }
    expect(wait.body.chokepoint.field).toBe('wait');
  });

  it('GET /runs/:id has the run (input, no snapshot), its journal with ledger ids, and the run budget', async () => {
    const started = await start({ workflow: 'echo', input: { task: `Check ${LOOKUP}` }, wait: 20 });
    const id = started.body.run.id;
    const res = await show(id);
    expect(res.status).toBe(200);
    expect(res.body.run).toMatchObject({ id, state: 'done', input: { task: `Check ${LOOKUP}` } });
    expect(res.body.run).not.toHaveProperty('snapshot');
    const ledger = (await h.rt.store.listLedger({ run: id, limit: 100 })).sort(
      (a, b) => a.at - b.at || a.id.localeCompare(b.id),
    );
    expect(res.body.journal.map((e) => [e.kind, e.name, e.ledgerId])).toEqual(
      ledger.map((e) => [e.kind, e.name, e.id]),
    );
    expect(res.body.journal.map((e) => e.kind)).toEqual(['model', 'tool', 'model']);
    expect(res.body.journal[1]).toMatchObject({
      at: expect.stringMatching(/Z$/),
      result: { content: 'order A1: shipped ', isError: false },
    });
    const spent = ledger.reduce((n, e) => n + e.cost, 0);
    expect(res.body.spend).toMatchObject({
      budget: `run:${id}`,
      spent_micros: spent,
      reserved_micros: 0,
      ceiling_micros: 1_000_000,
      ceiling_usd: '1.00',
    });
    expect(res.body.run.spent_micros).toBe(spent);
  });

  it('kills a slow run at once (killed, audited); a second kill is a 409', async () => {
    const started = await start(
      { workflow: 'echo', input: { task: 'Think [[emulator:latency=5000]]' }, reason: 'kill drill' },
      OPERATOR_TOKEN,
    );
    expect(started.status).toBe(201);
    const id = started.body.run.id;
    await waitFor(async () => Boolean((await h.rt.store.getBudget(`run:${id}`))?.reserved));
    const t0 = Date.now();
    const killed = await h.api<{ run: Run }>(
      'POST',
      `/api/runs/${id}/kill`,
      { reason: 'runaway' },
      OPERATOR_TOKEN,
    );
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(killed.status).toBe(200);
    expect(killed.body.run).toMatchObject({
      state: 'killed',
      reason: 'killed',
      detail: { by: 'oncall', why: 'runaway' },
    });
    expect(killed.body.run.identity.seat).toBe('oncall');
    expect((await h.rt.store.getBudget(`run:${id}`))!.reserved).toBe(0);

    const again = await h.api<ErrorBody>('POST', `/api/runs/${id}/kill`, { reason: 'again' }, OPERATOR_TOKEN);
    expect(again.status).toBe(409);
    expect(again.body.chokepoint.code).toBe('conflict');
    expect(again.body.error.message).toContain('already ended (killed)');

    const noReason = await h.api<ErrorBody>('POST', `/api/runs/${id}/kill`, { reason: ' ' });
    expect(noReason.status).toBe(400);
    expect(noReason.body.chokepoint.field).toBe('reason');

    const audit = await h.api<{ entries: { action: string; actor: string; reason: string }[] }>(
      'GET',
      `/api/audit?target=run:${id}`,
    );
    expect(audit.body.entries.map((e) => [e.action, e.actor, e.reason])).toEqual([
      ['run.kill', 'oncall', 'runaway'],
      ['run.start', 'oncall', 'kill drill'],
    ]);
  });

  it('resumes a run suspended at its step cap: it runs again and stops at the next allowance', async () => {
    const started = await start({ workflow: 'looper', input: { task: `Loop ${LOOKUP}` }, wait: 20 });
    const id = started.body.run.id;
    expect(started.body.run).toMatchObject({ state: 'suspended', reason: 'step_cap', steps: 3 });
    expect(started.body.run.detail).toMatchObject({ steps: 3, stepCap: 3 });

    const bad = await Promise.all([
      h.api<ErrorBody>('POST', `/api/runs/${id}/resume`, {}),
      h.api<ErrorBody>('POST', `/api/runs/${id}/resume`, { reason: 'r', spend: 'lots' }),
      h.api<ErrorBody>('POST', `/api/runs/${id}/resume`, { reason: 'r', time: 'forever' }),
      h.api<ErrorBody>('POST', `/api/runs/${id}/resume`, { reason: 'r', gate: 'maybe' }),
      h.api<ErrorBody>('POST', `/api/runs/${id}/resume`, { reason: 'r', restartClock: 'yes' }),
    ]);
    expect(bad.map((r) => [r.status, r.body.chokepoint.field])).toEqual([
      [400, 'reason'],
      [400, 'spend'],
      [400, 'time'],
      [400, 'gate'],
      [400, 'restartClock'],
    ]);

    const resumed = await h.api<{ run: Run }>('POST', `/api/runs/${id}/resume`, {
      reason: 'one more round',
      spend: '$2.50',
      time: '10m',
      restartClock: true,
    });
    expect(resumed.status).toBe(200);
    expect(resumed.body.run).toMatchObject({
      state: 'running',
      limits: { spend_usd: '2.50', time_ms: 600_000, steps: 6 },
    });
    const after = await show(id, 20);
    expect(after.body.run).toMatchObject({ state: 'suspended', reason: 'step_cap', steps: 6 });
    expect(after.body.journal).toHaveLength(6);
    expect(after.body.spend).toMatchObject({ ceiling_usd: '2.50' });

    const audit = await h.api<{
      entries: { action: string; reason: string; after: Record<string, unknown> }[];
    }>('GET', `/api/audit?target=run:${id}`);
    expect(audit.body.entries[0]).toMatchObject({
      action: 'run.resume',
      reason: 'one more round',
      after: { state: 'running', restartClock: true, limits: { spend: 2_500_000, time: 600_000, steps: 6 } },
    });

    const killed = await h.api<{ run: Run }>('POST', `/api/runs/${id}/kill`, { reason: 'enough' });
    expect(killed.body.run.state).toBe('killed');
    const notSuspended = await h.api<ErrorBody>('POST', `/api/runs/${id}/resume`, { reason: 'again' });
    expect(notSuspended.status).toBe(409);
    expect(notSuspended.body.chokepoint.code).toBe('conflict');
    expect(notSuspended.body.error.message).toContain('not suspended');
  });

  it('a viewer can read but gets 403 on start, kill and resume; no token is a 401', async () => {
    const started = await start({ workflow: 'echo', input: { task: 'hi' }, wait: 10 });
    const id = started.body.run.id;
    const [list, get, wfs, create, kill, resume] = await Promise.all([
      h.api('GET', '/api/runs', undefined, VIEWER_TOKEN),
      h.api('GET', `/api/runs/${id}`, undefined, VIEWER_TOKEN),
      h.api('GET', '/api/workflows', undefined, VIEWER_TOKEN),
      start({ workflow: 'echo', input: { task: 'hi' } }, VIEWER_TOKEN),
      h.api<ErrorBody>('POST', `/api/runs/${id}/kill`, { reason: 'r' }, VIEWER_TOKEN),
      h.api<ErrorBody>('POST', `/api/runs/${id}/resume`, { reason: 'r' }, VIEWER_TOKEN),
    ]);
    for (const r of [list, get, wfs]) expect(r.status).toBe(200);
    for (const r of [create, kill, resume]) {
      expect(r.status).toBe(403);
      expect(r.body.chokepoint).toMatchObject({ code: 'forbidden', needed_role: 'operator' });
    }
    const anon = await fetch(`${h.url}/api/runs`);
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as ErrorBody).chokepoint.code).toBe('unauthenticated');
    const badToken = await h.api<ErrorBody>(
      'POST',
      '/api/runs',
      { workflow: 'echo', input: {} },
      'cpo_wrong',
    );
    expect(badToken.status).toBe(401);
  });

  it('an operator starts runs only under workflows.runAs.team; a new team name is a 403 and makes no budget', async () => {
    const own = await start({ workflow: 'echo', input: { task: 'hi' } }, OPERATOR_TOKEN);
    expect(own.status).toBe(201);
    expect(own.body.run.identity).toMatchObject({ team: 'default', seat: 'oncall' });
    const same = await start({ workflow: 'echo', input: { task: 'hi' }, team: 'default' }, OPERATOR_TOKEN);
    expect(same.status).toBe(201);
    const outside = await start(
      { workflow: 'echo', input: { task: 'hi' }, team: 'fresh-team-1' },
      OPERATOR_TOKEN,
    );
    expect(outside.status).toBe(403);
    expect(outside.body.chokepoint).toMatchObject({
      code: 'forbidden',
      field: 'team',
      allowed_teams: ['default'],
    });
    expect(outside.body.error.message).toContain(
      "operator 'oncall' may start runs only under team 'default'",
    );
    const budget = await h.rt.store.getBudget('team:fresh-team-1');
    expect(budget).toBeUndefined();
    // An admin may use any team.
    const admin = await start({ workflow: 'echo', input: { task: 'hi' }, team: 'fresh-team-2' });
    expect(admin.status).toBe(201);
  });

  it('every start is audited with the operator and the reason (a default one when none is given)', async () => {
    const res = await start({ workflow: 'echo', input: { task: 'hi' }, wait: 10 });
    const audit = await h.api<{ entries: Record<string, unknown>[] }>(
      'GET',
      `/api/audit?target=run:${res.body.run.id}`,
    );
    expect(audit.body.entries).toEqual([
      expect.objectContaining({
        actor: 'admin',
        action: 'run.start',
        reason: 'started echo@2',
        after: expect.objectContaining({ workflow: 'echo', version: '2' }),
      }),
    ]);
  });
});

describe('runs API on a server without workflows', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h?.close());

  it('answers 503 on every runs route, saying so', async () => {
    const res = await Promise.all([
      h.api<ErrorBody>('GET', '/api/workflows'),
      h.api<ErrorBody>('GET', '/api/runs'),
      h.api<ErrorBody>('POST', '/api/runs', { workflow: 'x', input: {} }),
      h.api<ErrorBody>('GET', '/api/runs/run_x'),
      h.api<ErrorBody>('POST', '/api/runs/run_x/kill', { reason: 'r' }),
      h.api<ErrorBody>('POST', '/api/runs/run_x/resume', { reason: 'r' }),
    ]);
    for (const r of res) {
      expect(r.status).toBe(503);
      expect(r.body.error.message).toContain('this server does not host workflows');
    }
    // The rest of the API is unaffected.
    expect((await h.api('GET', '/api/budgets')).status).toBe(200);
    expect((await h.api('GET', '/api/nothing-here')).status).toBe(404);
  });
});

describe('runs API with the shipped workflows folder', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ workflows: true, config: CLASSES });
  });
  afterAll(() => h?.close());

  it('runs the triage agent to done through POST /runs with wait', async () => {
    const wfs = await h.api<{ workflows: { id: string }[]; invalid: unknown[] }>('GET', '/api/workflows');
    expect(wfs.body.invalid).toEqual([]);
    expect(wfs.body.workflows.map((w) => w.id)).toContain('triage');
    const res = await h.api<{ run: Run }>('POST', '/api/runs', {
      workflow: 'triage',
      input: { ticket: 'Order A17 is late [[emulator:tool_use lookup_order={"order_id":"A17"}]]' },
      team: 'support',
      env: 'prod',
      wait: 30,
    });
    expect(res.status).toBe(201);
    expect(res.body.run).toMatchObject({ workflow: 'triage', state: 'done', steps: 3 });
    expect(res.body.run.output).toEqual({ answer: expect.any(String) });
    const detail = await h.api<{ journal: { kind: string; name: string }[] }>(
      'GET',
      `/api/runs/${res.body.run.id}`,
    );
    expect(detail.body.journal.map((e) => e.name)).toContain('lookup_order');
  });

  it('refund: suspends at its approval gate; resume with gate approve runs the gated tool to done', async () => {
    const started = await h.api<{ run: Run }>('POST', '/api/runs', {
      workflow: 'refund',
      input: { order_id: 'A-1001', reason: 'arrived broken' },
      wait: 30,
    });
    expect(started.body.run).toMatchObject({ state: 'suspended', reason: 'approval_required' });
    expect(started.body.run.detail).toMatchObject({ tool: 'issue_refund' });
    const id = started.body.run.id;
    const resumed = await h.api<{ run: Run }>('POST', `/api/runs/${id}/resume`, {
      reason: 'damaged on arrival, refund ok',
      gate: 'approve',
    });
    expect(resumed.status).toBe(200);
    const done = await h.api<{ run: Run; journal: { name: string }[] }>('GET', `/api/runs/${id}?wait=30`);
    expect(done.body.run.state).toBe('done');
    expect(done.body.journal.map((e) => e.name)).toContain('issue_refund');
  });

  it('names input.ticket for an empty ticket', async () => {
    const res = await h.api<ErrorBody>('POST', '/api/runs', { workflow: 'triage', input: { ticket: '' } });
    expect(res.status).toBe(400);
    expect(res.body.chokepoint.field).toBe('input.ticket');
  });
});

describe.each(['redis'] as Backend[])('runs API (%s backend)', (backend) => {
  let h: Harness;
  let dir: string;
  beforeAll(async () => {
    dir = writeTestWorkflows();
    h = await startHarness({ backend, workflows: dir, config: CLASSES });
  });
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts and waits to done, kills a slow run, and answers 409 to a second kill', async () => {
    const done = await h.api<{ run: Run }>('POST', '/api/runs', {
      workflow: 'echo',
      input: { task: `Where is A1? ${LOOKUP}` },
      wait: 20,
    });
    expect(done.status).toBe(201);
    expect(done.body.run).toMatchObject({ state: 'done', steps: 3 });
    expect(done.body.run.spent_micros).toBeGreaterThan(0);

    const slow = await h.api<{ run: Run }>('POST', '/api/runs', {
      workflow: 'echo',
      input: { task: 'Think [[emulator:latency=5000]]' },
    });
    const id = slow.body.run.id;
    await waitFor(async () => Boolean((await h.rt.store.getBudget(`run:${id}`))?.reserved));
    const killed = await h.api<{ run: Run }>('POST', `/api/runs/${id}/kill`, { reason: 'runaway' });
    expect(killed.status).toBe(200);
    expect(killed.body.run.state).toBe('killed');
    const again = await h.api<ErrorBody>('POST', `/api/runs/${id}/kill`, { reason: 'again' });
    expect(again.status).toBe(409);
    const listed = await h.api<{ runs: Run[] }>('GET', '/api/runs?state=killed');
    expect(listed.body.runs.map((r) => r.id)).toEqual([id]);
  });
});

describe('allowedTeams', () => {
  // `auth.operators[].teams` (the config schema carries it): the teams an operator may start runs under.
  const rt = {
    config: {
      operators: [
        { name: 'alice', role: 'operator', teams: ['payments', 'search'] },
        { name: 'bob', role: 'operator' },
        { name: 'root', role: 'admin', teams: ['payments'] },
      ],
      workflows: { runAs: { team: 'default', env: 'default' } },
    },
  } as unknown as Services;

  it('lists the teams of the operator entry, else runAs.team; admins any', () => {
    expect(allowedTeams(rt, { name: 'alice', role: 'operator' })).toEqual(['payments', 'search']);
    expect(allowedTeams(rt, { name: 'bob', role: 'operator' })).toEqual(['default']);
    expect(allowedTeams(rt, { name: 'admin', role: 'admin' })).toBe('any');
    expect(allowedTeams(rt, { name: 'root', role: 'admin' })).toBe('any');
    expect(allowedTeams(rt, { name: 'unknown', role: 'operator' })).toEqual(['default']);
  });
});
