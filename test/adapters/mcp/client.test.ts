import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  McpClientError,
  McpPool,
  type McpServerConfig,
  resultText,
  serverKey,
} from '../../../adapters/mcp/client.ts';

/** The MCP client pool against the example ticket server, as real processes (stdio and HTTP). */

const ROOT = join(import.meta.dirname, '../../..');
const SERVER_ARGS = ['bin/run-ts.js', 'adapters/mcp/examples/tickets-server.ts', '--test-tools'];
const STDIO: McpServerConfig = {
  name: 'tickets',
  stdio: { command: process.execPath, args: SERVER_ARGS, cwd: ROOT },
};

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function failure(p: Promise<unknown>): Promise<McpClientError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(McpClientError);
    return err as McpClientError;
  }
  throw new Error('expected the call to fail');
}

/** Starts the example server over HTTP; resolves with its URL once it listens. */
async function httpServer(port = 0, token?: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [...SERVER_ARGS, '--http', '--port', String(port), ...(token ? ['--token', token] : [])],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return { url, child };
}

const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('MCP client pool over stdio', () => {
  const pool = new McpPool({ connectTimeoutMs: 20_000 });
  afterAll(() => pool.close());

  it('connects lazily on first use and lists the tools', async () => {
    const c = pool.get(STDIO);
    expect(c.connected).toBe(false);
    const tools = await c.listTools();
    expect(c.connected).toBe(true);
    expect(c.pid).toBeGreaterThan(0);
    expect(tools.map((t) => t.name).sort()).toEqual(
      [
        'big',
        'crash',
        'create_ticket',
        'get_ticket',
        'picture',
        'search_tickets',
        'slow',
        'slow_create_ticket',
      ].sort(),
    );
    const search = tools.find((t) => t.name === 'search_tickets')!;
    expect(search.description).toMatch(/Searches support tickets/);
    expect(search.inputSchema).toMatchObject({ type: 'object', properties: { query: { type: 'string' } } });
  });

  it('shares one connection per server config (the same config in another key order too)', () => {
    const same: McpServerConfig = {
      stdio: { cwd: ROOT, args: SERVER_ARGS, command: process.execPath },
      name: 'other-name',
    };
    expect(pool.get(same)).toBe(pool.get(STDIO));
    expect(serverKey(same)).toBe(serverKey(STDIO));
    const other: McpServerConfig = { stdio: { ...STDIO.stdio!, env: { TICKETS_MODE: 'x' } } };
    expect(pool.get(other)).not.toBe(pool.get(STDIO));
  });

  it('calls tools: text content, an error result, non-text summarised, sizes in bytes', async () => {
    const found = await pool.callTool(STDIO, 'search_tickets', { query: 'invoice' });
    expect(found.isError).toBe(false);
    expect(JSON.parse(found.content)).toEqual({
      tickets: [{ id: 'T-1002', title: expect.stringMatching(/VAT/), status: 'open', priority: 'normal' }],
    });
    expect(found.bytes).toBe(Buffer.byteLength(found.content));

    const created = await pool.callTool(STDIO, 'create_ticket', { title: 'Dark mode', body: 'please' });
    const id = (JSON.parse(created.content) as { id: string }).id;
    expect(JSON.parse((await pool.callTool(STDIO, 'get_ticket', { id })).content)).toMatchObject({
      title: 'Dark mode',
    });

    const missing = await pool.callTool(STDIO, 'get_ticket', { id: 'T-9' });
    expect(missing).toEqual({ content: 'no ticket T-9', isError: true, bytes: 13 });

    const picture = await pool.callTool(STDIO, 'picture', {});
    expect(picture.content).toBe('a red dot\n[image image/png, 16 bytes]');
  });

  it('times out a call that takes too long; the connection stays usable', async () => {
    const pid = pool.get(STDIO).pid;
    const t0 = Date.now();
    const err = await failure(pool.callTool(STDIO, 'slow', { ms: 10_000 }, { timeoutMs: 200 }));
    expect(err.kind).toBe('timeout');
    expect(err.message).toMatch(/timed out after 200 ms/);
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect((await pool.callTool(STDIO, 'slow', { ms: 1 })).content).toBe('waited 1 ms');
    expect(pool.get(STDIO).pid).toBe(pid);
  });

  it('aborts a call when the signal fires', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort('time_box'), 100);
    const t0 = Date.now();
    const err = await failure(pool.callTool(STDIO, 'slow', { ms: 10_000 }, { signal: ac.signal }));
    expect(err.kind).toBe('aborted');
    expect(err.message).toMatch(/time_box/);
    expect(Date.now() - t0).toBeLessThan(2_000);
    // Already aborted: not even sent.
    expect(
      (await failure(pool.callTool(STDIO, 'get_ticket', { id: 'T-1001' }, { signal: ac.signal }))).kind,
    ).toBe('aborted');
  });

  it('reconnects after the server process is killed', async () => {
    const c = pool.get(STDIO);
    await c.listTools();
    const pid = c.pid!;
    const connects = c.connects;
    process.kill(pid, 'SIGKILL');
    await until(() => !c.connected);
    const again = await c.callTool('get_ticket', { id: 'T-1001' });
    expect(again.isError).toBe(false);
    expect(c.pid).not.toBe(pid);
    expect(c.connects).toBe(connects + 1);
  });

  it('a server that dies during a call: that call fails, the next one reconnects', async () => {
    const c = pool.get(STDIO);
    const pid = c.pid;
    const err = await failure(c.callTool('crash', {}));
    expect(err.kind).toBe('disconnected');
    const again = await c.callTool('search_tickets', { query: 'password' });
    expect(again.content).toMatch(/T-1001/);
    expect(c.pid).not.toBe(pid);
  });

  it('says a server cannot be reached (a command that does not exist, a server that exits)', async () => {
    const missing = await failure(
      pool.listTools({ name: 'ghost', stdio: { command: join(ROOT, 'no-such-server') } }),
    );
    expect(missing.kind).toBe('unreachable');
    expect(missing.message).toMatch(/cannot connect to MCP server 'ghost' \(stdio: .*no-such-server\)/);

    const exits = await failure(
      pool.listTools({
        name: 'quitter',
        stdio: {
          command: process.execPath,
          args: ['-e', 'console.error("bad config: no DB_URL"); process.exit(1)'],
        },
      }),
    );
    expect(exits.kind).toBe('unreachable');
    expect(exits.message).toMatch(/bad config: no DB_URL/);
  });

  it('a server that answers with something that is not a result: a protocol error, the connection kept', async () => {
    // A raw JSON-RPC server (no SDK): fine until it answers tools/call with a malformed result.
    const script = `
      const rl = require('readline').createInterface({ input: process.stdin });
      rl.on('line', (line) => {
        const m = JSON.parse(line);
        if (m.id === undefined) return;
        const reply = (result) => process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: m.id, result }) + '\\n');
        if (m.method === 'initialize') reply({ protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'odd', version: '0' } });
        else if (m.method === 'tools/list') reply({ tools: [{ name: 'odd', inputSchema: { type: 'object' } }] });
        else reply({ content: 'not a list' });
      });
      rl.on('close', () => process.exit(0));`;
    const c = pool.get({ name: 'odd', stdio: { command: process.execPath, args: ['-e', script] } });
    expect((await c.listTools()).map((t) => t.name)).toEqual(['odd']);
    const pid = c.pid;
    const err = await failure(c.callTool('odd', {}));
    expect(err.kind).toBe('protocol');
    expect(err.message).toMatch(/not a valid result/);
    expect(c.connected).toBe(true);
    expect(c.pid).toBe(pid);
  });

  it('closing the pool ends the server processes and refuses further calls', async () => {
    const own = new McpPool();
    const c = own.get(STDIO);
    await c.listTools();
    const pid = c.pid!;
    expect(alive(pid)).toBe(true);
    await own.close();
    await until(() => !alive(pid));
    expect((await failure(c.callTool('get_ticket', { id: 'T-1001' }))).kind).toBe('unreachable');
    expect(() => own.get(STDIO)).toThrow(/closed/);
  });
});

describe('MCP client pool over streamable HTTP', () => {
  const pool = new McpPool();
  const children: ChildProcess[] = [];
  afterEach(async () => {
    await Promise.all(children.splice(0).map(stop));
  });
  afterAll(() => pool.close());

  it('sends the configured headers (bearer auth), lists and calls tools', async () => {
    const { url, child } = await httpServer(0, 'sekrit-token');
    children.push(child);
    const denied = await failure(pool.listTools({ name: 'anon', http: { url } }));
    expect(denied.kind).toBe('unreachable');
    expect(denied.message).toMatch(/unauthorized/);

    const config: McpServerConfig = {
      name: 'tickets',
      http: { url, headers: { Authorization: 'Bearer sekrit-token' } },
    };
    expect((await pool.listTools(config)).map((t) => t.name)).toContain('create_ticket');
    const r = await pool.callTool(config, 'search_tickets', { query: 'csv', status: 'closed' });
    expect(JSON.parse(r.content).tickets).toEqual([expect.objectContaining({ id: 'T-1003' })]);
    // Never the headers in messages.
    expect(pool.get(config).label).toBe("MCP server 'tickets'");
  });

  it('times out and aborts calls', async () => {
    const { url, child } = await httpServer();
    children.push(child);
    const config: McpServerConfig = { http: { url } };
    expect((await failure(pool.callTool(config, 'slow', { ms: 10_000 }, { timeoutMs: 200 }))).kind).toBe(
      'timeout',
    );
    const ac = new AbortController();
    setTimeout(() => ac.abort('killed'), 100);
    expect((await failure(pool.callTool(config, 'slow', { ms: 10_000 }, { signal: ac.signal }))).kind).toBe(
      'aborted',
    );
    expect((await pool.callTool(config, 'slow', { ms: 1 })).content).toBe('waited 1 ms');
  });

  it('reconnects after the server is killed and started again', async () => {
    const port = await freePort();
    const first = await httpServer(port);
    children.push(first.child);
    const config: McpServerConfig = { name: 'restarting', http: { url: first.url } };
    const c = pool.get(config);
    expect((await c.callTool('get_ticket', { id: 'T-1001' })).isError).toBe(false);
    await stop(first.child);
    // Down: the call fails and drops the connection.
    const err = await failure(c.callTool('get_ticket', { id: 'T-1001' }));
    expect(['disconnected', 'unreachable']).toContain(err.kind);
    expect(c.connected).toBe(false);
    // Back (a new process, so the old session is gone): the next call connects again.
    const second = await httpServer(port);
    children.push(second.child);
    expect((await c.callTool('get_ticket', { id: 'T-1002' })).isError).toBe(false);
    expect(c.connects).toBe(2);
  });

  it('a server that is not listening is unreachable', async () => {
    const port = await freePort();
    const err = await failure(
      pool.listTools({ name: 'down', http: { url: `http://127.0.0.1:${port}/mcp` } }),
    );
    expect(err.kind).toBe('unreachable');
    expect(err.message).toMatch(
      /cannot connect to MCP server 'down' \(http: http:\/\/127\.0\.0\.1:\d+\/mcp\)/,
    );
  });
});

describe('resultText', () => {
  it('joins text, summarises the rest, falls back to structured content', () => {
    expect(
      resultText({
        content: [
          { type: 'text', text: 'one' },
          { type: 'audio', data: 'AAAA', mimeType: 'audio/wav' },
          { type: 'resource_link', uri: 'file:///a.txt', name: 'a' },
          { type: 'resource', resource: { uri: 'mem://x', text: 'inline' } },
          { type: 'resource', resource: { uri: 'mem://y', mimeType: 'application/pdf', blob: 'AAAAAAAA' } },
        ],
      }),
    ).toBe(
      'one\n[audio audio/wav, 3 bytes]\n[resource link: file:///a.txt (a)]\ninline\n[resource mem://y application/pdf, 6 bytes]',
    );
    expect(resultText({ content: [], structuredContent: { n: 1 } })).toBe('{"n":1}');
  });
});
