import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  type CallToolResult,
  CallToolResultSchema,
  CreateTaskResultSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, type Harness, startHarness, VIEWER_TOKEN } from '../../helpers/harness.ts';
import { supportDeskLoop } from './flows.ts';

/**
 * `chokepoint mcp` over stdio: the real CLI spawned by the MCP SDK's stdio client, proxying to a
 * running server's /mcp (and, with --embedded, the runtime opened in the CLI's own process).
 */

const CLASSES = { routing: { classes: { cheap: ['claude-haiku-4-5'], standard: ['claude-sonnet-4-6'] } } };
const ROOT = join(import.meta.dirname, '../../..');

interface RunView {
  run: { id: string; state: string; identity: { seat: string }; output?: unknown };
  approval?: { id: string };
}

const structured = <T>(r: unknown) => (r as CallToolResult).structuredContent as T;
const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;

let h: Harness;
const clients: Client[] = [];

async function spawnCli(args: string[], env: Record<string, string> = {}) {
  const stderr: string[] = [];
  const transport = new StdioClientTransport({
    command: 'node',
    args: ['bin/chokepoint.js', 'mcp', ...args],
    cwd: ROOT,
    env: { ...(process.env as Record<string, string>), CHOKEPOINT_LOG_LEVEL: 'warn', ...env },
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (d) => stderr.push(String(d)));
  const client = new Client({ name: 'stdio-test', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return { client, transport, stderr: () => stderr.join('') };
}

beforeAll(async () => {
  h = await startHarness({
    workflows: true,
    config: { ...CLASSES, auth: { operators: [{ name: 'vera', role: 'viewer', token: VIEWER_TOKEN }] } },
  });
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await h?.close();
});

describe('chokepoint mcp (stdio, proxied to a running server)', () => {
  it('lists the tools and runs the refund workflow to its gate and past it, with progress', async () => {
    const { client } = await spawnCli(['--url', h.url], { CHOKEPOINT_TOKEN: ADMIN_TOKEN });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(
      expect.arrayContaining(['start_run', 'decide_approval', 'kill']),
    );
    const progress: number[] = [];
    const started = structured<RunView>(
      await client.callTool(
        {
          name: 'start_run',
          arguments: {
            workflow: 'refund',
            input: { order_id: 'A-1002', reason: 'lost [[emulator:latency=2300]]' },
            wait: true,
          },
        },
        undefined,
        { onprogress: (p) => progress.push(p.progress), resetTimeoutOnProgress: true },
      ),
    );
    expect(started.run).toMatchObject({ state: 'suspended', identity: { seat: 'admin' } });
    expect(progress.length).toBeGreaterThanOrEqual(3);
    const id = started.run.id;

    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });
    await client.subscribeResource({ uri: `chokepoint://runs/${id}` });
    const decided = await client.callTool({
      name: 'decide_approval',
      arguments: { id: `${id}.1`, action: 'approve', reason: 'lost parcel, refund ok' },
    });
    expect(decided.isError).toBeFalsy();
    const done = structured<RunView>(await client.callTool({ name: 'get_run', arguments: { id, wait: 30 } }));
    expect(done.run.state).toBe('done');
    // Server notifications arrive over the proxied GET stream.
    for (let i = 0; i < 100 && updates.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(updates).toContain(`chokepoint://runs/${id}`);
  });

  it('tasks go through the proxy too', async () => {
    const { client } = await spawnCli(['--url', h.url, '--token', ADMIN_TOKEN]);
    const { task } = await client.request(
      {
        method: 'tools/call',
        params: {
          name: 'start_run',
          arguments: { workflow: 'triage', input: { ticket: 'late [[emulator:latency=5000]]' } },
          task: {},
        },
      },
      CreateTaskResultSchema,
    );
    expect(task.status).toBe('working');
    expect((await client.experimental.tasks.cancelTask(task.taskId)).status).toBe('cancelled');
    const result = (await client.experimental.tasks.getTaskResult(
      task.taskId,
      CallToolResultSchema,
    )) as CallToolResult;
    expect(structured<RunView>(result).run.state).toBe('killed');
  });

  it("a viewer's token reads and is refused the operator tools; a bad token fails initialize clearly", async () => {
    const { client } = await spawnCli(['--url', h.url, '--token', VIEWER_TOKEN]);
    expect((await client.callTool({ name: 'list_workflows', arguments: {} })).isError).toBeFalsy();
    const refused = await client.callTool({ name: 'kill', arguments: { scope: 'global', reason: 'x' } });
    expect(text(refused)).toBe("forbidden: this needs the operator role; token 'vera' is viewer");

    await expect(spawnCli(['--url', h.url, '--token', 'cpo_wrong'])).rejects.toThrow(
      /refused the operator token/,
    );
  });
});

describe('chokepoint mcp --embedded', () => {
  it('opens the store and the workflows in its own process', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cp-mcp-'));
    try {
      const { client, stderr } = await spawnCli(['--embedded'], {
        CHOKEPOINT_DATA_DIR: dataDir,
        CHOKEPOINT_ADMIN_TOKEN: ADMIN_TOKEN,
        CHOKEPOINT_WORKFLOWS_DIR: join(ROOT, 'workflows'),
        REDIS_URL: '',
        ANTHROPIC_API_KEY: '',
      });
      const res = structured<RunView>(
        await client.callTool({
          name: 'start_run',
          arguments: {
            workflow: 'triage',
            input: { ticket: 'Order A17 [[emulator:tool_use lookup_order={"order_id":"A17"}]]' },
            wait: 30,
          },
        }),
      );
      expect(res.run.state).toBe('done');
      expect(res.run.identity.seat).toMatch(/^local-/);
      expect(stderr()).toMatch(/embedded \(embedded store\), acting as local:/);
      await client.close();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('MCP tools through chokepoint mcp', () => {
  it('support-desk over stdio: ticket tools on the MCP server, the gate approved through decide_approval', async () => {
    const { client } = await spawnCli(['--url', h.url], { CHOKEPOINT_TOKEN: ADMIN_TOKEN });
    await supportDeskLoop(client, h.api);
  }, 60_000);
});
