import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { type CallToolResult, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { expect } from 'vitest';
import type { Harness } from '../../helpers/harness.ts';

/**
 * The whole loop on the example workflow whose tools live on the example MCP server:
 * start support-desk through MCP (progress), it searches tickets on the ticket server and
 * suspends at the gate before `tickets__create_ticket`; subscribe to the run; approve through
 * decide_approval; the subscription hears it; the run resource reads done; the MCP tool calls
 * are in the ledger with their size.
 */
export async function supportDeskLoop(client: Client, api: Harness['api']): Promise<void> {
  const progress: number[] = [];
  const started = (
    (await client.callTool(
      {
        name: 'start_run',
        arguments: {
          workflow: 'support-desk',
          input: { customer: 'dana', request: 'My invoice shows an old VAT number' },
          wait: true,
        },
      },
      undefined,
      { onprogress: (p) => progress.push(p.progress), resetTimeoutOnProgress: true },
    )) as CallToolResult
  ).structuredContent as { run: { id: string; state: string; reason?: string; detail?: { tool?: string } } };
  expect(started.run).toMatchObject({
    state: 'suspended',
    reason: 'approval_required',
    detail: { tool: 'tickets__create_ticket' },
  });
  expect(progress.length).toBeGreaterThanOrEqual(1);
  const id = started.run.id;
  const uri = `chokepoint://runs/${id}`;
  const updates: string[] = [];
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
    updates.push(n.params.uri);
  });
  await client.subscribeResource({ uri });
  const decided = (await client.callTool({
    name: 'decide_approval',
    arguments: { id: `${id}.1`, action: 'approve', reason: 'file it' },
  })) as CallToolResult;
  expect(decided.isError).toBeFalsy();
  for (let i = 0; i < 200; i++) {
    const read = JSON.parse(((await client.readResource({ uri })).contents[0] as { text: string }).text) as {
      run: { state: string };
    };
    if (read.run.state === 'done' && updates.includes(uri)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const read = JSON.parse(((await client.readResource({ uri })).contents[0] as { text: string }).text) as {
    run: { state: string };
  };
  expect(read.run.state).toBe('done');
  expect(updates).toContain(uri);
  const ledger = await api<{ entries: { kind: string; name: string; outcome: string; bytes?: number }[] }>(
    'GET',
    `/api/ledger?run=${id}&kind=tool`,
  );
  const tools = ledger.body.entries.filter((e) => e.name.startsWith('tickets__'));
  expect(tools.map((e) => e.name).sort()).toEqual(['tickets__create_ticket', 'tickets__search_tickets']);
  expect(tools.every((e) => e.outcome === 'ok' && (e.bytes ?? 0) > 0)).toBe(true);
}
