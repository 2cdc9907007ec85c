import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_EVENT_STREAMS_PER_OPERATOR } from '../../../runtime/faces/api/approvals.ts';
import { MAX_SESSIONS_PER_TOKEN } from '../../../runtime/faces/mcp/http.ts';
import {
  type Harness,
  OPERATOR_TOKEN,
  OPERATORS,
  startHarness,
  VIEWER_TOKEN,
} from '../../helpers/harness.ts';

/**
 * Per-token quotas: one token cannot hold every MCP session (nor every event stream) and lock the
 * other operators out. With the real MCP SDK client: a client that keeps its SSE stream open is
 * never idle, so the token's 17th session is refused with a 429 saying what to do; other tokens
 * still connect; ending one of the token's sessions makes room again.
 */

let h: Harness;
const clients: Client[] = [];

let sseOpen = 0;

async function connect(token: string): Promise<Client> {
  const client = new Client({ name: 'quota-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${h.url}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
    // Counts the GET streams the server has answered (the SDK opens one after initialize).
    fetch: async (url, init) => {
      const res = await fetch(url, init);
      if ((init?.method ?? 'GET') === 'GET' && res.ok) sseOpen++;
      return res;
    },
  });
  await client.connect(transport);
  clients.push(client);
  return client;
}

/** Waits until this many SDK clients have their GET (SSE) stream open: such a session is not idle. */
async function streamsOpen(n: number): Promise<void> {
  const end = Date.now() + 10_000;
  while (sseOpen < n) {
    if (Date.now() > end) throw new Error(`only ${sseOpen} of ${n} SSE streams opened`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(async () => {
  h = await startHarness({ config: OPERATORS, workflows: true });
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await h?.close();
});

describe('per-token quotas', () => {
  it(`one token holds at most ${MAX_SESSIONS_PER_TOKEN} live MCP sessions; other operators are not locked out`, async () => {
    const mine: Client[] = [];
    for (let i = 0; i < MAX_SESSIONS_PER_TOKEN; i++) mine.push(await connect(VIEWER_TOKEN));
    await streamsOpen(MAX_SESSIONS_PER_TOKEN);
    const refused = await connect(VIEWER_TOKEN).then(
      () => undefined,
      (err: Error) => err,
    );
    expect((refused as Error & { code?: number }).code).toBe(429);
    expect(refused?.message).toContain(
      `too many MCP sessions for this token: ${MAX_SESSIONS_PER_TOKEN} open and none idle`,
    );
    // Another operator still gets in and works.
    const other = await connect(OPERATOR_TOKEN);
    expect((await other.listTools()).tools.length).toBeGreaterThan(0);
    // One of the token's sessions ends: room again.
    await (mine[0]!.transport as StreamableHTTPClientTransport).terminateSession();
    await mine[0]!.close();
    const again = await connect(VIEWER_TOKEN);
    expect((await again.listTools()).tools.length).toBeGreaterThan(0);
  }, 60_000);

  it(`an idle session of the token (no stream, nothing in flight) is closed to make room`, async () => {
    // Sessions opened by hand and left idle: the oldest makes way for a new one.
    const ids: string[] = [];
    const init = () =>
      fetch(`${h.url}/mcp`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${OPERATOR_TOKEN}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-06-18',
            capabilities: {},
            clientInfo: { name: 'idle', version: '0' },
          },
        }),
      });
    for (let i = 0; i < MAX_SESSIONS_PER_TOKEN + 2; i++) {
      const res = await init();
      await res.body?.cancel();
      expect(res.status).toBe(200);
      ids.push(res.headers.get('mcp-session-id')!);
    }
    // The first ones were closed to make room (one operator session from the test above is live).
    const first = await fetch(`${h.url}/mcp`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'mcp-session-id': ids[0]! },
    });
    expect(first.status).toBe(404);
  }, 60_000);

  it(`one operator holds at most ${MAX_EVENT_STREAMS_PER_OPERATOR} /api/events streams; a closed one frees its place`, async () => {
    const open: AbortController[] = [];
    const stream = async (token: string) => {
      const ac = new AbortController();
      const res = await fetch(`${h.url}/api/events`, {
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
        signal: ac.signal,
      });
      if (res.status === 200) open.push(ac);
      else await res.body?.cancel();
      return res;
    };
    try {
      for (let i = 0; i < MAX_EVENT_STREAMS_PER_OPERATOR; i++)
        expect((await stream(VIEWER_TOKEN)).status).toBe(200);
      const refused = await stream(VIEWER_TOKEN);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('30');
      // Another operator is not affected.
      expect((await stream(OPERATOR_TOKEN)).status).toBe(200);
      open.shift()!.abort();
      const end = Date.now() + 5_000;
      let status = 0;
      while (Date.now() < end) {
        const r = await stream(VIEWER_TOKEN);
        status = r.status;
        if (status === 200) break;
        await new Promise((r2) => setTimeout(r2, 50));
      }
      expect(status).toBe(200);
    } finally {
      for (const ac of open) ac.abort();
    }
  }, 30_000);
});
