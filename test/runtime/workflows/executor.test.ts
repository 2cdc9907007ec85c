import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryRunStore } from '../../../runtime/store/runs.ts';
import { defineAgent } from '../../../runtime/workflows/agent.ts';
import { WorkflowExecutor } from '../../../runtime/workflows/executor.ts';
import { type Harness, startHarness } from '../../helpers/harness.ts';

const WHO = { team: 'support', env: 'prod', seat: 'alice' };

/** An agent whose task text carries emulator directives, and whose tool can echo more of them. */
const agent = (opts: {
  id: string;
  limits?: { spend?: string; time?: string; steps?: number };
  system?: string;
  echo?: string;
  /** The lookup tool takes this long (and stops when aborted). */
  toolMs?: number;
}) =>
  defineAgent({
    id: opts.id,
    version: 1,
    description: 'test agent',
    input: z.object({ task: z.string() }),
    system: opts.system ?? `You are the ${opts.id} agent.`,
    tools: {
      lookup: {
        description: 'Looks up an order',
        input_schema: z.object({ order: z.string() }),
        run: async ({ order }: { order: string }, { signal }: { signal: AbortSignal }) => {
          if (opts.toolMs) {
            await new Promise((resolve, reject) => {
              const t = setTimeout(resolve, opts.toolMs);
              signal.addEventListener('abort', () => {
                clearTimeout(t);
                reject(new Error('aborted'));
              });
            });
          }
          return `order ${order}: shipped ${opts.echo ?? ''}`;
        },
      },
    },
    limits: { spend: '$1.00', time: '1m', steps: 20, ...opts.limits },
    task: (i) => i.task,
  });

const LOOKUP = '[[emulator:tool_use lookup={"order":"A1"}]]';

describe('workflow executor (real server, emulator provider)', () => {
  let h: Harness;
  let ex: WorkflowExecutor;

  beforeAll(async () => {
    h = await startHarness({ config: { routing: { classes: { cheap: ['claude-haiku-4-5'] } } } });
    ex = new WorkflowExecutor(h.rt);
  });
  afterAll(() => h.close());

  const ledger = (run: string) => h.rt.store.listLedger({ run, limit: 100 });

  it('runs a 3-step agent to done with one ledger entry per model and tool call', async () => {
    const w = agent({ id: 'three-step' });
    const started = await ex.start(w, { task: `Where is my order? ${LOOKUP}` }, WHO);
    const run = await ex.wait(started.id);
    expect(run.state).toBe('done');
    expect(run.output).toEqual({ answer: expect.stringContaining('Emulated reply after tool result') });
    expect(run.steps).toBe(3);
    const entries = (await ledger(run.id)).sort((a, b) => a.at - b.at || a.id.localeCompare(b.id));
    expect(entries.map((e) => [e.kind, e.name, e.outcome])).toEqual([
      ['model', 'claude-haiku-4-5', 'ok'],
      ['tool', 'lookup', 'ok'],
      ['model', 'claude-haiku-4-5', 'ok'],
    ]);
    expect(entries.every((e) => e.identity.run === run.id && e.identity.workflow === 'three-step')).toBe(
      true,
    );
    const box = await h.rt.store.getBudget(`run:${run.id}`);
    expect(box).toMatchObject({ ceiling: 1_000_000, window: 'total', reserved: 0 });
    expect(box!.spent).toBe(entries.reduce((n, e) => n + e.cost, 0));
    expect((await ex.runs.journal(run.id)).map((j) => j.ledgerId)).toEqual(entries.map((e) => e.id));
  });

  it('places the breakpoints so the second model call of a run reads the prefix from cache', async () => {
    const w = agent({ id: 'cached', system: `You triage tickets. ${'Policy line. '.repeat(1600)}` });
    const run = await ex.wait((await ex.start(w, { task: `Check ${LOOKUP}` }, WHO)).id);
    expect(run.state).toBe('done');
    const models = (await ledger(run.id)).filter((e) => e.kind === 'model').sort((a, b) => a.at - b.at);
    expect(models).toHaveLength(2);
    expect(models[0]!.tokens.cacheWrite5m).toBeGreaterThan(4096);
    expect(models[1]!.tokens.cacheRead).toBeGreaterThan(4096);
    expect(models[1]!.prefixHash).toBeDefined();
  });

  it('suspends on the spend box before overspending it', async () => {
    const w = agent({
      id: 'spender',
      limits: { spend: '$0.02', steps: 100 },
      echo: `${LOOKUP} [[emulator:output_tokens=900]]`,
    });
    const run = await ex.wait(
      (await ex.start(w, { task: `Go ${LOOKUP} [[emulator:output_tokens=900]]` }, WHO)).id,
    );
    expect(run).toMatchObject({ state: 'suspended', reason: 'spend_box' });
    expect(run.detail).toMatchObject({ spendBox: 20_000, budget: `run:${run.id}` });
    const entries = await ledger(run.id);
    const spent = entries.reduce((n, e) => n + e.cost, 0);
    expect(spent).toBeLessThanOrEqual(20_000);
    expect(run.detail!.spent).toBe(spent);
    expect(entries.filter((e) => e.outcome === 'refused').map((e) => e.code)).toEqual(['budget_exhausted']);
    expect(entries.filter((e) => e.kind === 'model' && e.outcome === 'ok').length).toBeGreaterThan(1);
  });

  it('suspends at the step cap', async () => {
    const w = agent({ id: 'looper', limits: { steps: 3 }, echo: LOOKUP });
    const run = await ex.wait((await ex.start(w, { task: `Loop ${LOOKUP}` }, WHO)).id);
    expect(run).toMatchObject({ state: 'suspended', reason: 'step_cap', steps: 3 });
    expect(run.detail).toMatchObject({ steps: 3, stepCap: 3 });
    expect(await ledger(run.id)).toHaveLength(3);
  });

  it('suspends at the time box; the model call in flight finishes and is journaled (billed once, known)', async () => {
    const w = agent({ id: 'slow', limits: { time: '800ms' } });
    const t0 = Date.now();
    const run = await ex.wait((await ex.start(w, { task: 'Think hard [[emulator:latency=1500]]' }, WHO)).id);
    // Aborting it would leave a call the provider bills and the ledger never learns the cost of.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(run).toMatchObject({ state: 'suspended', reason: 'time_box', steps: 1, detail: { timeBox: 800 } });
    const entries = await ledger(run.id);
    expect(entries.map((e) => e.outcome)).toEqual(['ok']);
    expect(entries[0]!.cost).toBeGreaterThan(0);
    expect((await ex.runs.journal(run.id)).map((j) => j.kind)).toEqual(['model']);
    expect((await h.rt.store.getBudget(`run:${run.id}`))!.reserved).toBe(0);
  });

  it('suspends at the time box aborting a tool call in flight; the resume runs the tool again', async () => {
    const w = agent({ id: 'slow-tool', limits: { time: '500ms' }, toolMs: 3_000 });
    const t0 = Date.now();
    const run = await ex.wait((await ex.start(w, { task: `Go ${LOOKUP}` }, WHO)).id);
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(run).toMatchObject({ state: 'suspended', reason: 'time_box', steps: 1 });
    // The tool call cut short left no journal entry: it is made again on resume.
    expect((await ex.runs.journal(run.id)).map((j) => j.kind)).toEqual(['model']);
  });

  it('kills a run at once, aborting its in-flight call and releasing the reservation', async () => {
    const w = agent({ id: 'doomed' });
    const { id } = await ex.start(w, { task: 'Think [[emulator:latency=5000]]' }, WHO);
    for (let i = 0; i < 200 && !(await h.rt.store.getBudget(`run:${id}`))?.reserved; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const t0 = Date.now();
    const run = await ex.kill(id, { actor: 'oncall', reason: 'runaway' });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(run).toMatchObject({
      state: 'killed',
      reason: 'killed',
      detail: { by: 'oncall', why: 'runaway' },
    });
    const entries = await ledger(id);
    expect(entries.map((e) => [e.kind, e.outcome, e.cost])).toEqual([['model', 'error', 0]]);
    expect((await h.rt.store.getBudget(`run:${id}`))!.reserved).toBe(0);
  });

  it('refuses input that does not match the schema, naming the field', async () => {
    await expect(ex.start(agent({ id: 'strict' }), { task: 42 }, WHO)).rejects.toThrow(/input\.task/);
  });
});

describe('the shipped workflows folder', () => {
  it('loads without problems and the triage agent runs end to end on the emulator', async () => {
    const { loadWorkflows } = await import('../../../runtime/workflows/loader.ts');
    const set = await loadWorkflows(new URL('../../../workflows', import.meta.url).pathname);
    expect(set.invalid).toEqual([]);
    const triage = set.get('triage')!;
    const h = await startHarness({ config: { routing: { classes: { cheap: ['claude-haiku-4-5'] } } } });
    try {
      const ex = new WorkflowExecutor(h.rt);
      const ticket =
        'My order O-7 is late. [[emulator:tool_use lookup_order={"order_id":"O-7"}]] [[emulator:tool_use set_priority={"priority":"urgent"}]]';
      const run = await ex.wait((await ex.start(triage, { ticket }, WHO)).id);
      expect(run.state).toBe('done');
      const entries = await h.rt.store.listLedger({ run: run.id });
      expect(entries.map((e) => e.name).sort()).toEqual([
        'claude-haiku-4-5',
        'claude-haiku-4-5',
        'lookup_order',
        'set_priority',
      ]);
    } finally {
      await h.close();
    }
  });
});

describe('resume, recovery and kill switches', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ config: { routing: { classes: { cheap: ['claude-haiku-4-5'] } } } });
  });
  afterAll(() => h.close());

  it('approving a time box restarts its clock; the call that finished past the box is not made again', async () => {
    const ex = new WorkflowExecutor(h.rt);
    const w = agent({ id: 'clocked', limits: { time: '400ms' } });
    const run = await ex.wait((await ex.start(w, { task: 'Slow [[emulator:latency=700]]' }, WHO)).id);
    expect(run).toMatchObject({ state: 'suspended', reason: 'time_box', suspensions: 1, steps: 1 });
    await ex.resume(run.id, w, { restartClock: true, limits: { time: 5_000 } });
    const done = await ex.wait(run.id);
    expect(done.state).toBe('done');
    expect(done.clockStart).toBeGreaterThan(run.clockStart);
    const entries = await h.rt.store.listLedger({ run: run.id });
    expect(entries.map((e) => e.outcome)).toEqual(['ok']);
    await ex.close();
  });

  it('approving a step cap grants the step allowance again', async () => {
    const ex = new WorkflowExecutor(h.rt);
    const w = agent({ id: 'capped', limits: { steps: 2 } });
    const run = await ex.wait((await ex.start(w, { task: `Go ${LOOKUP}` }, WHO)).id);
    expect(run).toMatchObject({ state: 'suspended', reason: 'step_cap', steps: 2 });
    await expect(ex.resume(run.id, agent({ id: 'other' }))).rejects.toThrow(/pinned to capped@1/);
    await ex.resume(run.id, w, { by: { actor: 'alice', reason: 'one more' } });
    const done = await ex.wait(run.id);
    expect(done).toMatchObject({ state: 'done', steps: 3, limits: { steps: 4 } });
    await expect(ex.resume(run.id, w)).rejects.toThrow(/is done, not suspended/);
    await ex.close();
  });

  it('a kill switch flipped while a call is in flight stops the run at once', async () => {
    const ex = new WorkflowExecutor(h.rt, { killPollMs: 50 });
    const w = agent({ id: 'switched' });
    const { id } = await ex.start(
      w,
      { task: 'Think [[emulator:latency=5000]]' },
      { ...WHO, team: 'kill-me' },
    );
    for (let i = 0; i < 200 && !(await h.rt.store.getBudget(`run:${id}`))?.reserved; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const t0 = Date.now();
    await h.rt.store.setKill('team:kill-me', { actor: 'oncall', reason: 'runaway team' });
    const run = await ex.wait(id);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(run).toMatchObject({ state: 'killed', reason: 'kill_switch', detail: { scope: 'team:kill-me' } });
    expect((await h.rt.store.getBudget(`run:${id}`))!.reserved).toBe(0);
    await h.rt.store.liftKill('team:kill-me', { actor: 'oncall', reason: 'done' });
    await ex.close();
  });

  it('raises the cache alarm for a run whose cache hit rate falls below what its prefix allows', async () => {
    const ex = new WorkflowExecutor(h.rt);
    const w = defineAgent({
      id: 'cache-buster',
      version: 1,
      description: 'a tool that empties the provider cache every turn',
      input: z.object({ task: z.string() }),
      system: `You look things up. ${'Policy line. '.repeat(1600)}`,
      tools: {
        lookup: {
          description: 'Looks up an order',
          input_schema: z.object({ order: z.string() }),
          run: () => {
            h.rt.emulator!.resetCache();
            return `shipped ${LOOKUP}`;
          },
        },
      },
      limits: { spend: '$1.00', time: '1m', steps: 16 },
      task: (i) => i.task,
    });
    const run = await ex.wait((await ex.start(w, { task: `Go ${LOOKUP}` }, WHO)).id);
    expect(run).toMatchObject({ state: 'suspended', reason: 'step_cap' });
    const alarms = await h.rt.events.list({ kind: 'cache_hit_rate' });
    expect(alarms.find((a) => a.subject === `run:${run.id}`)).toBeDefined();
    await ex.close();
  });

  it('refuses a changed prompt under a version that already ran, across executors sharing a store', async () => {
    const runs = new MemoryRunStore();
    const a = new WorkflowExecutor(h.rt, { runs });
    await a.wait((await a.start(agent({ id: 'frozen' }), { task: 'hi' }, WHO)).id);
    await a.close();
    const b = new WorkflowExecutor(h.rt, { runs });
    await expect(
      b.start(agent({ id: 'frozen', system: 'A new prompt, same version' }), { task: 'hi' }, WHO),
    ).rejects.toThrow(/prefix_drift: frozen@1 was frozen with prefix/);
    await b.close();
  });

  it('hands live runs back on close; another executor recovers them from the last step without repeating a call', async () => {
    const runs = new MemoryRunStore();
    const a = new WorkflowExecutor(h.rt, { runs, leaseMs: 200 });
    const w = agent({ id: 'handed', echo: '[[emulator:latency=300]]' });
    const { id } = await a.start(w, { task: `Go ${LOOKUP}` }, WHO);
    // The first model call and the tool are journaled, the second model call is in flight.
    for (let i = 0; i < 200 && (await runs.journal(id)).length < 2; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await a.close();
    expect((await runs.get(id))!.state).toBe('running');
    const b = new WorkflowExecutor(h.rt, { runs, leaseMs: 200 });
    const { resumed } = await b.recover((wf, v) => (wf === w.id && v === w.version ? w : undefined));
    expect(resumed).toEqual([id]);
    const done = await b.wait(id);
    expect(done).toMatchObject({ state: 'done', steps: 3 });
    const entries = await h.rt.store.listLedger({ run: id });
    const ok = entries.filter((e) => e.outcome === 'ok');
    expect(ok.map((e) => e.kind).sort()).toEqual(['model', 'model', 'tool']);
    // The model call in flight at the hand-back finished and was journaled: nothing made twice.
    expect(entries.filter((e) => e.outcome !== 'ok')).toHaveLength(0);
    await b.close();
  });
});
