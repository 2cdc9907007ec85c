import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowExecutor } from '../../../runtime/workflows/executor.ts';
import { loadWorkflows, type WorkflowSet } from '../../../runtime/workflows/loader.ts';
import { freezePrefix } from '../../../runtime/workflows/prompt.ts';
import { type Backend, type Harness, startHarness } from '../../helpers/harness.ts';

/** The shipped example workflows, run end to end on the emulator through the executor. */

const WHO = { team: 'support', env: 'prod', seat: 'alice' };

describe.each<Backend>(['embedded', 'redis'])('the shipped example workflows (%s)', (backend) => {
  let h: Harness;
  let ex: WorkflowExecutor;
  let set: WorkflowSet;

  beforeAll(async () => {
    set = await loadWorkflows(new URL('../../../workflows', import.meta.url).pathname);
    h = await startHarness({
      backend,
      config: { routing: { classes: { cheap: ['claude-haiku-4-5'], standard: ['claude-sonnet-4-6'] } } },
    });
    ex = new WorkflowExecutor(h.rt, { runs: h.rt.backend.runs });
  });
  afterAll(async () => {
    await ex.close();
    await ex.runs.close();
    await set.close();
    await h.close();
  });

  const ledger = async (run: string) =>
    (await h.rt.store.listLedger({ run, limit: 1000 })).sort(
      (a, b) => a.at - b.at || a.id.localeCompare(b.id),
    );

  it('all load, each with its own prefix hash', () => {
    expect(set.invalid).toEqual([]);
    expect(
      set
        .list()
        .map((w) => w.id)
        .sort(),
    ).toEqual(['refund', 'research', 'support-desk', 'triage']);
  });

  it('research: would loop forever; the spend box suspends it, an extension lets it go on to the next box', async () => {
    const research = set.get('research')!;
    const started = await ex.start(research, { question: 'Why do agent bills surprise teams?' }, WHO);
    const run = await ex.wait(started.id);
    expect(run).toMatchObject({ state: 'suspended', reason: 'spend_box' });
    const entries = await ledger(run.id);
    const spent = entries.reduce((n, e) => n + e.cost, 0);
    expect(spent).toBeLessThanOrEqual(100_000);
    expect(run.detail).toMatchObject({ spent, spendBox: 100_000 });
    // It searched over and over (the emulator always picks the first tool): many steps, no finish.
    expect(entries.filter((e) => e.kind === 'tool' && e.name === 'search').length).toBeGreaterThan(5);
    // The conversation grows but the prefix and earlier turns are read from cache.
    const models = entries.filter((e) => e.kind === 'model' && e.outcome === 'ok');
    expect(models.at(-1)!.tokens.cacheRead).toBeGreaterThan(0);

    const resumed = await ex.resume(run.id, research, {
      limits: { spend: 150_000 },
      by: { actor: 'alice', reason: 'worth another nickel' },
    });
    expect(resumed.state).toBe('running');
    const again = await ex.wait(run.id);
    expect(again).toMatchObject({ state: 'suspended', reason: 'spend_box', suspensions: 2 });
    const total = (await ledger(run.id)).reduce((n, e) => n + e.cost, 0);
    expect(total).toBeGreaterThan(spent);
    expect(total).toBeLessThanOrEqual(150_000);
    expect((await h.rt.store.getBudget(`run:${run.id}`))!.ceiling).toBe(150_000);
    const killed = await ex.kill(run.id, { actor: 'alice', reason: 'enough' });
    expect(killed.state).toBe('killed');
  });

  it('refund: stops for a human before issue_refund; approved, the refund runs and the run finishes', async () => {
    const refund = set.get('refund')!;
    const started = await ex.start(refund, { order_id: 'A-1001', reason: 'arrived broken' }, WHO);
    const run = await ex.wait(started.id);
    expect(run).toMatchObject({ state: 'suspended', reason: 'approval_required' });
    // The emulated model names the order of the run's input and the total the lookup found.
    expect(run.detail).toMatchObject({
      tool: 'issue_refund',
      input: { order_id: 'A-1001', amount_usd: 120 },
    });
    expect((await ledger(run.id)).map((e) => [e.kind, e.name])).toEqual([
      ['model', 'claude-haiku-4-5'],
      ['tool', 'lookup_order'],
      ['model', 'claude-haiku-4-5'],
    ]);

    await ex.resume(run.id, refund, { gate: 'approve', by: { actor: 'bob', reason: 'policy ok' } });
    const done = await ex.wait(run.id);
    expect(done.state).toBe('done');
    expect((done.output as { answer: string }).answer).toMatch(/Emulated reply after tool result/);
    const entries = await ledger(run.id);
    expect(entries.map((e) => [e.kind, e.name, e.outcome])).toEqual([
      ['model', 'claude-haiku-4-5', 'ok'],
      ['tool', 'lookup_order', 'ok'],
      ['model', 'claude-haiku-4-5', 'ok'],
      ['tool', 'issue_refund', 'ok'],
      ['model', 'claude-haiku-4-5', 'ok'],
    ]);
    // The calls before the gate were answered from the journal on resume, not made again.
    expect((await ex.runs.journal(run.id)).map((j) => j.ledgerId)).toEqual(entries.map((e) => e.id));
  });

  it('support-desk: searches tickets on the MCP server, waits for a human before create_ticket, files it', async () => {
    const desk = set.get('support-desk')!;
    const prefix = freezePrefix(desk);
    expect(prefix.tools.map((t) => t.name)).toEqual([
      'tickets__create_ticket',
      'tickets__get_ticket',
      'tickets__search_tickets',
    ]);
    const started = await ex.start(
      desk,
      { customer: 'dana', request: 'My invoice shows an old VAT number' },
      WHO,
    );
    const run = await ex.wait(started.id);
    expect(run).toMatchObject({ state: 'suspended', reason: 'approval_required' });
    expect(run.detail).toMatchObject({ tool: 'tickets__create_ticket', server: 'tickets' });

    await ex.resume(run.id, desk, { gate: 'approve', by: { actor: 'bob', reason: 'fine' } });
    const done = await ex.wait(run.id);
    expect(done.state).toBe('done');
    const entries = await ledger(run.id);
    expect(entries.map((e) => [e.kind, e.name, e.outcome])).toEqual([
      ['model', 'claude-haiku-4-5', 'ok'],
      ['tool', 'tickets__search_tickets', 'ok'],
      ['model', 'claude-haiku-4-5', 'ok'],
      ['tool', 'tickets__create_ticket', 'ok'],
      ['model', 'claude-haiku-4-5', 'ok'],
    ]);
    for (const e of entries.filter((x) => x.kind === 'tool')) {
      expect(e.bytes).toBeGreaterThan(0);
      expect(e.latencyMs).toBeGreaterThanOrEqual(0);
    }
    const journal = await ex.runs.journal(run.id);
    const created = journal.find((j) => j.name === 'tickets__create_ticket')!.result as { content: string };
    expect(JSON.parse(created.content)).toMatchObject({
      id: expect.stringMatching(/^T-\d+$/),
      status: 'open',
    });
  });

  it('refund: denied, no money moves and the model is told the call was refused', async () => {
    const refund = set.get('refund')!;
    const run = await ex.wait((await ex.start(refund, { order_id: 'A-1002', reason: 'never came' }, WHO)).id);
    expect(run.reason).toBe('approval_required');
    await ex.resume(run.id, refund, { gate: 'deny', by: { actor: 'bob', reason: 'needs a claim first' } });
    const done = await ex.wait(run.id);
    expect(done.state).toBe('done');
    const gate = (await ledger(run.id)).find((e) => e.name === 'issue_refund')!;
    expect(gate).toMatchObject({ outcome: 'refused', code: 'approval_denied', cost: 0 });
    const journal = await ex.runs.journal(run.id);
    expect(journal.find((j) => j.name === 'issue_refund')!.result).toMatchObject({ isError: true });
  });
});
