import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnthropicClient } from '../../adapters/anthropic/client.ts';
import { AnthropicProvider } from '../../adapters/anthropic/provider.ts';
import { BedrockClient } from '../../adapters/bedrock/client.ts';
import { ProviderError, readAll } from '../../adapters/provider.ts';

/**
 * The provider client on its own, against a real HTTP server playing the provider: what it sends
 * (headers replaced, dropped, added), what it hands back (head, body as it streams, held back when
 * not read), and how each way a call can fail comes out as a ProviderError of its kind.
 */
type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;
const routes = new Map<string, Handler>();
const sockets = new Set<Socket>();
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const route = routes.get(new URL(req.url ?? '/', 'http://x').pathname);
      if (route) route(req, Buffer.concat(chunks), res);
      else res.writeHead(404).end();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

const client = (o: Partial<ConstructorParameters<typeof AnthropicClient>[0]> = {}) =>
  new AnthropicClient({ baseUrl: base, apiKey: 'sk-provider', timeoutMs: 5000, ...o });

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('the provider client (AnthropicClient, on adapters/http/upstream.ts)', () => {
  it('sends the body byte for byte with the provider credential, and the caller headers it may pass', async () => {
    let seen:
      | { method?: string; url?: string; headers: IncomingMessage['headers']; raw: string[]; body: string }
      | undefined;
    routes.set('/v1/messages', (req, body, res) => {
      seen = {
        method: req.method,
        url: req.url,
        headers: req.headers,
        raw: req.rawHeaders,
        body: body.toString(),
      };
      res.writeHead(200, {
        'content-type': 'application/json',
        'set-cookie': ['a=1', 'b=2'],
        'x-upstream': 'yes',
      });
      res.end('{"ok":true}');
    });
    const c = client();
    try {
      const body = Buffer.from('{"model":"claude-opus-5-5","max_tokens":1,"messages":[]}');
      const res = await c.post(
        'v1/messages?beta=true',
        body,
        {
          'Anthropic-Beta': 'a-2026-01-01',
          'anthropic-version': '2023-06-01',
          'x-claude-code-session-id': 's-1',
          'X-Api-Key': 'cpk_caller-key',
          authorization: 'Bearer caller',
          cookie: 'c=1',
          'accept-encoding': 'gzip',
          connection: 'close',
          'x-chokepoint-team': 'growth',
          'x-stainless-lang': ['js', 'ts'],
          absent: undefined,
        },
        undefined,
        'req_123',
      );
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/json');
      expect(res.headers['x-upstream']).toBe('yes');
      expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
      expect((await readAll(res.body)).toString()).toBe('{"ok":true}');
      expect(seen?.method).toBe('POST');
      expect(seen?.url).toBe('/v1/messages?beta=true');
      expect(seen?.body).toBe(body.toString());
      const h = seen!.headers;
      expect(h['x-api-key']).toBe('sk-provider');
      expect(h['anthropic-beta']).toBe('a-2026-01-01');
      expect(h['anthropic-version']).toBe('2023-06-01');
      expect(h['x-claude-code-session-id']).toBe('s-1');
      expect(h['x-stainless-lang']).toBe('js,ts');
      expect(h['x-chokepoint-request-id']).toBe('req_123');
      expect(h['content-type']).toBe('application/json');
      expect(h['content-length']).toBe(String(body.length));
      expect(h.host).toBe(new URL(base).host);
      for (const gone of ['authorization', 'cookie', 'accept-encoding', 'x-chokepoint-team', 'absent']) {
        expect(h[gone], gone).toBeUndefined();
      }
      expect(h.connection).not.toBe('close');
      // One value a name: the caller's anthropic-version replaced the provider's default.
      expect(seen!.raw.filter((n, i) => i % 2 === 0 && n.toLowerCase() === 'anthropic-version')).toHaveLength(
        1,
      );
      expect(seen!.raw.filter((n, i) => i % 2 === 0 && n.toLowerCase() === 'x-api-key')).toHaveLength(1);
    } finally {
      c.close();
    }
  });

  it('keeps a base URL path, its credentials and the provider own headers', async () => {
    let seen: IncomingMessage | undefined;
    routes.set('/prefix/v1/models', (req, _b, res) => {
      seen = req;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    const url = new URL(base);
    const c = client({
      baseUrl: `http://us%40er:p%3Ass@${url.host}/prefix`,
      headers: { Authorization: 'Bearer own' },
    });
    const d = client({ baseUrl: `http://us%40er:p%3Ass@${url.host}/prefix/` });
    try {
      await readAll((await c.request('GET', 'v1/models', undefined, {})).body);
      expect(seen?.method).toBe('GET');
      expect(seen?.headers.authorization).toBe('Bearer own');
      expect(seen?.headers['x-api-key']).toBeUndefined();
      await readAll((await d.request('GET', 'v1/models', undefined, {})).body);
      expect(seen?.headers.authorization).toBe(`Basic ${Buffer.from('us@er:p:ss').toString('base64')}`);
      expect(seen?.headers['x-api-key']).toBe('sk-provider');
    } finally {
      c.close();
      d.close();
    }
  });

  it('streams a large answer intact, held back on the connection while it is not read', async () => {
    const big = bigAnswer('/v1/big', 'text/event-stream');
    const c = client();
    try {
      const res = await c.post('v1/big', Buffer.from('{}'), {});
      // Not read yet: the provider's writes stop well short of the end.
      await until(() => big.paused);
      expect(big.written).toBeLessThan(big.pieces);
      const got = createHash('sha256');
      let bytes = 0;
      for await (const chunk of res.body) {
        got.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
      expect(bytes).toBe(big.bytes);
      expect(got.digest('hex')).toBe(big.sha256);
    } finally {
      c.close();
    }
  });

  it('answers with the final head after an informational one (103 Early Hints)', async () => {
    routes.set('/v1/continue', (_req, _b, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"made":1}');
    });
    const c = client();
    try {
      const res = await c.post('v1/continue', Buffer.from('{}'), {});
      expect(res.status).toBe(201);
      expect((await readAll(res.body)).toString()).toBe('{"made":1}');
    } finally {
      c.close();
    }
  });

  it('fails a provider that sends no head within the timeout as a timeout', async () => {
    routes.set('/v1/silent', () => {});
    const c = client({ timeoutMs: 300 });
    try {
      const err = await failure(c.post('v1/silent', Buffer.from('{}'), {}));
      expect(err.kind).toBe('timeout');
      expect(err.message).toMatch(/within 300 ms/);
    } finally {
      c.close();
    }
  });

  it('breaks a body that stops arriving, as a timeout', async () => {
    routes.set('/v1/stall', (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: message_start\n\n');
    });
    const c = client({ timeoutMs: 300 });
    try {
      const res = await c.post('v1/stall', Buffer.from('{}'), {});
      const err = await failure(readAll(res.body));
      expect(err.kind).toBe('timeout');
    } finally {
      c.close();
    }
  });

  it('aborts on the signal: before the call, while waiting for the head, and mid-body', async () => {
    routes.set('/v1/silent', () => {});
    routes.set('/v1/stall', (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: ping\n\n');
    });
    const c = client();
    try {
      const before = new AbortController();
      before.abort();
      expect((await failure(c.post('v1/silent', Buffer.from('{}'), {}, before.signal))).kind).toBe('aborted');

      const waiting = new AbortController();
      const pending = c.post('v1/silent', Buffer.from('{}'), {}, waiting.signal);
      setImmediate(() => waiting.abort());
      expect((await failure(pending)).kind).toBe('aborted');

      const mid = new AbortController();
      const res = await c.post('v1/stall', Buffer.from('{}'), {}, mid.signal);
      const reading = failure(readAll(res.body));
      mid.abort();
      expect((await reading).kind).toBe('aborted');
    } finally {
      c.close();
    }
  });

  it('lets go of a body its reader destroyed, and the next call still goes through', async () => {
    routes.set('/v1/stall', (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: ping\n\n');
    });
    routes.set('/v1/ok', (_req, _b, res) => res.writeHead(200).end('ok'));
    const c = client({ maxSockets: 1 });
    try {
      const res = await c.post('v1/stall', Buffer.from('{}'), {});
      const closed = new Promise((r) => res.body.on('close', r));
      res.body.destroy();
      await closed;
      const next = await c.post('v1/ok', Buffer.from('{}'), {});
      expect((await readAll(next.body)).toString()).toBe('ok');
    } finally {
      c.close();
    }
  });

  it('fails a provider nobody listens for as a network failure, naming it', async () => {
    const c = client({ baseUrl: await nobodyListening() });
    try {
      const err = await failure(c.post('v1/messages', Buffer.from('{}'), {}));
      expect(err.kind).toBe('network');
      expect(err.message).toMatch(/provider unreachable: .*ECONNREFUSED/);
    } finally {
      c.close();
    }
  });

  it('names the provider that failed: the adapter kind, Bedrock', async () => {
    const gone = await nobodyListening();
    const emulator = new AnthropicProvider('emulator', { baseUrl: gone, apiKey: 'k', timeoutMs: 5000 });
    const bedrock = new BedrockClient({
      baseUrl: gone,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      timeoutMs: 5000,
    });
    try {
      const a = await failure(emulator.send({ body: Buffer.from('{}') }));
      expect(a.message).toMatch(/^emulator unreachable: .*ECONNREFUSED/);
      const b = await failure(bedrock.request('POST', '/model/m/invoke', Buffer.from('{}'), {}));
      expect(b.kind).toBe('network');
      expect(b.message).toMatch(/^Bedrock unreachable: .*ECONNREFUSED/);
    } finally {
      await emulator.close();
      bedrock.close();
    }
  });

  it('fails an answer whose connection breaks mid-body', async () => {
    routes.set('/v1/cut', (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: message_start\n\n', () => res.socket?.destroy());
    });
    const c = client();
    try {
      const res = await c.post('v1/cut', Buffer.from('{}'), {});
      const err = await failure(readAll(res.body));
      expect(err.kind).toBe('network');
    } finally {
      c.close();
    }
  });
});

describe('an answer read whole or as a stream (readAll hands over the bytes without a stream)', () => {
  it('reads a large answer whole, intact, held back on the connection until asked', async () => {
    const big = bigAnswer('/v1/big-whole', 'application/json');
    const c = client();
    try {
      const res = await c.post('v1/big-whole', Buffer.from('{}'), {});
      await until(() => big.paused);
      expect(big.written).toBeLessThan(big.pieces);
      const buf = await readAll(res.body);
      expect(buf.length).toBe(big.bytes);
      expect(createHash('sha256').update(buf).digest('hex')).toBe(big.sha256);
    } finally {
      c.close();
    }
  });

  it('hands over a small answer complete before its reader asked, whole or as a stream', async () => {
    const answer = JSON.stringify({ type: 'message', usage: { input_tokens: 3, output_tokens: 1 } });
    routes.set('/v1/small', (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
      res.end(answer);
    });
    const c = client();
    try {
      const a = await c.post('v1/small', Buffer.from('{}'), {});
      await new Promise((r) => setTimeout(r, 50)); // complete by now, unread
      expect((await readAll(a.body)).toString()).toBe(answer);
      // A late error on a body read whole is swallowed, not thrown.
      expect(() => a.body.emit('error', new Error('late'))).not.toThrow();
      const b = await c.post('v1/small', Buffer.from('{}'), {});
      await new Promise((r) => setTimeout(r, 50));
      const chunks: Buffer[] = [];
      for await (const chunk of b.body) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe(answer);
      expect(b.body.readableEnded).toBe(true);
    } finally {
      c.close();
    }
  });

  it('fails an answer that broke before its reader asked, whole or as a stream', async () => {
    let cut = 0;
    routes.set('/v1/cut-early', (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"type":', () => {
        res.socket?.once('close', () => cut++);
        res.socket?.destroy();
      });
    });
    const c = client();
    try {
      const a = await c.post('v1/cut-early', Buffer.from('{}'), {});
      await until(() => cut === 1);
      expect((await failure(readAll(a.body))).kind).toBe('network');
      const b = await c.post('v1/cut-early', Buffer.from('{}'), {});
      await until(() => cut === 2);
      const read = (async () => {
        for await (const _ of b.body) {
          // the one piece that came
        }
      })();
      expect((await failure(read)).kind).toBe('network');
    } finally {
      c.close();
    }
  });
});

/**
 * An 8 MiB answer on `path`, written as fast as the connection takes it: `written` pieces so far,
 * `paused` once a write had to wait for the reader, `sha256` of the whole.
 */
function bigAnswer(path: string, contentType: string) {
  const piece = Buffer.alloc(64 * 1024, 'x');
  const whole = createHash('sha256');
  const big = { pieces: 128, bytes: 128 * piece.length, written: 0, paused: false, sha256: '' };
  for (let i = 0; i < big.pieces; i++) whole.update(piece);
  big.sha256 = whole.digest('hex');
  routes.set(path, (_req, _b, res) => {
    res.writeHead(200, { 'content-type': contentType });
    const more = () => {
      while (big.written < big.pieces) {
        big.written++;
        if (!res.write(piece)) {
          big.paused = true;
          res.once('drain', more);
          return;
        }
      }
      res.end();
    };
    more();
  });
  return big;
}

/** A loopback URL nobody listens on: a port taken and given back. */
async function nobodyListening(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}`;
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
