import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Hono } from 'hono';
import { type Operator, sha256 } from '../../auth/operators.ts';
import type { Services } from '../../compose.ts';
import { type ChokepointMcp, createMcpServer, type McpOptions } from './server.ts';
import { RunTasks } from './tasks.ts';

/**
 * `/mcp`: streamable HTTP with stateful sessions. Every request carries an operator token
 * (`Authorization: Bearer`, the same registry as the operator API): none or an unknown one is a
 * 401. `initialize` (a POST without a session) opens a session bound to that token: an
 * `McpServer` acting as its operator; later requests name it in `Mcp-Session-Id` and must carry
 * the same token. GET opens the session's SSE stream (server notifications: resource updates,
 * task status), DELETE ends it. Sessions idle for 30 minutes with nothing open are closed.
 */

const MAX_BODY = 4 * 1024 * 1024;
const MAX_SESSIONS = 1000;
/**
 * Live sessions one token may hold: at the limit, its oldest idle session is closed to make room,
 * and with none idle a new one is refused (429), so one token can never fill MAX_SESSIONS and
 * lock the other operators out.
 */
export const MAX_SESSIONS_PER_TOKEN = 16;
const IDLE_MS = 30 * 60_000;

interface Session {
  transport: StreamableHTTPServerTransport;
  mcp: ChokepointMcp;
  operator: Operator;
  tokenHash: string;
  open: number;
  lastActive: number;
}

export interface McpHttp {
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Ends every session (their SSE streams close). */
  close(): Promise<void>;
  readonly sessions: number;
}

function rpcError(res: ServerResponse, status: number, code: number, message: string, headers = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

function readBody(req: IncomingMessage): Promise<Buffer | 'too_large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        resolve('too_large');
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// long: the MCP endpoint's handlers share its per-session state (sessions, quotas, the idle
// sweeper) as closures; each handler is short and the whole reads as one protocol, top to bottom.
export function mcpHttp(rt: Services, app: Hono, options: McpOptions = {}): McpHttp {
  const sessions = new Map<string, Session>();
  /** Initializes in progress per token hash (counted against the token's quota). */
  const opening = new Map<string, number>();
  const tasks = new RunTasks(rt, { pollMs: 1000 });
  const log = rt.log.child({ component: 'mcp' });
  let server: Server | undefined;
  let sweeper: NodeJS.Timeout | undefined;

  const drop = (id: string | undefined) => {
    if (!id) return;
    const s = sessions.get(id);
    if (!s) return;
    sessions.delete(id);
    s.mcp.close();
    log.debug('MCP session closed', { session: id, operator: s.operator.name });
    if (sessions.size === 0 && sweeper) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };

  const closeAll = async () => {
    const all = [...sessions.values()];
    await Promise.allSettled(all.map((s) => s.transport.close()));
    for (const id of [...sessions.keys()]) drop(id);
  };

  // Idle sessions are closed; so is every session once the HTTP server stops listening (its SSE
  // streams would otherwise hold a graceful shutdown open).
  const sweep = () => {
    if (server && !server.listening) {
      const closing = server;
      // The streams end; their connections, idle now, are let go (server.close() only closed the
      // connections that were idle when it was called).
      void closeAll().then(() => setTimeout(() => closing.closeIdleConnections(), 20).unref());
      return;
    }
    const cutoff = Date.now() - IDLE_MS;
    for (const s of sessions.values()) {
      if (s.open === 0 && s.lastActive < cutoff) void s.transport.close();
    }
  };

  const track = (s: Session, res: ServerResponse) => {
    s.open++;
    s.lastActive = Date.now();
    res.on('close', () => {
      s.open--;
      s.lastActive = Date.now();
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    server ??= (req.socket as unknown as { server?: Server }).server;
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
    const operator = rt.operatorSetup.registry.authenticate(token);
    if (!operator || !token) {
      return rpcError(
        res,
        401,
        -32001,
        'unauthenticated: send an operator token as "Authorization: Bearer <token>"',
        { 'www-authenticate': 'Bearer realm="chokepoint"' },
      );
    }
    if (req.method !== 'POST' && req.method !== 'GET' && req.method !== 'DELETE') {
      return rpcError(res, 405, -32000, `method ${req.method} not allowed on /mcp (POST, GET, DELETE)`, {
        allow: 'POST, GET, DELETE',
      });
    }
    let body: unknown;
    if (req.method === 'POST') {
      const raw = await readBody(req);
      if (raw === 'too_large') return rpcError(res, 413, -32600, `request body over ${MAX_BODY} bytes`);
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch (err) {
        return rpcError(res, 400, -32700, `parse error: ${(err as Error).message}`);
      }
    }
    const sid = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(sid) ? sid[0] : sid;
    if (sessionId) {
      const s = sessions.get(sessionId);
      if (!s) return rpcError(res, 404, -32001, 'session not found: initialize a new one');
      if (s.tokenHash !== sha256(token)) {
        return rpcError(res, 403, -32000, 'this MCP session was opened with another operator token');
      }
      track(s, res);
      return s.transport.handleRequest(req, res, body);
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) {
      return rpcError(res, 400, -32000, 'bad request: no Mcp-Session-Id (send initialize first)');
    }
    const tokenHash = sha256(token);
    const own = [...sessions.entries()].filter(([, s]) => s.tokenHash === tokenHash);
    if (own.length + (opening.get(tokenHash) ?? 0) >= MAX_SESSIONS_PER_TOKEN) {
      const idle = own.filter(([, s]) => s.open === 0).sort(([, a], [, b]) => a.lastActive - b.lastActive)[0];
      if (!idle) {
        return rpcError(
          res,
          429,
          -32000,
          `too many MCP sessions for this token: ${MAX_SESSIONS_PER_TOKEN} open and none idle; end one (DELETE /mcp with its Mcp-Session-Id) or close a client`,
          { 'retry-after': '30' },
        );
      }
      log.info('MCP session closed to make room for a new one of the same token', {
        session: idle[0],
        operator: operator.name,
      });
      await idle[1].transport.close().catch(() => {});
      drop(idle[0]);
    }
    if (sessions.size >= MAX_SESSIONS) return rpcError(res, 503, -32000, 'too many open MCP sessions');
    opening.set(tokenHash, (opening.get(tokenHash) ?? 0) + 1);
    try {
      await open(req, res, body, operator, tokenHash);
    } finally {
      const n = (opening.get(tokenHash) ?? 1) - 1;
      if (n > 0) opening.set(tokenHash, n);
      else opening.delete(tokenHash);
    }
  }

  async function open(
    req: IncomingMessage,
    res: ServerResponse,
    body: unknown,
    operator: Operator,
    tokenHash: string,
  ): Promise<void> {
    const mcp = createMcpServer(rt, { app, operator, tasks, options });
    let session: Session | undefined;
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        session = { transport, mcp, operator, tokenHash, open: 0, lastActive: Date.now() };
        sessions.set(id, session);
        track(session, res);
        if (!sweeper) {
          sweeper = setInterval(sweep, 1000);
          sweeper.unref();
        }
        log.debug('MCP session opened', { session: id, operator: operator.name });
      },
      onsessionclosed: (id) => drop(id),
    });
    transport.onclose = () => drop(transport.sessionId);
    await mcp.server.connect(transport);
    await transport.handleRequest(req, res, body);
    if (!session) {
      // initialize was refused (bad version, bad params): nothing to keep.
      mcp.close();
      await transport.close().catch(() => {});
    }
  }

  return {
    async handle(req, res) {
      try {
        await handle(req, res);
      } catch (err) {
        log.error('MCP request failed', { error: err });
        rpcError(res, 500, -32603, 'internal error');
      }
    },
    async close() {
      await closeAll();
      tasks.close();
    },
    get sessions() {
      return sessions.size;
    },
  };
}
