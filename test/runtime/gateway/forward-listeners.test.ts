import { createServer, get, type IncomingMessage, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnthropicProvider } from '../../../adapters/anthropic/provider.ts';
import { createEmulator, DEFAULT_API_KEY, type Listening } from '../../../adapters/emulator/index.ts';
import { type ProviderResponse, readAll, readPieces } from '../../../adapters/provider.ts';
import { readLimited, responseSink } from '../../../runtime/faces/gateway/common.ts';
import type { ModelCall } from '../../../runtime/gateway/call.ts';
import type { Admitted } from '../../../runtime/gateway/decide.ts';
import { type Answer, forward } from '../../../runtime/gateway/forward.ts';
import { CollectingSink } from '../../../runtime/gateway/sink.ts';

/*
 * A response body outlives its call (a keep-alive client can let go of it late): once read, it
 * must hold none of the reader's listeners — they reach the whole call, and a body promoted to the
 * old generation kept all of it alive through every scavenge (bench/profile.ts --trace-gc). Only a
 * listener that swallows a late error stays, so an error on a finished body cannot crash the process.
 */

let server: Listening;
let provider: AnthropicProvider;
/** The responses the real provider returned, as forward got them. */
const seen: ProviderResponse[] = [];

beforeAll(async () => {
  server = await createEmulator().listen();
  const real = new AnthropicProvider('anthropic', {
    baseUrl: server.url,
    apiKey: DEFAULT_API_KEY,
    timeoutMs: 30_000,
  });
  const send = real.send.bind(real);
  real.send = async (req) => {
    const res = await send(req);
    seen.push(res);
    return res;
  };
  provider = real;
});
afterAll(() => server.close());

function call(stream: boolean): ModelCall {
  const body = {
    model: 'claude-haiku-4-5',
    max_tokens: 64,
    ...(stream ? { stream: true } : {}),
    messages: [{ role: 'user' as const, content: 'hi' }],
  };
  return {
    identity: { team: 't', env: 'e', seat: 's' },
    requestId: 'req_listeners',
    body,
    raw: Buffer.from(JSON.stringify(body)),
    headers: { 'anthropic-version': '2023-06-01' },
    streamKey: 'k',
  };
}

const admitted = {
  ok: true,
  model: 'claude-haiku-4-5',
  provider: 'anthropic',
  failover: [],
  maxTokens: 64,
  reservation: { id: 'res_x', amount: 1, scopes: [], createdAt: 0, expiresAt: 0 },
  identity: { team: 't', env: 'e', seat: 's' },
  pricing: {},
} as unknown as Admitted;

/** The listeners on a finished body that are not node's own (http client's responseOnEnd). */
function ours(res: ProviderResponse): Record<string, number> {
  const out: Record<string, number> = {};
  for (const ev of res.body.eventNames()) {
    const fns = res.body.listeners(ev).filter((f) => f.name !== 'responseOnEnd');
    if (fns.length) out[String(ev)] = fns.length;
  }
  return out;
}

describe('a read response body lets go of its reader', () => {
  for (const stream of [true, false]) {
    it(`forward, ${stream ? 'streamed' : 'whole'}: only the late-error guard stays`, async () => {
      const sink = new CollectingSink();
      const providers = new Map([['anthropic', provider]]);
      const answer = (await forward({ providers } as never, call(stream), admitted, sink, {
        started: 0,
        ended: 0,
      })) as Answer;
      answer.rest();
      expect(answer.status).toBe(200);
      expect(answer.billed.tokens.output).toBeGreaterThan(0);
      expect(sink.json()).toBeDefined();
      const res = seen.at(-1)!;
      expect(ours(res)).toEqual({ error: 1 });
      // A late error on the finished body is swallowed, not thrown.
      expect(() => res.body.emit('error', new Error('late'))).not.toThrow();
    });
  }

  it('readAll: the same, and a body that breaks off still rejects', async () => {
    const res = await provider.send({
      body: Buffer.from(JSON.stringify(call(false).body)),
      headers: { 'anthropic-version': '2023-06-01' },
      requestId: 'req_readall',
    });
    const buf = await readAll(res.body);
    expect(JSON.parse(buf.toString()).type).toBe('message');
    expect(ours(res)).toEqual({ error: 1 });

    // A body that breaks off: a server that sends half an answer and drops the connection.
    const half = createServer((_req, r) => {
      r.writeHead(200, { 'content-length': '100' });
      r.write('{"type":"mess', () => r.socket?.destroy());
    });
    await new Promise<void>((ok) => half.listen(0, '127.0.0.1', ok));
    const { port } = half.address() as AddressInfo;
    const broken = await new Promise<IncomingMessage>((ok) => get(`http://127.0.0.1:${port}/`, ok));
    const reading = readAll(broken);
    await expect(reading).rejects.toThrow(/aborted|broke off/);
    expect(ours({ body: broken } as unknown as ProviderResponse)).toEqual({ error: 1 });
    half.close();
  });
});

describe('readPieces', () => {
  /** Reads a body piece by piece: the pieces, and how it ended. */
  const read = (body: Readable) =>
    new Promise<{ text: string; err?: Error; pieces: number }>((resolve) => {
      let text = '';
      let pieces = 0;
      let ends = 0;
      readPieces(
        body,
        (c) => {
          pieces++;
          text += c.toString();
        },
        (err) => {
          ends++;
          // Once, and only once: a second end would settle a call twice.
          setImmediate(() => resolve({ text, err, pieces: ends === 1 ? pieces : -1 }));
        },
      );
    });

  it("the provider client's body: every piece in order, then one end; nothing of the reader's left on it", async () => {
    // A stream written in pieces, some before the reader asks, some after.
    const slow = createServer((req, r) => {
      req.resume();
      r.writeHead(200, { 'content-type': 'text/event-stream' });
      r.write('one ');
      setTimeout(() => r.write('two '), 20);
      setTimeout(() => r.end('three'), 40);
    });
    await new Promise<void>((ok) => slow.listen(0, '127.0.0.1', ok));
    const { port } = slow.address() as AddressInfo;
    const p = new AnthropicProvider('anthropic', {
      baseUrl: `http://127.0.0.1:${port}`,
      apiKey: DEFAULT_API_KEY,
      timeoutMs: 30_000,
    });
    try {
      const res = await p.send({ body: Buffer.from('{}'), headers: {}, requestId: 'req_pieces' });
      await new Promise((r) => setTimeout(r, 10)); // the first piece waits for its reader
      const got = await read(res.body);
      expect(got).toMatchObject({ text: 'one two three', err: undefined });
      expect(got.pieces).toBeGreaterThan(0);
      expect(ours(res)).toEqual({ error: 1 });

      // Dropped by its reader midway: the end says it broke off, once.
      const res2 = await p.send({ body: Buffer.from('{}'), headers: {}, requestId: 'req_pieces2' });
      const reading = read(res2.body);
      res2.body.destroy();
      const cut = await reading;
      expect(cut.err?.message).toMatch(/dropped by its reader/);
      expect(cut.pieces).not.toBe(-1);
    } finally {
      await p.close();
      slow.close();
    }
  });

  it('any other stream: through its events, the same order and end, its listeners taken off', async () => {
    const body = Readable.from([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')], { objectMode: false });
    expect(await read(body)).toMatchObject({ text: 'abc', err: undefined, pieces: 3 });
    expect(body.listenerCount('data') + body.listenerCount('end') + body.listenerCount('close')).toBe(0);

    const broken = new Readable({ read() {} });
    const reading = read(broken);
    broken.push('x');
    broken.destroy();
    const got = await reading;
    expect(got.text).toBe('x');
    expect(got.err?.message).toMatch(/Premature close/);
  });
});

describe('an answer that breaks off', () => {
  it('forward, streamed: billed for what it showed, coded by how the provider failed', async () => {
    // A provider that starts a stream and drops the connection after its first event.
    const start = {
      type: 'message_start',
      message: {
        id: 'msg_cut',
        type: 'message',
        role: 'assistant',
        model: 'claude-haiku-4-5',
        content: [],
        stop_reason: null,
        usage: { input_tokens: 12, output_tokens: 1 },
      },
    };
    const cutting = createServer((req, r) => {
      req.resume();
      r.writeHead(200, { 'content-type': 'text/event-stream' });
      r.write(`event: message_start\ndata: ${JSON.stringify(start)}\n\n`, () => r.socket?.destroy());
    });
    await new Promise<void>((ok) => cutting.listen(0, '127.0.0.1', ok));
    const { port } = cutting.address() as AddressInfo;
    const cut = new AnthropicProvider('anthropic', {
      baseUrl: `http://127.0.0.1:${port}`,
      apiKey: DEFAULT_API_KEY,
      timeoutMs: 30_000,
    });
    try {
      const sink = new CollectingSink();
      const answer = (await forward(
        { providers: new Map([['anthropic', cut]]) } as never,
        call(true),
        admitted,
        sink,
        {
          started: 0,
          ended: 0,
        },
      )) as Answer;
      answer.rest();
      expect(answer.aborted).toBe(true);
      expect(answer.errorType).toBe('upstream_network');
      expect(answer.billed.tokens.input).toBe(12);
    } finally {
      await cut.close();
      cutting.close();
    }
  });
});

describe("a client's request and response let go of the gateway's listeners", () => {
  it('readLimited and the response sink detach once the answer is written', async () => {
    const left: Record<string, number>[] = [];
    const server = createServer(async (req, res) => {
      const before = { close: res.listenerCount('close'), aborted: req.listenerCount('aborted') };
      const raw = await readLimited(req, 1024);
      const sink = responseSink(req, res);
      sink.head(200, { 'content-type': 'application/json' });
      sink.chunk(raw);
      sink.end();
      left.push({
        data: req.listenerCount('data'),
        end: req.listenerCount('end'),
        close: res.listenerCount('close') - before.close,
        aborted: req.listenerCount('aborted') - before.aborted,
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const { port } = server.address() as AddressInfo;
    const answer = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '{"a":1}' });
    expect(await answer.json()).toEqual({ a: 1 });
    expect(left).toEqual([{ data: 0, end: 0, close: 0, aborted: 0 }]);
    server.close();
  });

  it('readLimited still refuses a body over its limit', async () => {
    const server = createServer(async (req, res) => {
      const r = await readLimited(req, 4).then(
        () => 'read',
        (err: Error) => err.message,
      );
      res.end(JSON.stringify({ r, data: req.listenerCount('data') }));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const { port } = server.address() as AddressInfo;
    // Chunked (no content-length): the limit is found while reading, not from the header.
    const text = await new Promise<string>((ok, fail) => {
      const r = request({ host: '127.0.0.1', port, method: 'POST', path: '/' }, (res) => {
        let out = '';
        res.on('data', (c) => {
          out += c;
        });
        res.on('end', () => ok(out));
      });
      r.on('error', fail);
      r.write('x'.repeat(10));
      r.end('x'.repeat(10));
    });
    expect(JSON.parse(text)).toEqual({ r: expect.stringMatching(/request_too_large/), data: 0 });
    server.close();
  });
});
