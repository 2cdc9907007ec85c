import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

/**
 * An example MCP server: a small in-memory ticket store with `search_tickets`, `create_ticket`
 * and `get_ticket`. The `support-desk` workflow uses it over stdio.
 *
 *   node bin/run-ts.js adapters/mcp/examples/tickets-server.ts                 # stdio
 *   node bin/run-ts.js adapters/mcp/examples/tickets-server.ts --http --port 3001 [--token T]
 *
 * Over HTTP it serves streamable HTTP on `/mcp` (sessions; with `--token`, only requests with
 * `Authorization: Bearer T`) and prints `listening on http://…/mcp` to stdout.
 * `--test-tools` adds tools the tests use: `slow` (answers after `ms`, stops when cancelled),
 * `slow_create_ticket` (opens a ticket at once, answers after `ms`), `big` (a text of `bytes`
 * bytes), `picture` (image content) and `crash` (the process exits).
 *
 * `create_ticket` and `slow_create_ticket` honour Chokepoint's idempotency key
 * (`_meta["chokepoint/idempotency-key"]` on tools/call): a call made again with a key already seen
 * returns the ticket the first one opened instead of opening another — so a call a time box or a
 * kill cut short, made again on resume, opens one ticket.
 */

interface Ticket {
  id: string;
  title: string;
  body: string;
  priority: 'low' | 'normal' | 'urgent';
  status: 'open' | 'closed';
}

const tickets: Ticket[] = [
  {
    id: 'T-1001',
    title: 'Cannot log in after password reset',
    body: 'The reset link works but the new password is refused.',
    priority: 'urgent',
    status: 'open',
  },
  {
    id: 'T-1002',
    title: 'Invoice shows the wrong VAT number',
    body: 'Our VAT number changed in March; invoices still show the old one.',
    priority: 'normal',
    status: 'open',
  },
  {
    id: 'T-1003',
    title: 'Export to CSV times out',
    body: 'Exporting more than 10k rows never finishes.',
    priority: 'low',
    status: 'closed',
  },
];
let next = 1004;

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const testTools = flag('--test-tools');

const json = (value: unknown) => ({ content: [{ type: 'text' as const, text: JSON.stringify(value) }] });

/** Tickets opened by idempotency key (the last 10,000 keys). */
const opened = new Map<string, Ticket>();

/** The ticket this call's idempotency key already opened (`again`), or a new one remembered under it. */
function openTicket(
  fields: { title: string; body: string; priority?: Ticket['priority'] },
  meta: Record<string, unknown> | undefined,
): { ticket: Ticket; again: boolean } {
  const key = meta?.['chokepoint/idempotency-key'];
  const seen = typeof key === 'string' ? opened.get(key) : undefined;
  if (seen) return { ticket: seen, again: true };
  const t: Ticket = {
    id: `T-${next++}`,
    title: fields.title,
    body: fields.body,
    priority: fields.priority ?? 'normal',
    status: 'open',
  };
  tickets.push(t);
  if (typeof key === 'string') {
    if (opened.size >= 10_000) opened.delete(opened.keys().next().value!);
    opened.set(key, t);
  }
  return { ticket: t, again: false };
}

function ticketServer(): McpServer {
  const server = new McpServer({ name: 'tickets', version: '1.0.0' });
  server.registerTool(
    'search_tickets',
    {
      description: 'Searches support tickets by words in their title or body; newest first',
      inputSchema: {
        query: z.string().describe('words to look for'),
        status: z.enum(['open', 'closed']).optional().describe('only tickets in this status'),
      },
    },
    ({ query, status }) => {
      const words = query.toLowerCase().split(/\s+/).filter(Boolean);
      const found = tickets
        .filter((t) => !status || t.status === status)
        .filter((t) => words.some((w) => `${t.title} ${t.body}`.toLowerCase().includes(w)))
        .reverse()
        .map(({ id, title, status, priority }) => ({ id, title, status, priority }));
      return json({ tickets: found });
    },
  );
  server.registerTool(
    'get_ticket',
    {
      description: 'Reads one ticket by its id (e.g. T-1001)',
      inputSchema: { id: z.string() },
    },
    ({ id }) => {
      const t = tickets.find((x) => x.id === id);
      return t ? json(t) : { content: [{ type: 'text', text: `no ticket ${id}` }], isError: true };
    },
  );
  server.registerTool(
    'create_ticket',
    {
      description: 'Opens a new support ticket and returns it',
      inputSchema: {
        title: z.string().min(1),
        body: z.string(),
        priority: z.enum(['low', 'normal', 'urgent']).optional(),
      },
    },
    ({ title, body, priority }, extra) => json(openTicket({ title, body, priority }, extra._meta).ticket),
  );
  if (testTools) {
    server.registerTool(
      'slow',
      {
        description: 'Answers after ms milliseconds (stops when the call is cancelled)',
        inputSchema: { ms: z.number().int().nonnegative() },
      },
      async ({ ms }, extra) => {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, ms);
          extra.signal.addEventListener('abort', () => {
            clearTimeout(t);
            resolve();
          });
        });
        return { content: [{ type: 'text', text: extra.signal.aborted ? 'cancelled' : `waited ${ms} ms` }] };
      },
    );
    server.registerTool(
      'slow_create_ticket',
      {
        description: 'Opens a ticket at once, then answers after ms milliseconds (stops when cancelled)',
        inputSchema: { title: z.string().min(1), ms: z.number().int().nonnegative() },
      },
      async ({ title, ms }, extra) => {
        const { ticket, again } = openTicket({ title, body: '' }, extra._meta);
        if (again) return json(ticket); // the work was done by the first attempt
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          extra.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve();
          });
        });
        return json(ticket);
      },
    );
    server.registerTool(
      'big',
      { description: 'A text of the given size', inputSchema: { bytes: z.number().int().positive() } },
      ({ bytes }) => ({ content: [{ type: 'text', text: 'x'.repeat(bytes) }] }),
    );
    server.registerTool('picture', { description: 'An image and a caption' }, () => ({
      content: [
        { type: 'text', text: 'a red dot' },
        { type: 'image', data: Buffer.from('not really a png').toString('base64'), mimeType: 'image/png' },
      ],
    }));
    server.registerTool('crash', { description: 'The server process exits' }, () => process.exit(3));
  }
  return server;
}

async function serveHttp(port: number, token: string | undefined): Promise<void> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const readJson = async (req: IncomingMessage): Promise<unknown> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    return text ? JSON.parse(text) : undefined;
  };
  const http = createServer(async (req, res) => {
    const fail = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
    };
    try {
      if (!req.url?.startsWith('/mcp')) return fail(404, 'not found: use /mcp');
      if (token && req.headers.authorization !== `Bearer ${token}`) return fail(401, 'unauthorized');
      const id = req.headers['mcp-session-id'];
      const known = typeof id === 'string' ? sessions.get(id) : undefined;
      if (req.method === 'POST') {
        const body = await readJson(req);
        if (known) return known.handleRequest(req, res, body);
        if (id !== undefined) return fail(404, 'unknown session');
        if (!isInitializeRequest(body)) return fail(400, 'no session: initialize first');
        const transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (sid) => {
            sessions.set(sid, transport);
          },
        });
        transport.onclose = () => {
          if (transport.sessionId) sessions.delete(transport.sessionId);
        };
        await ticketServer().connect(transport);
        return transport.handleRequest(req, res, body);
      }
      if (!known) return fail(id === undefined ? 400 : 404, 'unknown session');
      return known.handleRequest(req, res);
    } catch (err) {
      if (!res.headersSent) fail(500, (err as Error).message);
    }
  });
  await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve));
  const addr = http.address() as { port: number };
  process.stdout.write(`listening on http://127.0.0.1:${addr.port}/mcp\n`);
  const stop = () => {
    for (const t of sessions.values()) void t.close();
    http.close(() => process.exit(0));
    http.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (flag('--http')) {
  await serveHttp(Number(option('--port') ?? 0), option('--token') ?? process.env.TICKETS_TOKEN);
} else {
  await ticketServer().connect(new StdioServerTransport());
  // The client went away (closed our stdin, or died): so do we.
  process.stdin.on('end', () => process.exit(0));
  process.stderr.write('tickets MCP server on stdio\n');
}
