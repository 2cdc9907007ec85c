import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Upstream } from '../../adapters/http/upstream.ts';
import { ProviderError, readAll } from '../../adapters/provider.ts';

/**
 * The providers' HTTP/1.1 client (adapters/http/h1.ts, through upstream.ts) against a provider
 * written byte by byte: a raw TCP server whose answers are the exact bytes each test gives, split
 * where the test says. What a real provider's framing can be — chunked with extensions and
 * trailers, informational heads, no body, a body to the connection's end — and what it must never
 * be taken for.
 */

interface Seen {
  head: string;
  body: Buffer;
}

/** An answer: the bytes to write, in the pieces given (each written on its own, a tick apart). */
type Answer = (Buffer | string)[] | ((socket: Socket, req: Seen) => void);

let server: Server;
let origin: string;
let answers: Answer[] = [];
const seen: Seen[] = [];
let connections = 0;

beforeAll(async () => {
  server = createServer((socket) => {
    connections++;
    let buf = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.toString('latin1', 0, end);
        const len = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const req = { head, body: buf.subarray(end + 4, end + 4 + len) };
        buf = buf.subarray(end + 4 + len);
        seen.push(req);
        const answer = answers.shift();
        if (!answer) return void socket.destroy();
        if (typeof answer === 'function') answer(socket, req);
        else void writePieces(socket, answer);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
afterEach(() => {
  answers = [];
  seen.length = 0;
});

async function writePieces(socket: Socket, pieces: (Buffer | string)[]): Promise<void> {
  for (const p of pieces) {
    if (socket.destroyed) return;
    socket.write(p);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Every byte a piece of its own. */
const bytewise = (s: string) => [...Buffer.from(s)].map((b) => Buffer.from([b]));

const client = (opts: { timeoutMs?: number; maxSockets?: number } = {}) =>
  new Upstream({ name: 'provider', timeoutMs: opts.timeoutMs ?? 10_000, maxSockets: opts.maxSockets });

const post = (u: Upstream, path = '/v1/messages', body = Buffer.from('{"a":1}'), headers: string[] = []) =>
  u.send({ origin, method: 'POST', path, headers: ['content-type', 'application/json', ...headers], body });

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error('expected a failure');
}

const CHUNKED =
  'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nx-a: 1\r\nx-a: 2\r\n\r\n' +
  '5;ext=1\r\nhello\r\n' +
  '1A\r\nabcdefghijklmnopqrstuvwxyz\r\n' +
  '0\r\nx-trailer: t\r\n\r\n';

describe('the providers’ HTTP/1.1 client', () => {
  it('writes one request: its line, Host, the headers given, its own content-length, the body', async () => {
    answers.push(['HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok']);
    const u = client();
    try {
      const r = await post(u, '/v1/messages?beta=true', Buffer.from('{"a":1}'), [
        'x-api-key',
        'k',
        'content-length',
        '999',
      ]);
      expect((await readAll(r.body)).toString()).toBe('ok');
      const [req] = seen;
      const lines = req!.head.split('\r\n');
      expect(lines[0]).toBe('POST /v1/messages?beta=true HTTP/1.1');
      expect(lines).toContain(`host: ${new URL(origin).host}`);
      expect(lines).toContain('x-api-key: k');
      expect(lines.filter((l) => /^content-length:/i.test(l))).toEqual(['content-length: 7']);
      expect(req!.body.toString()).toBe('{"a":1}');
    } finally {
      u.close();
    }
  });

  it('refuses a header that would end its line, and sends nothing', async () => {
    const u = client();
    try {
      const err = await failure(post(u, '/v1/messages', undefined, ['x-evil', 'a\r\nx-injected: 1']));
      expect(err.message).toMatch(/invalid value for header x-evil/);
      const bad = await failure(post(u, '/v1/messages', undefined, ['bad name', 'v']));
      expect(bad.message).toMatch(/invalid header name/);
      // U+010D U+010A: their low bytes are CR LF — what a latin1 write would send.
      const wide = await failure(post(u, '/v1/messages', undefined, ['x-a', 'x\u010d\u010aX-Injected: yes']));
      expect(wide.message).toMatch(/invalid value for header x-a/);
      const path = await failure(post(u, '/v1/messages HTTP/1.1\r\nx: y\r\n\r\nGET /'));
      expect(path.message).toMatch(/invalid request path/);
      const method = await failure(u.send({ origin, method: 'GET /x', path: '/', headers: [] }));
      expect(method.message).toMatch(/invalid method/);
      expect(seen).toEqual([]);
    } finally {
      u.close();
    }
  });

  it('reads a chunked answer split at every byte: extensions and trailers left out, repeated headers kept', async () => {
    answers.push(bytewise(CHUNKED));
    const u = client();
    try {
      const r = await post(u);
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('text/event-stream');
      expect(r.headers['x-a']).toEqual(['1', '2']);
      expect(Object.getPrototypeOf(r.headers)).toBe(null);
      expect((await readAll(r.body)).toString()).toBe('helloabcdefghijklmnopqrstuvwxyz');
    } finally {
      u.close();
    }
  });

  it('takes a header named __proto__ as a header, not as the headers’ prototype', async () => {
    answers.push(['HTTP/1.1 200 OK\r\n__proto__: x\r\nconstructor: y\r\ncontent-length: 0\r\n\r\n']);
    const u = client();
    try {
      const r = await post(u);
      await readAll(r.body);
      expect(Object.keys(r.headers).sort()).toEqual(['__proto__', 'constructor', 'content-length']);
      expect(r.headers.__proto__ as unknown).toBe('x');
    } finally {
      u.close();
    }
  });

  it('keeps one connection for answers that leave it open, and opens another after one that closes it', async () => {
    const before = connections;
    answers.push(
      ['HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na'],
      [CHUNKED],
      ['HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: close\r\n\r\nc'],
      ['HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nd'],
    );
    const u = client();
    try {
      const bodies: string[] = [];
      for (let i = 0; i < 4; i++) bodies.push((await readAll((await post(u)).body)).toString());
      expect(bodies).toEqual(['a', 'helloabcdefghijklmnopqrstuvwxyz', 'c', 'd']);
      expect(connections - before).toBe(2);
    } finally {
      u.close();
    }
  });

  it('skips informational heads, in the same packet as the answer or not', async () => {
    answers.push(
      [
        'HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 3\r\n\r\nyes',
      ],
      bytewise(
        'HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\nok',
      ),
    );
    const u = client();
    try {
      const a = await post(u);
      expect([a.status, (await readAll(a.body)).toString()]).toEqual([201, 'yes']);
      const b = await post(u);
      expect([b.status, (await readAll(b.body)).toString()]).toEqual([202, 'ok']);
    } finally {
      u.close();
    }
  });

  it('answers with no body: content-length 0, 204, HEAD (whose content-length is the GET’s)', async () => {
    answers.push(
      ['HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'],
      ['HTTP/1.1 204 No Content\r\n\r\n'],
      ['HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n'],
      ['HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlast'],
    );
    const u = client();
    try {
      expect((await readAll((await post(u)).body)).length).toBe(0);
      expect((await readAll((await post(u)).body)).length).toBe(0);
      const head = await u.send({ origin, method: 'HEAD', path: '/v1/models', headers: [] });
      expect(head.headers['content-length']).toBe('1234');
      expect((await readAll(head.body)).length).toBe(0);
      // The connection is still in step: the next answer is read whole.
      expect((await readAll((await post(u)).body)).toString()).toBe('last');
    } finally {
      u.close();
    }
  });

  it('reads an answer with neither length nor chunks to the connection’s end', async () => {
    answers.push((socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nto the ');
      setTimeout(() => socket.end('end'), 5);
    });
    const u = client();
    try {
      expect((await readAll((await post(u)).body)).toString()).toBe('to the end');
    } finally {
      u.close();
    }
  });

  it('fails what is not HTTP, a bad chunk, a head that never ends, as the provider’s network failure', async () => {
    answers.push(
      ['SSH-2.0-OpenSSH\r\n\r\n'],
      ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n'],
      // A connection that closes mid-body.
      (socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab'),
      (socket) => socket.write(`HTTP/1.1 200 OK\r\nx: ${'y'.repeat(70 * 1024)}`),
    );
    const u = client();
    try {
      const notHttp = await failure(post(u));
      expect([notHttp.kind, notHttp.message]).toEqual([
        'network',
        'provider unreachable: the provider sent not an HTTP/1.1 answer: "SSH-2.0-OpenSSH"',
      ]);
      const badChunk = await post(u);
      expect((await failure(readAll(badChunk.body))).message).toMatch(/a bad chunk size "zz"/);
      const cut = await post(u);
      const broken = failure(readAll(cut.body));
      expect((await broken).message).toMatch(/^provider unreachable: other side closed/);
      const huge = await failure(post(u));
      expect(huge.message).toMatch(/an answer head over 65536 bytes/);
    } finally {
      u.close();
    }
  });

  it('fails an answer head with a control character or a bare LF, as llhttp does; reads its values as Latin-1', async () => {
    answers.push(
      ['HTTP/1.1 200 OK\r\nx-a: one\ntwo\r\ncontent-length: 0\r\n\r\n'],
      ['HTTP/1.1 200 OK\r\nx-a: bell\x07\r\ncontent-length: 0\r\n\r\n'],
      (socket) =>
        socket.write(
          Buffer.from('HTTP/1.1 200 OK\r\nx-a: caf\xc3\xa9\r\ncontent-length: 0\r\n\r\n', 'latin1'),
        ),
    );
    const u = client();
    try {
      for (let i = 0; i < 2; i++) {
        const bad = await failure(post(u));
        expect([bad.kind, bad.message]).toEqual([
          'network',
          'provider unreachable: the provider sent a control character in the answer head',
        ]);
      }
      // UTF-8 bytes come through one character a byte (node:http's reading), never past U+00FF.
      const res = await post(u);
      expect(res.headers['x-a']).toBe('caf\xc3\xa9');
      await readAll(res.body);
    } finally {
      u.close();
    }
  });

  it('drops a connection that sent more than its answer, and the answer stands', async () => {
    const before = connections;
    answers.push(
      ['HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n'],
      ['HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext'],
    );
    const u = client();
    try {
      expect((await readAll((await post(u)).body)).toString()).toBe('ok');
      expect((await readAll((await post(u)).body)).toString()).toBe('next');
      expect(connections - before).toBe(2);
    } finally {
      u.close();
    }
  });

  it('goes on after the provider closed an idle connection', async () => {
    // Closed once the answer is out; the server sees the close once the client has let go of it too.
    let closed!: Promise<unknown>;
    answers.push((socket) => {
      closed = new Promise((r) => socket.once('close', r));
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na', () => socket.end());
    });
    answers.push(['HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb']);
    const u = client();
    try {
      expect((await readAll((await post(u)).body)).toString()).toBe('a');
      await closed;
      expect((await readAll((await post(u)).body)).toString()).toBe('b');
    } finally {
      u.close();
    }
  });

  it('queues calls past maxSockets in order; one aborted while it waits is skipped', async () => {
    const before = connections;
    for (const c of 'abc') answers.push([`HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n${c}`]);
    const u = client({ maxSockets: 1 });
    try {
      const stop = new AbortController();
      const first = post(u);
      const second = u.send({
        origin,
        method: 'POST',
        path: '/x',
        headers: [],
        body: Buffer.from('2'),
        signal: stop.signal,
      });
      const third = post(u);
      stop.abort();
      expect((await failure(second)).kind).toBe('aborted');
      const got = await Promise.all(
        [first, third].map(async (p) => (await readAll((await p).body)).toString()),
      );
      expect(got).toEqual(['a', 'b']);
      expect(connections - before).toBe(1);
      expect(seen.map((s) => s.body.toString())).toEqual(['{"a":1}', '{"a":1}']);
    } finally {
      u.close();
    }
  });

  it('holds a large chunked answer back on the connection while it is not read, and delivers it intact', async () => {
    const piece = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => i % 251));
    const total = 256; // 16 MiB: more than the kernel's buffers on both sides hold
    let written = 0;
    let paused = false;
    const sum = createHash('sha256');
    answers.push((socket) => {
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n');
      const more = () => {
        while (written < total) {
          const body = piece;
          sum.update(body);
          written++;
          const last = written === total;
          socket.write(`${body.length.toString(16)}\r\n`);
          socket.write(body);
          const ok = socket.write(last ? '\r\n0\r\n\r\n' : '\r\n');
          if (!ok && !last) {
            paused = true;
            socket.once('drain', () => {
              paused = false;
              more();
            });
            return;
          }
        }
      };
      more();
    });
    const u = client({ timeoutMs: 300 });
    try {
      const r = await post(u);
      // Unread: the provider is held back, and stays so past the timeout without timing out.
      while (!paused) await new Promise((res) => setTimeout(res, 10));
      await new Promise((res) => setTimeout(res, 800));
      expect(written).toBeLessThan(total);
      const got = createHash('sha256');
      let bytes = 0;
      for await (const c of r.body) {
        got.update(c as Buffer);
        bytes += (c as Buffer).length;
      }
      expect(bytes).toBe(total * piece.length);
      expect(got.digest('hex')).toBe(sum.digest('hex'));
    } finally {
      u.close();
    }
  });
});

describe('the providers’ HTTP/1.1 client over TLS', () => {
  const dir = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));

  it('talks to an HTTPS provider whose certificate the process trusts (NODE_EXTRA_CA_CERTS), and to no other', async () => {
    const https = createHttpsServer(
      { key: readFileSync(`${dir}key.pem`), cert: readFileSync(`${dir}cert.pem`) },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ got: Buffer.concat(chunks).toString(), host: req.headers.host }));
        });
      },
    );
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    const port = (https.address() as AddressInfo).port;
    // A fresh process: the CA it trusts is read at its start.
    const run = (env: Record<string, string>) =>
      new Promise<string>((resolve) => {
        execFile(
          process.execPath,
          [
            fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url)),
            `${dir}call.ts`,
            `https://localhost:${port}`,
          ],
          { env: { ...process.env, ...env }, timeout: 60_000 },
          (_err, stdout) => resolve(stdout.trim()),
        );
      });
    try {
      const [trusted, untrusted] = await Promise.all([
        run({ NODE_EXTRA_CA_CERTS: `${dir}cert.pem` }),
        run({ NODE_EXTRA_CA_CERTS: '' }),
      ]);
      expect(JSON.parse(trusted)).toEqual({
        status: 200,
        body: { got: '{"over":"tls"}', host: `localhost:${port}` },
      });
      expect(JSON.parse(untrusted)).toMatchObject({
        kind: 'network',
        error: expect.stringMatching(/^TLS test unreachable: .*(self[- ]signed|certificate)/),
      });
    } finally {
      await new Promise<void>((r) => https.close(() => r()));
    }
  });
});
