import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { McpPool } from '../../../adapters/mcp/client.ts';
import { MemoryRunStore } from '../../../runtime/store/runs.ts';
import { defineAgent } from '../../../runtime/workflows/agent.ts';
import {
  defineWorkflow,
  type McpServerSpec,
  runtimeActors,
  type ToolInput,
  type ToolOutput,
  type Workflow,
} from '../../../runtime/workflows/define.ts';
import { WorkflowExecutor } from '../../../runtime/workflows/executor.ts';
import { RunHost } from '../../../runtime/workflows/host.ts';
import { loadWorkflows } from '../../../runtime/workflows/loader.ts';
import { connectMcp, globMatch, truncateResult } from '../../../runtime/workflows/mcp-tools.ts';
import { freezePrefix, McpNotConnectedError } from '../../../runtime/workflows/prompt.ts';
import { type Harness, startHarness } from '../../helpers/harness.ts';

/** Workflows calling tools of a real MCP server (the example ticket server, a child process). */

const ROOT = join(import.meta.dirname, '../../..');
const SERVER = {
  command: process.execPath,
  args: ['bin/run-ts.js', 'adapters/mcp/examples/tickets-server.ts', '--test-tools'],
  cwd: ROOT,
};
const WHO = { team: 'support', env: 'prod', seat: 'alice' };
const ALLOWED = ['search_*', 'get_ticket', 'create_ticket'];

/** A machine that makes the tool calls of its input, one after the other (no model). */
const callsInput = z.object({
  calls: z.array(z.object({ name: z.string(), input: z.unknown(), toolUseId: z.string().optional() })),
});
const callsMachine = setup({
  types: {
    context: {} as { calls: ToolInput[]; results: ToolOutput[] },
    input: {} as z.output<typeof callsInput>,
  },
  actors: runtimeActors,
}).createMachine({
  context: ({ input }) => ({ calls: input.calls as ToolInput[], results: [] }),
  initial: 'next',
  states: {
    next: {
      always: [
        { guard: ({ context }) => context.results.length >= context.calls.length, target: 'done' },
        { target: 'call' },
      ],
    },
    call: {
      invoke: {
        src: 'tool',
        input: ({ context }) => context.calls[context.results.length]!,
        onDone: {
          target: 'next',
          actions: assign({ results: ({ context, event }) => [...context.results, event.output] }),
        },
      },
    },
    done: { type: 'final' },
  },
  output: ({ context }) => ({ results: context.results }),
});

const calls = (id: string, opts: { server?: Partial<McpServerSpec>; spend?: string; time?: string } = {}) =>
  defineWorkflow({
    id,
    version: 1,
    description: 'makes MCP tool calls',
    input: callsInput,
    prefix: { system: 'You call tools.' },
    models: { default: 'cheap' },
    limits: { spend: opts.spend ?? '$1.00', time: opts.time ?? '1m', steps: 20 },
    mcp: [
      {
        name: 'tickets',
        stdio: SERVER,
        tools: [...ALLOWED, 'slow', 'slow_create_ticket', 'big'],
        ...opts.server,
      },
    ],
    machine: callsMachine,
  });

const call = (name: string, input: unknown, i = 0) => ({ name, input, toolUseId: `c${i}` });

describe('MCP tools in workflow runs (real MCP server, emulator provider)', () => {
  let h: Harness;
  let ex: WorkflowExecutor;
  const pool = new McpPool();

  beforeAll(async () => {
    h = await startHarness({
      config: { routing: { classes: { cheap: ['claude-haiku-4-5'] } }, mcp: { maxResultBytes: 1000 } },
    });
    ex = new WorkflowExecutor(h.rt);
  });
  afterAll(async () => {
    await ex.close();
    await pool.close();
    await h.close();
  });

  const bind = async (w: Workflow) => {
    const r = await connectMcp(w, pool);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    return r.workflow;
  };
  const ledger = async (run: string) =>
    (await h.rt.store.listLedger({ run, limit: 100 })).sort(
      (a, b) => a.at - b.at || a.id.localeCompare(b.id),
    );
  const results = (output: unknown) => (output as { results: ToolOutput[] }).results;

  it('an agent calls MCP tools end to end: journal and ledger entries with duration and size', async () => {
    const w = await bind(
      defineAgent({
        id: 'mcp-agent',
        version: 1,
        description: 'searches tickets',
        input: z.object({ task: z.string() }),
        system: 'You look up tickets.',
        mcp: [{ name: 'tickets', stdio: SERVER, tools: ALLOWED }],
        limits: { spend: '$0.50', time: '1m', steps: 10 },
        task: (i) => i.task,
      }),
    );
    const task =
      'Anything about invoices? [[emulator:tool_use tickets__search_tickets={"query":"invoice"}]] ' +
      '[[emulator:tool_use tickets__get_ticket={"id":"T-1002"}]]';
    const run = await ex.wait((await ex.start(w, { task }, WHO)).id);
    expect(run.state).toBe('done');
    expect((run.output as { answer: string }).answer).toMatch(/Emulated reply after tool result/);
    const entries = await ledger(run.id);
    expect(entries.map((e) => [e.kind, e.name, e.outcome])).toEqual([
      ['model', 'claude-haiku-4-5', 'ok'],
      ['tool', 'tickets__search_tickets', 'ok'],
      ['tool', 'tickets__get_ticket', 'ok'],
      ['model', 'claude-haiku-4-5', 'ok'],
    ]);
    const journal = await ex.runs.journal(run.id);
    expect(journal.map((j) => j.ledgerId)).toEqual(entries.map((e) => e.id));
    const search = journal.find((j) => j.name === 'tickets__search_tickets')!.result as ToolOutput;
    expect(JSON.parse(search.content).tickets).toEqual([expect.objectContaining({ id: 'T-1002' })]);
    for (const [i, e] of entries.entries()) {
      if (e.kind !== 'tool') continue;
      expect(e.bytes).toBe(Buffer.byteLength((journal[i]!.result as ToolOutput).content));
      expect(e.latencyMs).toBeGreaterThanOrEqual(0);
      expect(e).toMatchObject({ cost: 0, reserved: 0, identity: { workflow: 'mcp-agent', run: run.id } });
    }
  });

  it('refuses a tool outside the allow-list: an error result for the model, no call, a refused ledger entry', async () => {
    const w = await bind(calls('allow-list'));
    const connection = pool.get({ stdio: SERVER });
    const pid = connection.pid;
    const connects = connection.connects;
    const run = await ex.wait(
      (
        await ex.start(
          w,
          {
            calls: [
              call('tickets__crash', {}, 0),
              call('nope', {}, 1),
              call('toString', {}, 2),
              call('tickets__get_ticket', { id: 'T-1001' }, 3),
            ],
          },
          WHO,
        )
      ).id,
    );
    expect(run.state).toBe('done');
    const [crash, nope, proto, got] = results(run.output);
    for (const r of [crash, nope, proto]) {
      expect(r).toEqual({
        content: expect.stringMatching(/^tool not allowed: '.+' is not one of/),
        isError: true,
      });
    }
    expect(got!.isError).toBe(false);
    expect((await ledger(run.id)).map((e) => [e.name, e.outcome, e.code])).toEqual([
      ['tickets__crash', 'refused', 'tool_not_allowed'],
      ['nope', 'refused', 'tool_not_allowed'],
      ['toString', 'refused', 'tool_not_allowed'],
      ['tickets__get_ticket', 'ok', undefined],
    ]);
    // The server was never asked to crash.
    expect(connection.pid).toBe(pid);
    expect(connection.connects).toBe(connects);
  });

  it('reconnects when the server died between calls', async () => {
    const w = await bind(calls('reconnect'));
    const connection = pool.get({ stdio: SERVER });
    const pid = connection.pid!;
    process.kill(pid, 'SIGKILL');
    for (let i = 0; connection.connected && i < 250; i++) await new Promise((r) => setTimeout(r, 20));
    const run = await ex.wait(
      (await ex.start(w, { calls: [call('tickets__get_ticket', { id: 'T-1003' })] }, WHO)).id,
    );
    expect(run.state).toBe('done');
    expect(results(run.output)[0]!.isError).toBe(false);
    expect(connection.pid).not.toBe(pid);
  });

  it("the run's time box aborts a hung MCP tool call: suspended on time, recorded, not journaled", async () => {
    const w = await bind(calls('hung', { time: '800ms' }));
    const t0 = Date.now();
    const run = await ex.wait(
      (await ex.start(w, { calls: [call('tickets__slow', { ms: 60_000 })] }, WHO)).id,
    );
    expect(run).toMatchObject({ state: 'suspended', reason: 'time_box' });
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect((await ledger(run.id)).map((e) => [e.name, e.outcome, e.code])).toEqual([
      ['tickets__slow', 'error', 'aborted'],
    ]);
    // Not journaled: a resume calls it again.
    expect(await ex.runs.journal(run.id)).toEqual([]);
    expect((await ex.kill(run.id, { actor: 'alice', reason: 'done testing' })).state).toBe('killed');
  });

  it('a call the time box cut short is made again on resume with the same idempotency key: one ticket', async () => {
    const title = `printer on fire ${Date.now()}`;
    const w = await bind(calls('idempotent', { time: '800ms' }));
    const cut = await ex.wait(
      (await ex.start(w, { calls: [call('tickets__slow_create_ticket', { title, ms: 60_000 })] }, WHO)).id,
    );
    // The server opened the ticket, then the time box aborted the call before its answer.
    expect(cut).toMatchObject({ state: 'suspended', reason: 'time_box' });
    expect(await ex.runs.journal(cut.id)).toEqual([]);
    await ex.resume(cut.id, w, { restartClock: true, by: { actor: 'alice', reason: 'carry on' } });
    const done = await ex.wait(cut.id);
    expect(done.state).toBe('done');
    const made = JSON.parse(results(done.output)[0]!.content) as { id: string; title: string };
    expect(made.title).toBe(title);
    // Asked twice (two ledger entries), carried out once: the server knows one ticket by that title.
    expect((await ledger(cut.id)).map((e) => [e.name, e.outcome, e.code ?? null])).toEqual([
      ['tickets__slow_create_ticket', 'error', 'aborted'],
      ['tickets__slow_create_ticket', 'ok', null],
    ]);
    const search = await ex.wait(
      (
        await ex.start(
          await bind(calls('find')),
          { calls: [call('tickets__search_tickets', { query: title })] },
          WHO,
        )
      ).id,
    );
    const found = JSON.parse(results(search.output)[0]!.content) as {
      tickets: { id: string; title: string }[];
    };
    expect(found.tickets.filter((t) => t.title === title).map((t) => t.id)).toEqual([made.id]);
  });

  it('a kill aborts an MCP tool call in flight at once', async () => {
    const w = await bind(calls('killed-mid-call'));
    const started = await ex.start(w, { calls: [call('tickets__slow', { ms: 60_000 })] }, WHO);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const run = await ex.kill(started.id, { actor: 'alice', reason: 'hung' });
    expect(run.state).toBe('killed');
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect((await ledger(run.id)).map((e) => e.code)).toEqual(['aborted']);
  });

  it("the server entry's timeout: the model gets an error result and the run goes on", async () => {
    const w = await bind(calls('timeouts', { server: { timeout: '300ms' } }));
    const run = await ex.wait(
      (
        await ex.start(
          w,
          {
            calls: [
              call('tickets__slow', { ms: 10_000 }, 0),
              call('tickets__get_ticket', { id: 'T-1001' }, 1),
            ],
          },
          WHO,
        )
      ).id,
    );
    expect(run.state).toBe('done');
    const [slow, got] = results(run.output);
    expect(slow).toEqual({ content: expect.stringMatching(/timed out after 300 ms/), isError: true });
    expect(got!.isError).toBe(false);
    const entries = await ledger(run.id);
    expect(entries.map((e) => [e.name, e.outcome, e.code])).toEqual([
      ['tickets__slow', 'error', 'tool_timeout'],
      ['tickets__get_ticket', 'ok', undefined],
    ]);
    expect(entries[0]!.latencyMs).toBeGreaterThanOrEqual(290);
    expect((await ex.runs.journal(run.id)).map((j) => j.name)).toEqual([
      'tickets__slow',
      'tickets__get_ticket',
    ]);
  });

  it('truncates a result above mcp.maxResultBytes, saying so; the ledger keeps the full size', async () => {
    const w = await bind(calls('big'));
    const run = await ex.wait(
      (await ex.start(w, { calls: [call('tickets__big', { bytes: 5_000 })] }, WHO)).id,
    );
    const [big] = results(run.output);
    expect(big!.content).toBe(`${'x'.repeat(1000)}\n[truncated: 1000 of 5000 bytes]`);
    expect((await ledger(run.id))[0]).toMatchObject({ name: 'tickets__big', outcome: 'ok', bytes: 5_000 });
  });

  it('admits priced tools against the run budget: settled at their price; over the spend box the run suspends', async () => {
    const w = await bind(
      calls('priced', {
        spend: '$0.015',
        server: { price: { perCall: '$0.01', perTool: { search_tickets: '$0.002' } } },
      }),
    );
    const run = await ex.wait(
      (
        await ex.start(
          w,
          {
            calls: [
              call('tickets__search_tickets', { query: 'csv' }, 0),
              call('tickets__get_ticket', { id: 'T-1001' }, 1),
              call('tickets__get_ticket', { id: 'T-1002' }, 2),
            ],
          },
          WHO,
        )
      ).id,
    );
    expect(run).toMatchObject({ state: 'suspended', reason: 'spend_box' });
    expect(run.detail).toMatchObject({
      budget: `run:${run.id}`,
      nextCallMax: 10_000,
      tool: 'tickets__get_ticket',
      spent: 12_000,
      spendBox: 15_000,
    });
    expect((await ledger(run.id)).map((e) => [e.name, e.outcome, e.code, e.cost, e.reserved])).toEqual([
      ['tickets__search_tickets', 'ok', undefined, 2_000, 2_000],
      ['tickets__get_ticket', 'ok', undefined, 10_000, 10_000],
      ['tickets__get_ticket', 'refused', 'budget_exhausted', 0, 0],
    ]);
    expect(await h.rt.store.getBudget(`run:${run.id}`)).toMatchObject({ spent: 12_000, reserved: 0 });

    await ex.resume(run.id, w, { limits: { spend: 30_000 }, by: { actor: 'alice', reason: 'one more' } });
    const done = await ex.wait(run.id);
    expect(done.state).toBe('done');
    expect(results(done.output).map((r) => r.isError)).toEqual([false, false, false]);
    expect(await h.rt.store.getBudget(`run:${run.id}`)).toMatchObject({ spent: 22_000, reserved: 0 });
  });

  it('a workflow with MCP servers whose tools were never listed cannot run (fail closed)', async () => {
    const w = calls('unbound');
    expect(() => freezePrefix(w)).toThrow(McpNotConnectedError);
    await expect(ex.start(w, { calls: [] }, WHO)).rejects.toThrow(/never listed/);
  });
});

describe('MCP workflows through the run host: load, prefix, approval gates, load errors', () => {
  let h: Harness;
  let dir: string;
  let host: RunHost;

  const desk = `
import { defineAgent, z } from 'chokepoint/workflow';
export default defineAgent({
  id: 'desk', version: 1, description: 'files tickets',
  input: z.object({ task: z.string() }), system: 'You file tickets.',
  tools: { note: { description: 'Takes a note', input_schema: z.object({ text: z.string() }), run: () => 'noted' } },
  mcp: [{ name: 'tickets', stdio: ${JSON.stringify(SERVER)}, tools: ${JSON.stringify(ALLOWED)} }],
  approvals: ['tickets__create_ticket'],
  limits: { spend: '$0.50', time: '1m', steps: 10 }, task: (i) => i.task,
});
`;
  const variant = (id: string, mcp: string, extra = '') =>
    desk
      .replace("id: 'desk'", `id: '${id}'`)
      .replace(/mcp: \[.*\],\n/, `mcp: ${mcp},\n`)
      .replace("approvals: ['tickets__create_ticket'],", extra || 'approvals: [],');
  const server = (more: string) => `[{ name: 'tickets', stdio: ${JSON.stringify(SERVER)}, ${more} }]`;

  beforeAll(async () => {
    h = await startHarness({ config: { routing: { classes: { cheap: ['claude-haiku-4-5'] } } } });
    dir = mkdtempSync(join(tmpdir(), 'cp-mcp-'));
    const files: Record<string, string> = {
      'desk.ts': desk,
      'no-transport.ts': variant('no-transport', "[{ name: 'tickets', tools: ['get_ticket'] }]"),
      'bad-name.ts': variant('bad-name', "[{ name: 'two words', stdio: { command: 'x' }, tools: ['a'] }]"),
      'unreachable.ts': variant(
        'unreachable',
        `[{ name: 'tickets', stdio: { command: ${JSON.stringify(join(ROOT, 'no-such-server'))} }, tools: ['get_ticket'] }]`,
      ),
      'no-match.ts': variant('no-match', server("tools: ['get_ticket', 'delete_*']")),
      'gated-elsewhere.ts': variant(
        'gated-elsewhere',
        server("tools: ['get_ticket']"),
        "approvals: ['tickets__crash'],",
      ),
      'bad-price.ts': variant(
        'bad-price',
        server("tools: ['get_ticket'], price: { perTool: { crash: '$1' } }"),
      ),
    };
    for (const [f, src] of Object.entries(files)) writeFileSync(join(dir, f), src);
    host = await RunHost.open(h.rt, { dir, runs: new MemoryRunStore() });
  });
  afterAll(async () => {
    await host.close();
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists a bad mcp entry as invalid, naming the field; the others load', () => {
    const { workflows, invalid } = host.workflows();
    expect(workflows.map((w) => w.id)).toEqual(['desk']);
    const byFile = Object.fromEntries(invalid.map((i) => [i.file, i.problems]));
    expect(byFile).toEqual({
      'bad-name.ts': [{ field: 'mcp.0.name', message: expect.stringMatching(/letters and digits/) }],
      'bad-price.ts': [
        {
          field: 'mcp.0.price.perTool.crash',
          message: "'crash' is not an allowed tool of MCP server 'tickets'",
        },
      ],
      'gated-elsewhere.ts': [
        {
          field: 'approvals.0',
          message:
            "no tool named 'tickets__crash': the MCP tools this workflow may use are tickets__get_ticket",
        },
      ],
      'no-match.ts': [
        {
          field: 'mcp.0.tools.1',
          message: expect.stringMatching(
            /'delete_\*' matches no tool of MCP server 'tickets' \(it has: big, crash/,
          ),
        },
      ],
      'no-transport.ts': [
        { field: 'mcp.0.stdio', message: expect.stringMatching(/required: how to reach the server/) },
      ],
      'unreachable.ts': [
        {
          field: 'mcp.0.stdio',
          message: expect.stringMatching(
            /cannot list the tools of MCP server 'tickets': cannot connect .*no-such-server/,
          ),
        },
      ],
    });
  });

  it('puts only the allowed tools in the frozen prefix, sorted after the local ones; the hash is stable across loads', async () => {
    const info = host.workflows().workflows.find((w) => w.id === 'desk')!;
    expect(info.tools).toEqual([
      'note',
      'tickets__create_ticket',
      'tickets__get_ticket',
      'tickets__search_tickets',
    ]);
    const prefix = freezePrefix(host.workflow('desk'));
    expect(prefix.hash).toBe(info.prefixHash);
    expect(prefix.tools[3]).toEqual({
      name: 'tickets__search_tickets',
      description: 'Searches support tickets by words in their title or body; newest first',
      input_schema: expect.objectContaining({
        type: 'object',
        properties: expect.objectContaining({ query: expect.objectContaining({ type: 'string' }) }),
        required: ['query'],
      }),
    });
    // Reloaded (same pool), and loaded afresh by another process (its own pool and server).
    const reloaded = await host.reload();
    expect(reloaded.workflows.find((w) => w.id === 'desk')!.prefixHash).toBe(prefix.hash);
    const elsewhere = await loadWorkflows(dir, { fresh: 99 });
    try {
      expect(freezePrefix(elsewhere.get('desk')!).hash).toBe(prefix.hash);
    } finally {
      await elsewhere.close();
    }
  });

  it('gates an MCP tool: the run suspends, an approval lets the call run on the server', async () => {
    const go =
      'File it. [[emulator:tool_use tickets__create_ticket={"title":"Printer on fire","body":"send help","priority":"urgent"}]]';
    const run = await host.wait((await host.start('desk', { task: go }, WHO)).id);
    expect(run).toMatchObject({ state: 'suspended', reason: 'approval_required' });
    expect(run.detail).toMatchObject({
      tool: 'tickets__create_ticket',
      server: 'tickets',
      input: { title: 'Printer on fire' },
    });
    expect((await h.rt.store.listLedger({ run: run.id })).map((e) => e.kind)).toEqual(['model']);

    await host.resume(run.id, { gate: 'approve', by: { actor: 'bob', reason: 'real fire' } });
    const done = await host.wait(run.id);
    expect(done.state).toBe('done');
    const journal = await host.runs.journal(run.id);
    const created = JSON.parse(
      (journal.find((j) => j.name === 'tickets__create_ticket')!.result as ToolOutput).content,
    ) as { id: string };
    // It is on the server.
    const stored = await host.mcp.callTool({ stdio: SERVER }, 'get_ticket', { id: created.id });
    expect(JSON.parse(stored.content)).toMatchObject({ title: 'Printer on fire', priority: 'urgent' });
    const entry = (await h.rt.store.listLedger({ run: run.id })).find(
      (e) => e.name === 'tickets__create_ticket',
    );
    expect(entry).toMatchObject({ outcome: 'ok', bytes: stored.bytes });
  });

  it('a denied MCP call is not made: the model is told, the ledger says approval_denied', async () => {
    const go =
      'File it. [[emulator:tool_use tickets__create_ticket={"title":"Denied ticket","body":"nope","priority":"low"}]]';
    const run = await host.wait((await host.start('desk', { task: go }, WHO)).id);
    expect(run.reason).toBe('approval_required');
    await host.resume(run.id, { gate: 'deny', by: { actor: 'bob', reason: 'duplicate' } });
    expect((await host.wait(run.id)).state).toBe('done');
    const entry = (await h.rt.store.listLedger({ run: run.id })).find(
      (e) => e.name === 'tickets__create_ticket',
    );
    expect(entry).toMatchObject({ outcome: 'refused', code: 'approval_denied' });
    const found = await host.mcp.callTool({ stdio: SERVER }, 'search_tickets', { query: 'Denied' });
    expect(JSON.parse(found.content).tickets).toEqual([]);
  });
});

describe('a workflow whose MCP server is not up yet', () => {
  let h: Harness;
  let dir: string;
  let host: RunHost;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    h = await startHarness({
      config: { routing: { classes: { cheap: ['claude-haiku-4-5'] } }, mcp: { retry: '200ms' } },
    });
    dir = mkdtempSync(join(tmpdir(), 'cp-mcp-later-'));
  });
  afterAll(async () => {
    await host?.close();
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill();
      await exited;
    }
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is listed invalid while the server is down, and loads on its own once the server answers', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/mcp`;
    writeFileSync(
      join(dir, 'later.ts'),
      `
import { defineAgent, z } from 'chokepoint/workflow';
export default defineAgent({
  id: 'later', version: 1, description: 'waits for its server',
  input: z.object({ task: z.string() }), system: 'You read tickets.',
  mcp: [{ name: 'tickets', http: { url: ${JSON.stringify(url)} }, tools: ['get_ticket'] }],
  limits: { spend: '$0.10', time: '1m', steps: 4 }, task: (i) => i.task,
});
`,
    );
    host = await RunHost.open(h.rt, { dir, runs: new MemoryRunStore() });
    expect(host.workflows()).toEqual({
      workflows: [],
      invalid: [
        {
          file: 'later.ts',
          problems: [
            {
              field: 'mcp.0.http',
              message: expect.stringMatching(/cannot list the tools of MCP server 'tickets': cannot connect/),
            },
          ],
        },
      ],
    });
    child = spawn(process.execPath, [...SERVER.args, '--http', '--port', String(port)], {
      cwd: ROOT,
      stdio: 'ignore',
    });
    const end = Date.now() + 10_000;
    while (host.workflows().workflows.length === 0 && Date.now() < end)
      await new Promise((r) => setTimeout(r, 50));
    expect(host.workflows()).toEqual({
      workflows: [expect.objectContaining({ id: 'later', tools: ['tickets__get_ticket'] })],
      invalid: [],
    });
    const go = 'Read it [[emulator:tool_use tickets__get_ticket={"id":"T-1001"}]]';
    const run = await host.wait((await host.start('later', { task: go }, WHO)).id);
    expect(run.state).toBe('done');
    expect((await h.rt.store.listLedger({ run: run.id })).map((e) => e.name)).toContain(
      'tickets__get_ticket',
    );
  });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('MCP tool helpers', () => {
  it('globMatch: * and ?, everything else literal', () => {
    expect(globMatch('search_*', 'search_tickets')).toBe(true);
    expect(globMatch('search_*', 'research_tickets')).toBe(false);
    expect(globMatch('get_?', 'get_a')).toBe(true);
    expect(globMatch('a.b', 'axb')).toBe(false);
    expect(globMatch('create_ticket', 'create_ticket')).toBe(true);
  });

  it('truncateResult cuts on a character boundary and says how much was kept', () => {
    expect(truncateResult('short', 10)).toBe('short');
    expect(truncateResult('ééé', 3)).toBe('é\n[truncated: 2 of 6 bytes]');
  });

  it('rejects bad mcp entries at definition, naming the field', () => {
    const base = {
      id: 'x',
      version: 1,
      description: 'x',
      input: z.object({}),
      system: 's',
      limits: { spend: '$1', time: '1m', steps: 2 },
    };
    const problems = (mcp: unknown, extra: Record<string, unknown> = {}) => {
      try {
        defineAgent({ ...base, mcp: mcp as McpServerSpec[], ...extra });
        return [];
      } catch (err) {
        return (err as { problems: { field: string; message: string }[] }).problems;
      }
    };
    expect(
      problems([{ name: 't', stdio: { command: 'x' }, http: { url: 'http://a/mcp' }, tools: ['a'] }]),
    ).toEqual([{ field: 'mcp.0.http', message: 'give one transport: stdio or http, not both' }]);
    expect(problems([{ name: 't', http: { url: 'ftp://a' }, tools: ['a'] }])[0]!.field).toBe(
      'mcp.0.http.url',
    );
    expect(problems([{ name: 't', stdio: { command: 'x' }, tools: [] }])[0]!.field).toBe('mcp.0.tools');
    expect(problems([{ name: 't', stdio: { command: 'x' }, tools: ['a'], timeout: 'soon' }])[0]!.field).toBe(
      'mcp.0.timeout',
    );
    expect(
      problems([{ name: 't', stdio: { command: 'x' }, tools: ['a'], price: { perCall: 'free' } }])[0]!.field,
    ).toBe('mcp.0.price.perCall');
    expect(
      problems([
        { name: 't', stdio: { command: 'x' }, tools: ['a'] },
        { name: 't', stdio: { command: 'y' }, tools: ['a'] },
      ]),
    ).toEqual([{ field: 'mcp.1.name', message: "duplicate: another MCP server is named 't'" }]);
    expect(problems([{ name: 't', stdio: { command: 'x' }, tools: ['a'] }], { approvals: ['u__a'] })).toEqual(
      [
        {
          field: 'approvals.0',
          message: "no tool named 'u__a' in tools or of an MCP server (named <server>__<tool>: t)",
        },
      ],
    );
  });
});
