import type { IncomingHttpHeaders } from 'node:http';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { writeMessage } from './write.ts';

/** What an answer head may not hold: control characters but tab, a CR or LF not ending a line. */
const BAD_HEAD = /[^\t\r\n\x20-\x7e\x80-\xff]|\r(?!\n)|(?<!\r)\n/;

/**
 * HTTP/1.1 to one origin over keep-alive connections: what the provider client (upstream.ts) sends
 * through. A request is one write (its head and body together, write.ts); an answer's head is parsed
 * here from the bytes, its body handed on as it comes — framed by content-length, chunked, or the
 * connection's end — and the connection goes back to the pool once the body is complete. No
 * pipelining: one exchange on a connection at a time.
 *
 * It replaces undici's Agent, which spent ~80k instructions a call more on the same proxying
 * (bench/instructions.ts with a bare proxy on each: 306k against 227k a call; timed, 69–77 against
 * 52–58 µs of CPU a call): a Request object and its header checks, a queue, a wasm parser calling
 * back into JavaScript for every header name and value, timers of its own.
 */

/** What an exchange is told, in order: a head (1xx heads are skipped here), body pieces, then
 * complete or error — or error alone. Nothing after complete or error. */
export interface ExchangeHandler {
  readonly method: string;
  /** The request's bytes: its head (with Host and content-length) and body. */
  readonly head: string;
  readonly requestBody: Buffer | undefined;
  /** Set once the exchange has a connection: aborts it (drops the connection). */
  attach(abort: (err: Error) => void, resume: () => void): void;
  onHead(status: number, headers: IncomingHttpHeaders): void;
  /** A piece of the body; false: stop reading until resumed. */
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  onError(err: Error): void;
  /** True once aborted before it had a connection: the pool skips it. */
  readonly dropped: boolean;
}

/** Errors of the connection, named for the caller to map. */
export class H1Error extends Error {
  constructor(
    message: string,
    readonly kind: 'timeout' | 'network',
  ) {
    super(message);
    this.name = 'H1Error';
  }
}

export interface PoolOptions {
  /** Connections at most; exchanges beyond wait in order. */
  maxSockets: number;
  /** Longest silence of the provider in an exchange: before the head, or between body pieces. */
  timeoutMs: number;
}

/** An idle connection is dropped after this long (or the server's keep-alive hint less a second). */
const IDLE_MS = 4_000;
/** Largest answer head (status line and headers). */
const MAX_HEAD = 64 * 1024;
/** Largest chunk-size or trailer line. */
const MAX_LINE = 8 * 1024;

export class Pool {
  private readonly idle: Connection[] = [];
  private readonly queue: ExchangeHandler[] = [];
  private readonly all = new Set<Connection>();
  private closed = false;
  readonly secure: boolean;
  readonly hostname: string;
  readonly port: number;
  /** The Host header's value. */
  readonly host: string;

  constructor(
    origin: string,
    readonly opts: PoolOptions,
  ) {
    const url = new URL(origin);
    this.secure = url.protocol === 'https:';
    this.hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.port = url.port ? Number(url.port) : this.secure ? 443 : 80;
    this.host = url.host;
  }

  dispatch(ex: ExchangeHandler): void {
    if (this.closed) return void ex.onError(new H1Error('client closed', 'network'));
    let idle = this.idle.pop();
    while (idle && !idle.usable()) idle = this.idle.pop();
    if (idle) idle.start(ex);
    else if (this.all.size < this.opts.maxSockets) this.connect().start(ex);
    else this.queue.push(ex);
  }

  /** A connection done with its exchange: the next waiting exchange takes it, or it idles. */
  release(conn: Connection): void {
    if (this.queue.length) {
      // Handed on in the next turn, not from inside the answer's last read: a provider that closes
      // the connection right after its answer (without saying so) is seen closed first, and the
      // waiting call goes to a new connection (gone) instead of failing on this one.
      setImmediate(() => {
        if (!conn.usable()) return;
        const next = this.nextQueued();
        if (next) conn.start(next);
        else this.rest(conn);
      });
    } else this.rest(conn);
  }

  private rest(conn: Connection): void {
    if (this.closed) conn.destroy();
    else {
      this.idle.push(conn);
      conn.idle();
    }
  }

  /** A connection gone (closed, failed, timed out idle). */
  gone(conn: Connection): void {
    if (!this.all.delete(conn)) return;
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    const next = this.closed ? undefined : this.nextQueued();
    if (next) this.connect().start(next);
  }

  /** Drops every connection (answers in flight break) and fails what waits. */
  close(): void {
    this.closed = true;
    for (const ex of this.queue.splice(0)) ex.onError(new H1Error('client closed', 'network'));
    for (const c of [...this.all]) c.destroy();
  }

  private connect(): Connection {
    const c = new Connection(this);
    this.all.add(c);
    return c;
  }

  private nextQueued(): ExchangeHandler | undefined {
    let ex = this.queue.shift();
    while (ex?.dropped) ex = this.queue.shift();
    return ex;
  }
}

enum Body {
  None,
  Length,
  Chunked,
  UntilClose,
}

enum Chunk {
  Size,
  Data,
  DataEnd,
  Trailer,
}

class Connection {
  private readonly socket: Socket;
  private ex: ExchangeHandler | undefined;
  /** Bytes of a head not complete yet. */
  private headBuf: Buffer | undefined;
  private body = Body.None;
  private left = 0;
  private chunk = Chunk.Size;
  private line = '';
  private reusable = true;
  private idleMs = IDLE_MS;
  private paused = false;
  private dead = false;

  constructor(private readonly pool: Pool) {
    const { hostname, port, secure } = pool;
    this.socket = secure
      ? tlsConnect({
          host: hostname,
          port,
          servername: isIP(hostname) ? undefined : hostname,
          ALPNProtocols: ['http/1.1'],
        })
      : netConnect({ host: hostname, port });
    this.socket.setNoDelay(true);
    this.socket.on('data', (d: Buffer) => this.data(d));
    this.socket.on('end', () => this.ended());
    this.socket.on('error', (err) => this.fail(new H1Error(err.message, 'network')));
    this.socket.on('close', () => this.fail(new H1Error('other side closed', 'network')));
    this.socket.on('timeout', () => this.fail(new H1Error('timeout', 'timeout')));
  }

  start(ex: ExchangeHandler): void {
    this.ex = ex;
    this.headBuf = undefined;
    this.body = Body.None;
    this.reusable = true;
    this.socket.setTimeout(this.pool.opts.timeoutMs);
    ex.attach(
      (err) => {
        if (this.ex !== ex) return;
        this.ex = undefined;
        ex.onError(err);
        this.destroy();
      },
      () => {
        if (this.ex === ex && this.paused) {
          this.paused = false;
          this.socket.setTimeout(this.pool.opts.timeoutMs);
          this.socket.resume();
        }
      },
    );
    writeMessage(this.socket, ex.head, ex.requestBody);
  }

  idle(): void {
    this.socket.setTimeout(this.idleMs);
  }

  /** Open, and nobody closed it: it can carry an exchange. */
  usable(): boolean {
    return !this.dead && !this.socket.destroyed && this.socket.readable && this.socket.writable;
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    const ex = this.ex;
    this.ex = undefined;
    this.socket.destroy();
    this.pool.gone(this);
    ex?.onError(new H1Error('client closed', 'network'));
  }

  private data(d: Buffer): void {
    let at = 0;
    while (at < d.length) {
      const ex = this.ex;
      if (!ex) {
        // Bytes no exchange asked for (after a complete answer): the connection cannot be trusted.
        this.destroy();
        return;
      }
      if (this.body === Body.None) {
        at = this.head(d, at, ex);
        if (at < 0) return;
        continue;
      }
      at = this.bodyBytes(d, at, ex);
      if (at < 0) return;
    }
  }

  /** Parses (part of) an answer's head from d[at..]; returns where its body starts, or -1 when the
   * head is not complete yet (or failed). */
  private head(d: Buffer, at: number, ex: ExchangeHandler): number {
    let buf = at === 0 ? d : d.subarray(at);
    let from = 0;
    if (this.headBuf) {
      from = Math.max(0, this.headBuf.length - 3);
      buf = Buffer.concat([this.headBuf, buf]);
    }
    const end = buf.indexOf('\r\n\r\n', from, 'latin1');
    if (end < 0) {
      if (buf.length > MAX_HEAD) this.protocol(`an answer head over ${MAX_HEAD} bytes`);
      else this.headBuf = buf;
      return -1;
    }
    const consumed = end + 4 - (this.headBuf ? this.headBuf.length : 0);
    this.headBuf = undefined;
    // Latin-1, as node:http reads a head: every value a byte a character, none past U+00FF.
    const text = buf.toString('latin1', 0, end);
    if (BAD_HEAD.test(text)) {
      // As llhttp refuses it: a control character, or a CR or LF not ending a line, in the head
      // (passed on, a bare LF in a value would split the client's answer head).
      this.protocol('a control character in the answer head');
      return -1;
    }
    // The status line: "HTTP/1.1 200 OK" (the reason may be missing).
    let lineStart = text.indexOf('\r\n');
    if (lineStart < 0) lineStart = text.length;
    const status = STATUS_LINE.test(text.slice(0, lineStart)) ? Number(text.slice(9, 12)) : Number.NaN;
    if (Number.isNaN(status)) {
      this.protocol(`not an HTTP/1.1 answer: ${JSON.stringify(text.slice(0, 40))}`);
      return -1;
    }
    const http10 = text.charCodeAt(7) === 48;
    // No prototype (as node:http's): a header named __proto__ or constructor is only a header.
    const headers = { __proto__: null } as unknown as IncomingHttpHeaders;
    lineStart += 2;
    while (lineStart < text.length) {
      let lineEnd = text.indexOf('\r\n', lineStart);
      if (lineEnd < 0) lineEnd = text.length;
      const colon = text.indexOf(':', lineStart);
      const first = text.charCodeAt(lineStart);
      if (colon <= lineStart || colon > lineEnd || first === 32 || first === 9) {
        this.protocol(
          `a malformed header line: ${JSON.stringify(text.slice(lineStart, lineEnd).slice(0, 40))}`,
        );
        return -1;
      }
      const name = text.slice(lineStart, colon).toLowerCase();
      const value = text.slice(colon + 1, lineEnd).trim();
      // As undici's parseHeaders: a repeated header becomes an array of its values.
      const had = headers[name];
      if (had === undefined) headers[name] = value;
      else if (Array.isArray(had)) had.push(value);
      else headers[name] = [had, value];
      lineStart = lineEnd + 2;
    }
    if (status < 200) {
      if (status === 101) {
        this.protocol('an unexpected protocol switch (101)');
        return -1;
      }
      return at + consumed; // informational: the answer's own head follows
    }
    const connection = headerText(headers.connection).toLowerCase();
    if (connection.includes('close') || (http10 && !connection.includes('keep-alive'))) this.reusable = false;
    const hint = /timeout=(\d+)/.exec(headerText(headers['keep-alive']));
    if (hint) this.idleMs = Math.min(IDLE_MS, Number(hint[1]) * 1000 - 1000);
    if (this.idleMs < 1000) this.reusable = false;
    const te = headerText(headers['transfer-encoding']).toLowerCase();
    const cl = headers['content-length'];
    if (ex.method === 'HEAD' || status === 204 || status === 304) {
      this.body = Body.Length;
      this.left = 0;
    } else if (te) {
      if (!/(^|,)\s*chunked\s*$/.test(te)) {
        this.body = Body.UntilClose;
        this.reusable = false;
      } else {
        this.body = Body.Chunked;
        this.chunk = Chunk.Size;
        this.line = '';
      }
    } else if (cl !== undefined) {
      const n = Array.isArray(cl) ? Number.NaN : Number(cl);
      if (!Number.isSafeInteger(n) || n < 0 || !/^\d+$/.test(cl as string)) {
        this.protocol(`an invalid content-length: ${JSON.stringify(cl)}`);
        return -1;
      }
      this.body = Body.Length;
      this.left = n;
    } else {
      this.body = Body.UntilClose;
      this.reusable = false;
    }
    ex.onHead(status, headers);
    if (this.ex !== ex) return -1; // dropped in onHead
    if (this.body === Body.Length && this.left === 0) {
      this.finish(ex, d.length - (at + consumed));
      return -1;
    }
    return at + consumed;
  }

  /** Body bytes from d[at..]; returns where the next answer would start, or -1 when done with d. */
  private bodyBytes(d: Buffer, at: number, ex: ExchangeHandler): number {
    if (this.body === Body.UntilClose) {
      this.give(ex, at === 0 ? d : d.subarray(at));
      return -1;
    }
    if (this.body === Body.Length) {
      const n = Math.min(this.left, d.length - at);
      this.left -= n;
      const piece = at === 0 && n === d.length ? d : d.subarray(at, at + n);
      if (n > 0 && !this.give(ex, piece)) return -1;
      if (this.left === 0) this.finish(ex, d.length - (at + n));
      return -1;
    }
    // Chunked.
    while (at < d.length) {
      if (this.chunk === Chunk.Data) {
        const n = Math.min(this.left, d.length - at);
        this.left -= n;
        const piece = d.subarray(at, at + n);
        at += n;
        if (this.left === 0) this.chunk = Chunk.DataEnd;
        if (!this.give(ex, piece)) return -1;
        continue;
      }
      const nl = d.indexOf(10, at);
      const part = d.toString('latin1', at, nl < 0 ? d.length : nl + 1);
      at = nl < 0 ? d.length : nl + 1;
      this.line += part;
      if (nl < 0) {
        if (this.line.length > MAX_LINE) return this.protocol('a chunk line too long');
        return -1;
      }
      const line = this.line.endsWith('\r\n') ? this.line.slice(0, -2) : this.line.slice(0, -1);
      this.line = '';
      if (this.chunk === Chunk.DataEnd) {
        if (line !== '') return this.protocol('chunk data longer than its size');
        this.chunk = Chunk.Size;
      } else if (this.chunk === Chunk.Size) {
        const semi = line.indexOf(';');
        const hex = (semi < 0 ? line : line.slice(0, semi)).trim();
        if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) return this.protocol(`a bad chunk size ${JSON.stringify(hex)}`);
        this.left = Number.parseInt(hex, 16);
        this.chunk = this.left === 0 ? Chunk.Trailer : Chunk.Data;
      } else if (line === '') {
        // The end of the trailers: the answer is complete.
        this.finish(ex, d.length - at);
        return -1;
      }
    }
    return -1;
  }

  /**
   * Hands a piece on. When the reader asks to wait, the socket is paused: what this read brought is
   * still handed on (it is in memory already), no more is read until the reader resumes. False when
   * the exchange ended meanwhile (the reader dropped it).
   */
  private give(ex: ExchangeHandler, piece: Buffer): boolean {
    const more = ex.onData(piece);
    if (this.ex !== ex) return false;
    if (!more && !this.paused) {
      this.paused = true;
      // Not the provider's silence: no timeout while the reader holds the connection back.
      this.socket.setTimeout(0);
      this.socket.pause();
    }
    return true;
  }

  /** The answer is complete; `extra` bytes came after it. */
  private finish(ex: ExchangeHandler, extra: number): void {
    this.ex = undefined;
    this.body = Body.None;
    this.socket.setTimeout(0);
    ex.onComplete();
    if (extra > 0 || !this.reusable || this.dead) this.destroy();
    else {
      if (this.paused) {
        this.paused = false;
        this.socket.resume();
      }
      this.pool.release(this);
    }
  }

  private ended(): void {
    const ex = this.ex;
    if (ex && this.body === Body.UntilClose) {
      this.ex = undefined;
      ex.onComplete();
    }
    this.fail(new H1Error('other side closed', 'network'));
  }

  private fail(err: H1Error): void {
    const ex = this.ex;
    if (ex) {
      this.ex = undefined;
      ex.onError(err);
    }
    this.destroy();
  }

  private protocol(what: string): -1 {
    this.fail(new H1Error(`the provider sent ${what}`, 'network'));
    return -1;
  }
}

const STATUS_LINE = /^HTTP\/1\.[01] [1-9]\d\d( |$)/;

const headerText = (v: string | string[] | undefined): string =>
  v === undefined ? '' : Array.isArray(v) ? v.join(',') : v;
