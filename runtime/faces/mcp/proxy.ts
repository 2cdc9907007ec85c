import type { Readable, Writable } from 'node:stream';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/**
 * `chokepoint mcp --url`: the MCP client on stdio (Claude Desktop, an IDE) talks to a running
 * Chokepoint's /mcp. Each message read from stdin is POSTed to /mcp with the operator token and
 * the session id; the answer (JSON, or an SSE stream of messages: progress, then the result) is
 * written to stdout as it comes; once the session is initialized a GET stream brings the
 * server's own notifications (resource updates, task status). Requests go concurrently, so a
 * waiting start_run never holds up a cancellation or another call. When stdin ends, the session
 * is ended (DELETE).
 *
 * A plain HTTP bridge over fetch, like the CLI's API client: the server does the MCP.
 */

export interface ProxyOptions {
  /** The server's base URL (http://127.0.0.1:8787). */
  url: string;
  token: string;
  stdin?: Readable;
  stdout?: Writable;
  /** Diagnostics (stderr): stdout belongs to the protocol. */
  log?: (line: string) => void;
}

type Message = JSONRPCMessage & {
  id?: string | number;
  method?: string;
  result?: { protocolVersion?: string };
};

/** Reads an SSE body and hands each `message` event's JSON to `fn`. */
async function readSse(body: ReadableStream<Uint8Array>, fn: (m: Message) => Promise<void>): Promise<void> {
  const decoder = new TextDecoder();
  let buf = '';
  const flush = async (block: string) => {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i === -1 ? line : line.slice(0, i);
      const value = i === -1 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (event !== 'message' || data.length === 0) return;
    const text = data.join('\n');
    if (!text.trim()) return;
    await fn(JSON.parse(text) as Message);
  };
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    for (let m = /\r?\n\r?\n/.exec(buf); m; m = /\r?\n\r?\n/.exec(buf)) {
      const block = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      await flush(block);
    }
  }
  if (buf.trim()) await flush(buf);
}

// long: the stdio↔HTTP bridge keeps its session id and protocol version as closures shared by the
// send, the event stream and shutdown; each piece is short and they read as one exchange.
export function proxyStdio(opts: ProxyOptions): Promise<void> {
  const endpoint = `${opts.url.replace(/\/+$/, '')}/mcp`;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const stdin = opts.stdin ?? process.stdin;
  const stdio = new StdioServerTransport(stdin, opts.stdout ?? process.stdout);
  let sessionId: string | undefined;
  let protocolVersion: string | undefined;
  let initId: string | number | undefined;
  let closing = false;
  const listen = new AbortController();
  const inflight = new Set<Promise<void>>();

  const headers = (extra: Record<string, string> = {}): Record<string, string> => ({
    authorization: `Bearer ${opts.token}`,
    ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
    ...(protocolVersion ? { 'mcp-protocol-version': protocolVersion } : {}),
    ...extra,
  });

  const deliver = async (m: Message) => {
    if (initId !== undefined && m.id === initId && m.result?.protocolVersion) {
      protocolVersion = m.result.protocolVersion;
    }
    await stdio.send(m);
  };

  /** A request that got no answer from the server gets an error answer (notifications: a log line). */
  const fail = async (m: Message, code: number, message: string) => {
    if (m.method !== undefined && m.id !== undefined) {
      await stdio.send({ jsonrpc: '2.0', id: m.id, error: { code, message } });
    } else {
      log(`chokepoint mcp: ${message}`);
    }
  };

  const why = (err: unknown) => {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
  };

  async function post(m: Message): Promise<void> {
    if (m.method === 'initialize') initId = m.id;
    let res: Response;
    try {
      res = await fetch(endpoint, {
        method: 'POST',
        headers: headers({
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        }),
        body: JSON.stringify(m),
      });
    } catch (err) {
      return fail(
        m,
        -32000,
        `cannot reach Chokepoint at ${opts.url} (${why(err)}): is \`chokepoint serve\` running there?`,
      );
    }
    const sid = res.headers.get('mcp-session-id');
    if (sid) sessionId = sid;
    if (res.status === 202) {
      await res.body?.cancel();
      if (m.method === 'notifications/initialized') void stream();
      return;
    }
    const type = res.headers.get('content-type') ?? '';
    if (!res.ok) {
      const text = await res.text();
      let message = `HTTP ${res.status} from ${endpoint}: ${text.slice(0, 300)}`;
      let code = -32000;
      try {
        const body = JSON.parse(text) as { error?: { code?: number; message?: string } };
        if (body.error?.message) message = body.error.message;
        if (typeof body.error?.code === 'number') code = body.error.code;
      } catch {
        /* not JSON: keep the text */
      }
      if (res.status === 401)
        message = `${opts.url} refused the operator token (${message}): pass --token or set CHOKEPOINT_TOKEN`;
      return fail(m, code, message);
    }
    try {
      if (type.includes('text/event-stream') && res.body) await readSse(res.body, deliver);
      else if (type.includes('application/json')) {
        const body = (await res.json()) as Message | Message[];
        for (const one of Array.isArray(body) ? body : [body]) await deliver(one);
      } else await res.body?.cancel();
    } catch (err) {
      if (!closing) log(`chokepoint mcp: lost an answer from ${endpoint}: ${why(err)}`);
    }
  }

  /** The session's GET stream (server notifications), reopened if it drops. */
  async function stream(): Promise<void> {
    let pause = 500;
    while (!closing && sessionId) {
      try {
        const res = await fetch(endpoint, {
          method: 'GET',
          headers: headers({ accept: 'text/event-stream' }),
          signal: listen.signal,
        });
        if (res.status === 405 || res.status === 404 || res.status === 401) {
          await res.body?.cancel();
          return;
        }
        if (res.ok && res.body) {
          pause = 500;
          await readSse(res.body, deliver);
        } else await res.body?.cancel();
      } catch {
        if (closing) return;
      }
      await new Promise((r) => setTimeout(r, pause).unref());
      pause = Math.min(10_000, pause * 2);
    }
  }

  return new Promise<void>((resolve) => {
    stdio.onmessage = (m) => {
      const p = post(m as Message).catch((err) => log(`chokepoint mcp: ${why(err)}`));
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    };
    stdio.onerror = (err) => log(`chokepoint mcp: stdin: ${err.message}`);
    stdio.onclose = () => {
      if (closing) return;
      closing = true;
      listen.abort();
      void (async () => {
        // Answers already on their way are written; then the session ends.
        await Promise.race([Promise.allSettled([...inflight]), new Promise((r) => setTimeout(r, 2000))]);
        if (sessionId) {
          await fetch(endpoint, { method: 'DELETE', headers: headers(), signal: AbortSignal.timeout(3000) })
            .then((r) => r.body?.cancel())
            .catch(() => {});
        }
        resolve();
      })();
    };
    stdin.once('end', () => void stdio.close());
    void stdio.start();
  });
}
