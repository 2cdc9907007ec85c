import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  type CallToolResult,
  CallToolResultSchema,
  CreateTaskResultSchema,
  type Progress,
  ResourceUpdatedNotificationSchema,
  TaskStatusNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../runtime/config/load.ts';
import { startServer } from '../../../runtime/faces/http/server.ts';
import { createLogger } from '../../../runtime/log.ts';
import {
  ADMIN_TOKEN,
  type Harness,
  OPERATOR_TOKEN,
  OPERATORS,
  startHarness,
  VIEWER_TOKEN,
} from '../../helpers/harness.ts';
import { supportDeskLoop } from './flows.ts';

/**
 * Chokepoint as an MCP server, driven by the real MCP SDK client over streamable HTTP against a
 * real server hosting the shipped workflows on the emulator: tools, resources and subscriptions,
 * progress and cancellation, tasks, roles and audit.
 */

const CLASSES = { routing: { classes: { cheap: ['claude-haiku-4-5'], standard: ['claude-sonnet-4-6'] } } };

interface RunView {
  run: {
    id: string;
    state: string;
    reason?: string;
    steps: number;
    output?: unknown;
    identity: { seat: string };
    detail?: Record<string, unknown>;
  };
  spend: { spent_usd: string };
  time: { elapsed_ms: number; limit_ms: number };
  approval?: { id: string; state: string; reason: string };
  last_messages: { role: string; text: string }[];
}

const TRIAGE = { ticket: 'Order A17 is late [[emulator:tool_use lookup_order={"order_id":"A17"}]]' };
/** A triage run whose first model call takes `ms`. */
const slowTriage = (ms: number) => ({
  ticket: `Order A17 is late [[emulator:latency=${ms}]] [[emulator:tool_use lookup_order={"order_id":"A17"}]]`,
});
const REFUND = { order_id: 'A-1001', reason: 'arrived broken' };

let h: Harness;
const clients: Client[] = [];

async function connect(token: string | undefined = ADMIN_TOKEN): Promise<Client> {
  const client = new Client({ name: 'mcp-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${h.url}/mcp`), {
    requestInit: token ? { headers: { authorization: `Bearer ${token}` } } : {},
  });
  await client.connect(transport);
  clients.push(client);
  return client;
}

const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;
const structured = <T>(r: unknown) => (r as CallToolResult).structuredContent as T;

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  h = await startHarness({ workflows: true, config: { ...CLASSES, ...OPERATORS } });
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await h?.close();
});

describe('the MCP server at /mcp', () => {
  it('lists its tools (start_run may run as a task) and its resource templates', async () => {
    const client = await connect();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      'decide_approval',
      'get_run',
      'get_spend',
      'kill',
      'list_approvals',
      'list_runs',
      'list_workflows',
      'start_run',
    ]);
    expect(tools.find((t) => t.name === 'start_run')!.execution).toEqual({ taskSupport: 'optional' });
    expect(client.getServerCapabilities()).toMatchObject({
      resources: { subscribe: true },
      tasks: { requests: { tools: { call: {} } }, cancel: {} },
    });
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate).sort()).toEqual([
      'chokepoint://budgets/{scope}',
      'chokepoint://runs/{id}',
    ]);
    const wfs = structured<{ workflows: { id: string; input: unknown }[] }>(
      await client.callTool({ name: 'list_workflows', arguments: {} }),
    );
    expect(wfs.workflows.map((w) => w.id)).toEqual(expect.arrayContaining(['refund', 'triage']));
    expect(wfs.workflows.find((w) => w.id === 'refund')!.input).toMatchObject({
      required: ['order_id', 'reason'],
    });
  });

  it('start_run with wait follows the run to done, with progress every few seconds and on each step', async () => {
    const client = await connect(OPERATOR_TOKEN);
    const progress: (Progress & { at: number })[] = [];
    const started = Date.now();
    const res = await client.callTool(
      { name: 'start_run', arguments: { workflow: 'triage', input: slowTriage(4500), wait: true } },
      undefined,
      { onprogress: (p) => progress.push({ ...p, at: Date.now() }), resetTimeoutOnProgress: true },
    );
    expect(res.isError).toBeFalsy();
    const view = structured<RunView>(res);
    expect(view.run).toMatchObject({ state: 'done', steps: 3, identity: { seat: 'oncall' } });
    expect(view.run.output).toEqual({ answer: expect.any(String) });
    expect(view.last_messages.map((m) => m.role)).toContain('tool lookup_order');
    // At the start, at least every 2 s during the 4.5 s model call, then as it ends.
    expect(progress.length).toBeGreaterThanOrEqual(4);
    const times = [started, ...progress.map((p) => p.at)];
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(Math.max(...gaps)).toBeLessThan(3000);
    expect(progress.map((p) => p.progress)).toEqual(progress.map((_, i) => i + 1));
    expect(progress[0]!.message).toMatch(/^running: 0 steps, \$0\.00/);
    expect(progress.at(-1)!.message).toMatch(/^done: 3 steps/);
  });

  it('start_run without wait returns the run as started', async () => {
    const client = await connect();
    const view = structured<RunView>(
      await client.callTool({ name: 'start_run', arguments: { workflow: 'triage', input: TRIAGE } }),
    );
    expect(view.run.state).toBe('running');
    expect(view.run.identity.seat).toBe('admin');
  });

  it('an input the workflow schema refuses is a tool error naming the field', async () => {
    const client = await connect();
    const res = await client.callTool({
      name: 'start_run',
      arguments: { workflow: 'refund', input: { order_id: 'A-1001' }, wait: true },
    });
    expect(res.isError).toBe(true);
    expect(text(res)).toMatch(/^input\.reason: /);
    const unknown = await client.callTool({ name: 'start_run', arguments: { workflow: 'nope', input: {} } });
    expect(unknown.isError).toBe(true);
    expect(text(unknown)).toContain("no workflow 'nope'");
  });

  it('get_run and list_runs show runs; the run resource reads the same', async () => {
    const client = await connect();
    const started = structured<RunView>(
      await client.callTool({
        name: 'start_run',
        arguments: { workflow: 'triage', input: TRIAGE, wait: 30 },
      }),
    );
    const id = started.run.id;
    const got = structured<RunView & { journal?: unknown[] }>(
      await client.callTool({ name: 'get_run', arguments: { id, journal: true } }),
    );
    expect(got.run).toMatchObject({ id, state: 'done', steps: 3 });
    expect(got.journal).toHaveLength(3);
    expect(Number(got.spend.spent_usd)).toBeGreaterThan(0);
    const listed = structured<{ runs: { id: string; state: string }[] }>(
      await client.callTool({
        name: 'list_runs',
        arguments: { workflow: 'triage', state: 'done', limit: 50 },
      }),
    );
    expect(listed.runs.map((r) => r.id)).toContain(id);
    expect(listed.runs.every((r) => r.state === 'done')).toBe(true);
    const missing = await client.callTool({ name: 'get_run', arguments: { id: 'run_nope' } });
    expect(missing.isError).toBe(true);
    expect(text(missing)).toContain('no run run_nope');

    const read = await client.readResource({ uri: `chokepoint://runs/${id}` });
    const body = JSON.parse((read.contents[0] as { text: string }).text) as RunView;
    expect(body.run).toMatchObject({ id, state: 'done' });
    expect(body.time.limit_ms).toBe(120_000);
    expect(body.last_messages.length).toBeGreaterThan(0);
    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri)).toContain(`chokepoint://runs/${id}`);
    await expect(client.readResource({ uri: 'chokepoint://runs/run_nope' })).rejects.toThrow(
      /no run run_nope/,
    );

    const budget = await client.readResource({ uri: `chokepoint://budgets/run:${id}` });
    expect(JSON.parse((budget.contents[0] as { text: string }).text).budget).toMatchObject({
      scope: `run:${id}`,
      spent_usd: got.spend.spent_usd,
    });
  });

  it('refund: suspends at its gate; list_approvals shows it; decide_approval approves it (audited under the token)', async () => {
    const client = await connect(OPERATOR_TOKEN);
    const started = structured<RunView>(
      await client.callTool({
        name: 'start_run',
        arguments: { workflow: 'refund', input: REFUND, wait: true },
      }),
    );
    expect(started.run).toMatchObject({ state: 'suspended', reason: 'approval_required' });
    const id = started.run.id;
    expect(started.approval).toMatchObject({ id: `${id}.1` });
    const listed = await until(
      async () =>
        structured<{ approvals: { id: string; run: string; reason: string; summary: string }[] }>(
          await client.callTool({ name: 'list_approvals', arguments: { workflow: 'refund' } }),
        ),
      (l) => l.approvals.some((a) => a.run === id),
    );
    const item = listed.approvals.find((a) => a.run === id)!;
    expect(item).toMatchObject({ id: `${id}.1`, reason: 'approval_required' });
    expect(item.summary).toContain('issue_refund');

    const noReason = await client.callTool({
      name: 'decide_approval',
      arguments: { id: item.id, action: 'approve', reason: ' ' },
    });
    expect(noReason.isError).toBe(true);
    expect(text(noReason)).toMatch(/reason/);

    const decided = structured<{ approval: { state: string; decision: { actor: string } } }>(
      await client.callTool({
        name: 'decide_approval',
        arguments: { id: item.id, action: 'approve', reason: 'damaged on arrival, refund ok' },
      }),
    );
    expect(decided.approval).toMatchObject({ state: 'approved', decision: { actor: 'oncall' } });
    const again = await client.callTool({
      name: 'decide_approval',
      arguments: { id: item.id, action: 'deny', reason: 'second thoughts' },
    });
    expect(again.isError).toBe(true);
    expect(text(again)).toMatch(/already/);

    const done = structured<RunView>(await client.callTool({ name: 'get_run', arguments: { id, wait: 30 } }));
    expect(done.run.state).toBe('done');
    expect(done.last_messages.map((m) => m.role)).toContain('tool issue_refund');

    const audit = await h.api<{ entries: { action: string; actor: string; reason: string }[] }>(
      'GET',
      `/api/audit?target=run:${id}`,
    );
    expect(audit.body.entries).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ action: 'run.start', actor: 'oncall' }),
        expect.objectContaining({
          action: 'approval.approve',
          actor: 'oncall',
          reason: 'damaged on arrival, refund ok',
        }),
      ]),
    );
  });

  it('get_spend answers like GET /api/spend', async () => {
    const client = await connect(VIEWER_TOKEN);
    const spend = structured<{ by: string; rows: { key: string; cost_usd: string }[] }>(
      await client.callTool({ name: 'get_spend', arguments: { by: 'workflow' } }),
    );
    const api = await h.api<{ rows: unknown[] }>('GET', '/api/spend?by=workflow');
    expect(spend.by).toBe('workflow');
    expect(spend.rows).toEqual(api.body.rows);
    expect(spend.rows.length).toBeGreaterThan(0);
    const bad = await client.callTool({ name: 'get_spend', arguments: { scope: 'nonsense' } });
    expect(bad.isError).toBe(true);
    expect(text(bad)).toMatch(/scope/);
  });

  it('kill: a run at once, or a scope kill switch (audited)', async () => {
    const client = await connect(OPERATOR_TOKEN);
    const started = structured<RunView>(
      await client.callTool({
        name: 'start_run',
        arguments: { workflow: 'triage', input: slowTriage(10_000) },
      }),
    );
    const killed = structured<{ run: { state: string; detail: { by: string } } }>(
      await client.callTool({ name: 'kill', arguments: { run: started.run.id, reason: 'runaway' } }),
    );
    expect(killed.run).toMatchObject({ state: 'killed', detail: { by: 'oncall' } });

    const sw = structured<{ kill_switch: { scope: string; actor: string } }>(
      await client.callTool({ name: 'kill', arguments: { scope: 'team:mcp-test', reason: 'drill' } }),
    );
    expect(sw.kill_switch).toMatchObject({ scope: 'team:mcp-test', actor: 'oncall' });
    const kills = await h.api<{ kill_switches: { scope: string }[] }>('GET', '/api/kill-switches');
    expect(kills.body.kill_switches.map((k) => k.scope)).toContain('team:mcp-test');
    await h.api('POST', '/api/kill-switches/team:mcp-test/lift', { reason: 'drill over' });

    const both = await client.callTool({ name: 'kill', arguments: { reason: 'what' } });
    expect(both.isError).toBe(true);
    expect(text(both)).toContain('exactly one of run');
  });

  it('a viewer token reads but is refused start_run, decide_approval and kill, naming the role', async () => {
    const client = await connect(VIEWER_TOKEN);
    expect((await client.callTool({ name: 'list_runs', arguments: {} })).isError).toBeFalsy();
    expect(
      (await client.callTool({ name: 'list_approvals', arguments: { state: 'all' } })).isError,
    ).toBeFalsy();
    for (const [name, args] of [
      ['start_run', { workflow: 'triage', input: TRIAGE }],
      ['decide_approval', { id: 'run_x.1', action: 'approve', reason: 'ok' }],
      ['kill', { scope: 'global', reason: 'no' }],
      ['kill', { run: 'run_x', reason: 'no' }],
    ] as const) {
      const res = await client.callTool({ name, arguments: args });
      expect(res.isError, name).toBe(true);
      expect(text(res), name).toBe("forbidden: this needs the operator role; token 'vera' is viewer");
    }
    const kills = await h.api<{ kill_switches: { scope: string }[] }>('GET', '/api/kill-switches');
    expect(kills.body.kill_switches.map((k) => k.scope)).not.toContain('global');
  });

  it('no token (or an unknown one) is a 401', async () => {
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} };
    for (const headers of [{}, { authorization: 'Bearer cpo_nope' }] as Record<string, string>[]) {
      const res = await fetch(`${h.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...headers,
        },
        body: JSON.stringify(init),
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
        /^unauthenticated/,
      );
    }
    await expect(connect('')).rejects.toThrow(/unauthenticated: send an operator token/);
  });

  it('sessions: another token cannot use a session; DELETE ends it', async () => {
    const client = await connect();
    const transport = client.transport as StreamableHTTPClientTransport;
    const sessionId = transport.sessionId!;
    expect(sessionId).toBeTruthy();
    const ping = { jsonrpc: '2.0', id: 9, method: 'ping' };
    const post = (token: string) =>
      fetch(`${h.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: `Bearer ${token}`,
          'mcp-session-id': sessionId,
          'mcp-protocol-version': transport.protocolVersion ?? '2025-11-25',
        },
        body: JSON.stringify(ping),
      });
    const other = await post(VIEWER_TOKEN);
    expect(other.status).toBe(403);
    await other.body?.cancel();
    await transport.terminateSession();
    const gone = await post(ADMIN_TOKEN);
    expect(gone.status).toBe(404);
    await gone.body?.cancel();
  });

  it('a subscribed run resource notifies its state changes', async () => {
    const client = await connect(OPERATOR_TOKEN);
    const updates: { uri: string; at: number }[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push({ uri: n.params.uri, at: Date.now() });
    });
    const started = structured<RunView>(
      await client.callTool({
        name: 'start_run',
        arguments: { workflow: 'refund', input: { ...REFUND, reason: 'broken [[emulator:latency=800]]' } },
      }),
    );
    const uri = `chokepoint://runs/${started.run.id}`;
    await client.subscribeResource({ uri });
    await expect(client.subscribeResource({ uri: 'chokepoint://elsewhere/x' })).rejects.toThrow(
      /cannot subscribe/,
    );
    // It suspends at the gate: notified.
    await until(
      async () => updates.filter((u) => u.uri === uri).length,
      (n) => n >= 1,
    );
    const suspended = JSON.parse(
      ((await client.readResource({ uri })).contents[0] as { text: string }).text,
    ) as RunView;
    expect(suspended.run.state).toBe('suspended');
    const before = updates.length;
    await client.callTool({
      name: 'decide_approval',
      arguments: { id: `${started.run.id}.1`, action: 'deny', reason: 'not this one' },
    });
    // The decision (approval store) and the run resuming, then ending: notified again.
    await until(
      async () => updates.length,
      (n) => n > before,
    );
    await until(
      async () =>
        (JSON.parse(((await client.readResource({ uri })).contents[0] as { text: string }).text) as RunView)
          .run.state,
      (s) => s === 'done',
    );
    await until(
      async () => updates.length,
      (n) => n >= before + 2,
    );
    await client.unsubscribeResource({ uri });
  });

  it('cancelling a waiting start_run stops the wait; the run goes on', async () => {
    const client = await connect(OPERATOR_TOKEN);
    const ac = new AbortController();
    const call = client.callTool(
      { name: 'start_run', arguments: { workflow: 'triage', input: slowTriage(1500), wait: true } },
      undefined,
      { signal: ac.signal, onprogress: () => {} },
    );
    setTimeout(() => ac.abort('enough'), 500);
    await expect(call).rejects.toThrow();
    const runs = await until(
      async () =>
        structured<{ runs: { id: string; state: string }[] }>(
          await client.callTool({ name: 'list_runs', arguments: { workflow: 'triage', limit: 1 } }),
        ),
      (r) => r.runs.length > 0,
    );
    const runId = runs.runs[0]!.id;
    const done = structured<RunView>(
      await client.callTool({ name: 'get_run', arguments: { id: runId, wait: 30 } }),
    );
    expect(done.run.state).toBe('done');
  });

  it('with kill_on_cancel, cancelling the wait kills the run', async () => {
    const client = await connect(OPERATOR_TOKEN);
    const ac = new AbortController();
    const call = client.callTool(
      {
        name: 'start_run',
        arguments: { workflow: 'triage', input: slowTriage(5000), wait: true, kill_on_cancel: true },
      },
      undefined,
      { signal: ac.signal },
    );
    setTimeout(() => ac.abort('enough'), 500);
    await expect(call).rejects.toThrow();
    const killed = await until(
      async () =>
        structured<{ runs: { id: string; state: string; detail?: { why?: string } }[] }>(
          await client.callTool({ name: 'list_runs', arguments: { workflow: 'triage', limit: 1 } }),
        ).runs[0]!,
      (r) => r.state === 'killed',
    );
    expect(killed.detail?.why).toContain('kill_on_cancel');
  });
});

describe('start_run as an MCP task', () => {
  const startTask = (client: Client, args: Record<string, unknown>) =>
    client.request(
      { method: 'tools/call', params: { name: 'start_run', arguments: args, task: { ttl: 600_000 } } },
      CreateTaskResultSchema,
    );

  it('returns at once; the task follows the run: working, input_required at the gate, completed after the decision', async () => {
    const client = await connect(OPERATOR_TOKEN);
    const statuses: string[] = [];
    client.setNotificationHandler(TaskStatusNotificationSchema, (n) => {
      statuses.push(n.params.status);
    });
    const t0 = Date.now();
    const { task } = await startTask(client, {
      workflow: 'refund',
      input: { ...REFUND, reason: 'broken [[emulator:latency=1000]]' },
    });
    expect(Date.now() - t0).toBeLessThan(900);
    expect(task).toMatchObject({ status: 'working', ttl: 600_000 });
    const waiting = await until(
      () => client.experimental.tasks.getTask(task.taskId),
      (t) => t.status !== 'working',
    );
    expect(waiting.status).toBe('input_required');
    expect(waiting.statusMessage).toMatch(/waiting for a decision on approval (run_\S+\.1)/);
    const approval = /approval (run_\S+\.1)/.exec(waiting.statusMessage!)![1]!;
    const listed = await client.experimental.tasks.listTasks();
    expect(listed.tasks.map((t) => t.taskId)).toContain(task.taskId);

    await until(
      async () =>
        (
          await client.callTool({
            name: 'decide_approval',
            arguments: { id: approval, action: 'approve', reason: 'ok' },
          })
        ).isError,
      (isError) => !isError,
    );
    const result = (await client.experimental.tasks.getTaskResult(
      task.taskId,
      CallToolResultSchema,
    )) as CallToolResult;
    expect(result.isError).toBeFalsy();
    expect(structured<RunView>(result).run).toMatchObject({
      state: 'done',
      output: { answer: expect.any(String) },
    });
    expect((await client.experimental.tasks.getTask(task.taskId)).status).toBe('completed');
    // The session was told of each change (notifications/tasks/status).
    await until(
      async () => statuses,
      (s) => s.includes('completed'),
    );
    expect(statuses).toEqual(expect.arrayContaining(['input_required', 'working', 'completed']));
  });

  it('tasks/cancel kills the run (operator role)', async () => {
    const client = await connect(OPERATOR_TOKEN);
    const { task } = await startTask(client, { workflow: 'triage', input: slowTriage(10_000) });
    expect(task.status).toBe('working');
    const cancelled = await client.experimental.tasks.cancelTask(task.taskId);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.statusMessage).toMatch(/killed by oncall: cancelled from an MCP client/);
    const result = (await client.experimental.tasks.getTaskResult(
      task.taskId,
      CallToolResultSchema,
    )) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(structured<RunView>(result).run.state).toBe('killed');
    await expect(client.experimental.tasks.cancelTask(task.taskId)).rejects.toThrow(/terminal/);
  });

  it('a refused start fails the task with the reason; a viewer cannot create one', async () => {
    const client = await connect(OPERATOR_TOKEN);
    const { task } = await startTask(client, { workflow: 'refund', input: { order_id: 'A-1' } });
    expect(task.status).toBe('failed');
    expect(task.statusMessage).toMatch(/^input\.reason: /);
    const result = (await client.experimental.tasks.getTaskResult(
      task.taskId,
      CallToolResultSchema,
    )) as CallToolResult;
    expect(result.isError).toBe(true);

    const viewer = await connect(VIEWER_TOKEN);
    const refused = await startTask(viewer, { workflow: 'triage', input: TRIAGE });
    expect(refused.task).toMatchObject({
      status: 'failed',
      statusMessage: "forbidden: this needs the operator role; token 'vera' is viewer",
    });
    // The viewer does not see the operator's tasks.
    await expect(viewer.experimental.tasks.getTask(task.taskId)).rejects.toThrow(/not found/i);
  });

  it('a plain call of start_run still works as a plain tool', async () => {
    const client = await connect();
    const res = await client.callTool({
      name: 'start_run',
      arguments: { workflow: 'triage', input: TRIAGE, wait: 30 },
    });
    expect(structured<RunView>(res).run.state).toBe('done');
    // Plain calls leave no task behind.
    expect((await client.experimental.tasks.listTasks()).tasks).toEqual([]);
  });
});

describe('shutdown', () => {
  it('a server with open MCP sessions (and their SSE streams) stops promptly', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cp-mcp-stop-'));
    const config = resolveConfig(
      { dataDir, server: { port: 0 }, ...CLASSES },
      { env: { CHOKEPOINT_ADMIN_TOKEN: ADMIN_TOKEN } },
    );
    const server = await startServer(config, createLogger({ level: 'silent' }));
    try {
      const client = new Client({ name: 'stop-test', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
        }),
      );
      await client.listTools();
      await new Promise((r) => setTimeout(r, 200)); // the GET stream is open
      const t0 = Date.now();
      await server.close();
      // Not the 10 s grace a held-open stream would cost.
      expect(Date.now() - t0).toBeLessThan(3000);
      await client.close();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('MCP tools through the MCP server', () => {
  it('support-desk over streamable HTTP: ticket tools on the MCP server, the gate approved through decide_approval', async () => {
    await supportDeskLoop(await connect(OPERATOR_TOKEN), h.api);
  }, 60_000);
});
