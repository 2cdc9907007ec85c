import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { type AddressInfo, connect, type Server as NetServer, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { protocolSwitch } from '../../../adapters/http/h2c.ts';
import {
  FastH1,
  type FastOptions,
  type FastRequest,
  type FastResponse,
} from '../../../runtime/faces/gateway/fast-h1.ts';

/**
 * The gateway's fast HTTP/1.1 path (runtime/faces/gateway/fast-h1.ts) against raw bytes: what it takes it
 * answers as node:http would, and everything else — on the same connection, in order — is node:http's
 * own answer to the same bytes (checked against a plain node:http server given them).
 */

/** node:http's side: says who answered and what it read. */
function nodeHandler(req: IncomingMessage, res: ServerResponse) {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`node:http ${req.method} ${req.url} ${body.length} key=${req.headers['x-key'] ?? ''}`);
  });
}

let seenGone: boolean[] = [];
let handled = 0;
let release: (() => void) | undefined;

/** The fast side: POST /fast echoes, /stream streams, /boom fails, /badheader names a bad header value. */
function route(method: string, path: string) {
  if (method !== 'POST') return undefined;
  if (path === '/fast')
    return async (req: FastRequest, res: FastResponse) => {
      res.head(200, { 'content-type': 'text/plain', 'x-fast': 'yes' });
      res.chunk(Buffer.from(`fast ${req.url} ${req.body.length} key=${req.headers['x-key'] ?? ''}`));
      res.end();
    };
  if (path === '/stream')
    return async (_req: FastRequest, res: FastResponse) => {
      res.head(200, { 'content-type': 'text/event-stream' });
      res.chunk(Buffer.from('data: a\n\n'));
      await new Promise<void>((r) => {
        release = r;
      });
      seenGone.push(res.gone);
      res.chunk(Buffer.from('data: b\n\n'));
      res.end();
    };
  if (path === '/boom')
    return async () => {
      throw new Error('boom');
    };
  if (path === '/big')
    return async (_req: FastRequest, res: FastResponse) => {
      handled++;
      res.head(200, { 'content-type': 'text/plain' });
      res.chunk(Buffer.alloc(32 * 1024, 'b'));
      res.end();
    };
  if (path === '/badstream')
    return async (req: FastRequest, res: FastResponse) => {
      res.head(200, { 'content-type': 'text/event-stream', 'x-up': 'caf\u20ac' });
      // At once: the head goes with the first bytes; later: it goes out on its own, a turn later.
      if (req.url.endsWith('now')) res.chunk(Buffer.from('data: a\n\n'));
    };
  if (path === '/badheader')
    return async (_req: FastRequest, res: FastResponse) => {
      res.head(200, { 'x-bad': 'a\r\nx-injected: 1' });
      res.chunk(Buffer.from('no'));
      res.end();
    };
  return undefined;
}

interface Front {
  url: { port: number };
  fast: FastH1;
  net: NetServer;
  fallback: Server;
  failures: unknown[];
  close(): Promise<void>;
}

async function startFront(opts: Partial<FastOptions> = {}): Promise<Front> {
  const fallback = createHttpServer({ keepAlive: true }, nodeHandler);
  const failures: unknown[] = [];
  const fast = new FastH1(fallback, route, {
    maxBodyBytes: 1024,
    failed: (err) => failures.push(err),
    ...opts,
  });
  const front = protocolSwitch(fallback, nodeHandler, (s, f) => fast.accept(s, f));
  await new Promise<void>((r) => front.server.listen(0, '127.0.0.1', r));
  return {
    url: { port: (front.server.address() as AddressInfo).port },
    fast,
    net: front.server,
    fallback,
    failures,
    close: () =>
      new Promise<void>((done) => {
        front.destroyAll();
        front.server.close(() => done());
      }),
  };
}

/** A raw connection: what it was sent back so far, and a wait for a condition on it. */
class Raw {
  text = '';
  closed = false;
  readonly socket: Socket;
  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (d) => {
      this.text += d.toString('latin1');
    });
    this.socket.on('close', () => {
      this.closed = true;
    });
    this.socket.on('error', () => {});
  }
  send(s: string): this {
    this.socket.write(s, 'latin1');
    return this;
  }
  async until(cond: (text: string) => boolean, what: string): Promise<string> {
    const t0 = Date.now();
    while (!cond(this.text)) {
      if (Date.now() - t0 > 10_000) throw new Error(`waited for ${what}; got ${JSON.stringify(this.text)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.text;
  }
  async untilClosed(): Promise<string> {
    await this.until(() => this.closed, 'the connection to close');
    return this.text;
  }
}

const count = (text: string, s: string) => text.split(s).length - 1;
const withoutDate = (t: string) => t.replace(/Date: [^\r]*\r\n/g, '');
const post = (path: string, body: string, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

let front: Front;
let plain: Server;
let plainPort: number;

beforeAll(async () => {
  plain = createHttpServer({ keepAlive: true }, nodeHandler);
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  plainPort = (plain.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => plain.close(() => r())));
afterEach(async () => {
  await front?.close();
  seenGone = [];
  release = undefined;
});

describe('the fast HTTP/1.1 path', () => {
  it('answers what it takes; the first request it does not take, and the connection from there on, are node:http’s', async () => {
    front = await startFront();
    const c = new Raw(front.url.port);
    c.send(post('/fast?beta=true', 'abc', 'X-Key: k1\r\n'));
    let t = await c.until((x) => x.includes('fast /fast?beta=true 3 key=k1'), 'the fast answer');
    expect(t).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(t).toContain('x-fast: yes\r\n');
    expect(t).toContain('Content-Length: 29\r\n');
    expect(t).toContain('Connection: keep-alive\r\nKeep-Alive: timeout=65\r\n');
    expect(t).toMatch(/Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n/);
    c.send('GET /other HTTP/1.1\r\nHost: x\r\n\r\n');
    t = await c.until((x) => x.includes('node:http GET /other 0'), "node:http's answer");
    // Handed over: even a request the fast path would take is node:http's now.
    c.send(post('/fast', 'abcd'));
    t = await c.until((x) => x.includes('node:http POST /fast 4'), 'node:http keeping the connection');
    expect(front.fast.conns.size).toBe(0);
    c.socket.destroy();
  });

  it('answers pipelined requests in order, across the hand-over', async () => {
    front = await startFront();
    const c = new Raw(front.url.port);
    c.send(post('/fast', 'a') + post('/fast', 'bb') + post('/elsewhere', 'ccc') + post('/fast', 'dddd'));
    const t = await c.until((x) => count(x, 'HTTP/1.1 200') === 4, 'four answers');
    const order = [...t.matchAll(/(fast|node:http POST) \/\w+ (\d)/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(order).toEqual(['fast 1', 'fast 2', 'node:http POST 3', 'node:http POST 4']);
    c.socket.destroy();
  });

  it('leaves node:http every request that is not plain, answered byte for byte as node:http alone answers it', async () => {
    front = await startFront();
    const cases: Record<string, string> = {
      'a chunked body':
        'POST /fast HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      'content-length and chunked (smuggling)':
        'POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'two content-lengths':
        'POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
      'a repeated header':
        'POST /fast HTTP/1.1\r\nHost: x\r\nX-Key: one\r\nX-Key: two\r\nContent-Length: 1\r\n\r\na',
      'Expect: 100-continue':
        'POST /fast HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\na',
      'HTTP/1.0': 'POST /fast HTTP/1.0\r\nHost: x\r\nContent-Length: 1\r\n\r\na',
      'no Host': 'POST /fast HTTP/1.1\r\nContent-Length: 1\r\n\r\na',
      'a folded header': 'POST /fast HTTP/1.1\r\nHost: x\r\nX-Key: a\r\n b\r\nContent-Length: 1\r\n\r\na',
      'a bare LF': 'POST /fast HTTP/1.1\r\nHost: x\nContent-Length: 1\r\n\r\na',
      'a space before the colon': 'POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length : 1\r\n\r\na',
      'a control character': 'POST /fast HTTP/1.1\r\nHost: x\r\nX-Key: a\x01b\r\nContent-Length: 1\r\n\r\na',
      'a signed length': 'POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\na',
      'a tab after the length': 'POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 1\t\r\n\r\na',
      'a body over the limit': `POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n${'x'.repeat(2000)}`,
      'a head over 16 KiB': `POST /fast HTTP/1.1\r\nHost: x\r\nX-Big: ${'y'.repeat(17_000)}\r\nContent-Length: 1\r\n\r\na`,
      'no body length': 'POST /fast HTTP/1.1\r\nHost: x\r\n\r\n',
      'Connection: upgrade':
        'POST /fast HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: foo\r\nContent-Length: 1\r\n\r\na',
      'an absolute target': 'POST http://x/fast HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na',
    };
    for (const [what, bytes] of Object.entries(cases)) {
      const answer = async (port: number) => {
        const c = new Raw(port).send(bytes);
        await c.until((x) => c.closed || /\r\n\r\n/.test(x) || x.length > 0, `an answer to ${what}`);
        // The whole of it: node:http closes after errors; give a kept connection its body.
        await c.until(
          (x) =>
            c.closed ||
            (/\r\n\r\n/.test(x) &&
              x.length >= x.indexOf('\r\n\r\n') + 4 + Number(/Content-Length: (\d+)/i.exec(x)?.[1] ?? 0)),
          `all of the answer to ${what}`,
        );
        c.socket.destroy();
        return withoutDate(c.text);
      };
      const viaFront = await answer(front.url.port);
      const alone = await answer(plainPort);
      expect(viaFront, what).toBe(alone);
      expect(viaFront, what).not.toContain('x-fast');
    }
  });

  it('streams an event stream chunked, its head first; a client that leaves is seen as gone', async () => {
    front = await startFront();
    const c = new Raw(front.url.port);
    c.send(post('/stream', '{}'));
    let t = await c.until((x) => x.includes('data: a'), 'the first event');
    expect(t).toContain('content-type: text/event-stream\r\n');
    expect(t).toContain('Transfer-Encoding: chunked\r\n\r\n9\r\ndata: a\n\n\r\n');
    release!();
    t = await c.until((x) => x.endsWith('0\r\n\r\n'), 'the end of the stream');
    expect(t.slice(t.indexOf('\r\n\r\n') + 4)).toBe('9\r\ndata: a\n\n\r\n9\r\ndata: b\n\n\r\n0\r\n\r\n');
    expect(seenGone).toEqual([false]);
    // Another on the same connection, and the client leaves in the middle.
    c.send(post('/stream', '{}'));
    await c.until((x) => count(x, 'data: a') === 2, 'the second stream');
    c.socket.destroy();
    await new Promise<void>((r) => {
      const wait = () => (front.fast.conns.size === 0 ? r() : setTimeout(wait, 5));
      wait();
    });
    release!();
    await new Promise<void>((r) => {
      const wait = () => (seenGone.length === 2 ? r() : setTimeout(wait, 5));
      wait();
    });
    expect(seenGone).toEqual([false, true]);
  });

  it('honours Connection: close, and closes idle connections when the server closes (a busy one after its answer)', async () => {
    front = await startFront();
    const c = new Raw(front.url.port);
    c.send(post('/fast', 'a', 'Connection: close\r\n'));
    const t = await c.untilClosed();
    expect(t).toContain('Connection: close\r\n');
    expect(t).toContain('fast /fast 1');

    const idle = new Raw(front.url.port).send(post('/fast', 'a'));
    await idle.until((x) => x.includes('fast /fast 1'), 'an answer');
    const busy = new Raw(front.url.port).send(post('/stream', '{}'));
    await busy.until((x) => x.includes('data: a'), 'a stream under way');
    front.fast.closeIdle();
    await idle.untilClosed();
    expect(busy.closed).toBe(false);
    release!();
    const tail = await busy.untilClosed();
    expect(tail.endsWith('0\r\n\r\n')).toBe(true);
  });

  it('answers 408 to a request that does not come whole in time, and closes a kept connection left idle', async () => {
    front = await startFront({ headersTimeoutMs: 200, requestTimeoutMs: 400, keepAliveTimeoutMs: 200 });
    const slowHead = new Raw(front.url.port).send('POST /fast HTTP/1.1\r\nHost: x\r\n');
    expect(await slowHead.untilClosed()).toBe('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
    const slowBody = new Raw(front.url.port).send(
      'POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc',
    );
    expect(await slowBody.untilClosed()).toBe('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
    const idle = new Raw(front.url.port).send(post('/fast', 'a'));
    const t = await idle.untilClosed();
    expect(t).toContain('Keep-Alive: timeout=0');
    expect(t).toContain('fast /fast 1');
  });

  it('answers 500 when its handler fails or names a header that cannot go out, and keeps serving', async () => {
    front = await startFront();
    const c = new Raw(front.url.port);
    c.send(post('/boom', '{}'));
    let t = await c.until((x) => x.includes('internal error'), 'a 500');
    expect(t).toMatch(/^HTTP\/1\.1 500 Internal Server Error\r\n/);
    c.send(post('/badheader', '{}'));
    t = await c.until((x) => count(x, 'HTTP/1.1 500') === 2, 'a second 500');
    expect(t).not.toContain('x-injected');
    c.send(post('/fast', 'ok'));
    await c.until((x) => x.includes('fast /fast 2'), 'the next answer');
    expect(front.failures.map((e) => (e as Error).message)).toEqual([
      'boom',
      'Invalid character in header content ["x-bad"]',
    ]);
    c.socket.destroy();
  });

  it('survives clients that reset: before their first bytes, and after a Connection: close answer they did not read', async () => {
    front = await startFront();
    for (let i = 0; i < 5; i++) {
      const early = connect(front.url.port, '127.0.0.1');
      early.on('error', () => {});
      await new Promise<void>((r) => early.once('connect', () => r()));
      early.resetAndDestroy();
      const late = new Raw(front.url.port).send(post('/fast', 'a', 'Connection: close\r\n'));
      await new Promise((r) => setTimeout(r, 5));
      late.socket.resetAndDestroy();
    }
    // Still serving.
    const c = new Raw(front.url.port).send(post('/fast', 'ok'));
    await c.until((x) => x.includes('fast /fast 2'), 'an answer after the resets');
    c.socket.destroy();
  });

  it('closes a Connection: close connection itself once its answer is out, whether or not the client closes', async () => {
    front = await startFront();
    const half = connect({ port: front.url.port, host: '127.0.0.1', allowHalfOpen: true });
    half.on('error', () => {});
    half.write(post('/fast', 'a', 'Connection: close\r\n'));
    let got = '';
    half.on('data', (d) => {
      got += d;
    });
    await new Promise<void>((r) => half.once('end', () => r()));
    expect(got).toContain('fast /fast 1');
    // The client keeps its side open; the server's side is gone all the same.
    const open = () => new Promise<number>((r) => front.net.getConnections((_e, n) => r(n)));
    while ((await open()) > 0) await new Promise((r) => setTimeout(r, 5));
    half.destroy();
  });

  it('reads no further pipelined requests while a client does not read its answers, then answers them all', async () => {
    front = await startFront();
    handled = 0;
    const total = 1000; // 32 MiB of answers
    const c = new Raw(front.url.port);
    c.socket.pause();
    c.send(post('/big', '').repeat(total));
    // Until the server stops taking requests: a count that holds still while nothing is read.
    let last = -1;
    while (handled !== last) {
      last = handled;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(handled).toBeLessThan(total / 2);
    let bytes = 0;
    c.socket.removeAllListeners('data');
    c.socket.on('data', (d) => {
      bytes += d.length;
    });
    c.socket.resume();
    while (handled < total) await new Promise((r) => setTimeout(r, 10));
    const body = 32 * 1024;
    while (bytes < total * body) await new Promise((r) => setTimeout(r, 10));
    c.socket.destroy();
  });

  it('drops the connection, not the process, when a stream’s head cannot go out; a 500 when it can still say so', async () => {
    front = await startFront();
    const later = new Raw(front.url.port).send(post('/badstream', '{}'));
    await later.untilClosed();
    expect(later.text).toBe('');
    const now = new Raw(front.url.port).send(post('/badstream?now', '{}'));
    const t = await now.until((x) => x.includes('internal error'), 'a 500');
    expect(t).toMatch(/^HTTP\/1\.1 500 /);
    expect(t).not.toContain('caf');
    now.socket.destroy();
  });

  it('reads a request however its bytes are split, a large body in many pieces', async () => {
    front = await startFront({ maxBodyBytes: 1 << 20 });
    const big = new Raw(front.url.port);
    const body = 'z'.repeat(600_000);
    const whole = post('/fast', body);
    for (let i = 0; i < whole.length; i += 10_000) big.send(whole.slice(i, i + 10_000));
    await big.until((x) => x.includes('fast /fast 600000'), 'the large body read whole');
    big.socket.destroy();
    const bytes = post('/fast', 'hello world', 'X-Key: split\r\n');
    for (let at = 1; at < bytes.length; at += 7) {
      const c = new Raw(front.url.port);
      c.send(bytes.slice(0, at));
      await new Promise((r) => setTimeout(r, 2));
      c.send(bytes.slice(at));
      await c.until((x) => x.includes('fast /fast 11 key=split'), `the answer split at ${at}`);
      c.socket.destroy();
    }
  });
});
