import { type IncomingHttpHeaders, type Server, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { writeMessage } from '../../../adapters/http/write.ts';
import type { Sink } from '../../gateway/sink.ts';

/**
 * The gateway's hot path on HTTP/1.1 without node:http's server objects: a connection's requests
 * are read from its bytes and answered in bytes, as long as each is a plain one the route takes
 * (`POST /v1/messages` with a content-length, say); the first request that is anything else — any
 * other path or method, a chunked or oversized body, `Expect`, `Upgrade`, a repeated header, a
 * head that is not plain HTTP/1.1 — and the connection from there on go to node:http, its bytes
 * handed over unread. node:http stays the judge of everything unusual (its errors, limits and
 * framing); this path only does the common case, without node:http's request and response
 * streams, header objects and per-request listeners: the gateway spent 120 instead of 136 µs of
 * CPU a call on it (bench/ab.ts, 20 ms streaming at 200 connections; its main thread 103 against
 * 122), a bare proxy 51 instead of 64.
 *
 * What node:http does that this does too: keep-alive (65 s idle), a head within 66 s and a whole
 * request within 300 s of its first byte (408 otherwise), pipelined requests answered in order,
 * `Connection: close` honoured, a Date header, chunked answers when their length is not known,
 * header names and values checked before they go out, idle connections closed when the server
 * closes (busy ones after their answer).
 */
export interface FastRequest {
  method: string;
  /** The request target as sent: path and query. */
  url: string;
  path: string;
  /** Lower-case names, as node:http's (no name twice: a repeated one goes to node:http). */
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** The handler for a request on the fast path, or undefined to leave it (and its connection) to node:http. */
export type FastRoute = (
  method: string,
  path: string,
) => ((req: FastRequest, res: FastResponse) => Promise<void>) | undefined;

export interface FastOptions {
  /** Largest body taken here (a larger one goes to node:http, which refuses it as the route would). */
  maxBodyBytes: number;
  keepAliveTimeoutMs?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Called when a handler fails (it is answered 500, or its connection closed). */
  failed?: (err: unknown, req: FastRequest | undefined) => void;
}

/** node:http's default for the whole head (--max-http-header-size). */
const MAX_HEAD = 16 * 1024;
/** Reads a request may come in before it goes to node:http instead (see FastConn.data). */
const MAX_PARTS = 256;
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** A header name (a token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** What a head line may not hold: control characters but tab (a stray CR or LF among them). */
const BAD_LINE = /[^\t\x20-\x7e\x80-\xff]/;
/** A request target taken here: origin-form, visible ASCII. */
const TARGET = /^\/[\x21-\x7e]*$/;
/** What an answer's header value may not hold (as node:http checks): control characters but tab, past U+00FF. */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const DIGITS = /^\d{1,15}$/;

/** Header names seen before, lower-cased (most repeat call after call), up to a bound. */
const LOWER = new Map<string, string>();
function lower(name: string): string | undefined {
  const known = LOWER.get(name);
  if (known !== undefined) return known;
  if (!TOKEN.test(name)) return undefined;
  const l = name.toLowerCase();
  if (LOWER.size < 512) LOWER.set(name, l);
  return l;
}

/** Answer header names checked before. */
const GOOD_NAMES = new Set<string>();

let dateAt = 0;
let dateLine = '';
/** `Date: …\r\n`, made at most once a second (as node:http caches its own). */
function date(): string {
  const now = Date.now();
  if (now - dateAt >= 1000) {
    dateAt = now - (now % 1000);
    dateLine = `Date: ${new Date(dateAt).toUTCString()}\r\n`;
  }
  return dateLine;
}

type Phase = 'idle' | 'head' | 'body' | 'busy';

export class FastH1 {
  readonly conns = new Set<FastConn>();
  closing = false;
  /** Requests answered here, and connections handed to node:http (a test's and an operator's view). */
  readonly counts = { served: 0, handedOff: 0 };
  readonly keepAliveMs: number;
  readonly headersMs: number;
  readonly requestMs: number;
  /** Bytes read and not yet taken past which a connection reads no more (a whole request's worth). */
  readonly maxUnread: number;
  /** The Connection and Keep-Alive lines of a kept connection's answers. */
  readonly keepAliveLine: string;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    /** Where a connection goes when it asks for anything this path does not take. */
    readonly fallback: Server,
    readonly route: FastRoute,
    readonly opts: FastOptions,
  ) {
    this.keepAliveMs = opts.keepAliveTimeoutMs ?? 65_000;
    this.headersMs = opts.headersTimeoutMs ?? 66_000;
    this.requestMs = opts.requestTimeoutMs ?? 300_000;
    this.maxUnread = MAX_HEAD + opts.maxBodyBytes;
    this.keepAliveLine = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(this.keepAliveMs / 1000)}\r\n`;
  }

  /** A new HTTP/1.1 connection and its first bytes. */
  accept(socket: Socket, first: Buffer): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const conn = new FastConn(this, socket);
    this.conns.add(conn);
    if (!this.sweeper) {
      // One timer for every connection's deadline: none per request.
      this.sweeper = setInterval(() => this.sweep(), 1000);
      this.sweeper.unref();
    }
    conn.data(first);
  }

  /** The server is closing: idle connections now, busy ones after their answer. */
  closeIdle(): void {
    this.closing = true;
    for (const c of this.conns) c.closeIfIdle();
  }

  forget(conn: FastConn): void {
    this.conns.delete(conn);
    if (!this.conns.size && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const c of this.conns) if (c.deadline && now >= c.deadline) c.expire();
  }
}

class FastConn {
  phase: Phase = 'idle';
  /** When the connection is dropped unless something happens (0: no deadline, an answer is under way). */
  deadline: number;
  /** The bytes not read yet, as they came (a large body is joined once, when it is whole). */
  private parts: Buffer[] = [];
  private size = 0;
  /** How far the head was searched for its end. */
  private searched = 0;
  private started = 0;
  private headEnd = 0;
  private need = 0;
  private req: FastRequest | undefined;
  private handler: ((req: FastRequest, res: FastResponse) => Promise<void>) | undefined;
  closeAfter = false;
  response: FastResponse | undefined;
  private readonly onData = (d: Buffer) => this.data(d);
  private readonly onClose = () => this.closed();

  constructor(
    readonly server: FastH1,
    readonly socket: Socket,
  ) {
    this.deadline = Date.now() + server.keepAliveMs;
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', noop);
  }

  data(d: Buffer): void {
    this.parts.push(d);
    this.size += d.length;
    // More than a whole request unread: nothing more is read until it is (in every phase: a
    // handler that answers at once leaves the connection idle between pipelined requests).
    if (this.size > this.server.maxUnread) this.socket.pause();
    if (this.phase === 'busy') return;
    // A request trickling in, a few bytes a read: node:http reads it incrementally; joined here
    // read after read it would cost its length squared.
    if (this.parts.length > MAX_PARTS) {
      this.handOff();
      return;
    }
    if (this.phase === 'body' && this.size < this.headEnd + this.need) return;
    this.parse();
  }

  /** The unread bytes as one Buffer. */
  private joined(): Buffer {
    if (this.parts.length !== 1) this.parts = [Buffer.concat(this.parts, this.size)];
    return this.parts[0]!;
  }

  /** Reads what is buffered: a whole request is answered, anything not taken goes to node:http. */
  private parse(): void {
    if (!this.size) return;
    if (this.phase === 'idle') {
      this.phase = 'head';
      this.started = Date.now();
      this.deadline = this.started + this.server.headersMs;
      this.searched = 0;
    }
    if (this.phase === 'head') {
      const buf = this.joined();
      const end = buf.indexOf(CRLFCRLF, Math.max(0, this.searched - 3));
      if (end < 0) {
        this.searched = buf.length;
        if (buf.length > MAX_HEAD) this.handOff();
        return;
      }
      if (end + 4 > MAX_HEAD || !this.head(buf.toString('latin1', 0, end))) {
        this.handOff();
        return;
      }
      this.headEnd = end + 4;
      this.phase = 'body';
      this.deadline = this.started + this.server.requestMs;
    }
    const total = this.headEnd + this.need;
    if (this.size < total) return;
    const buf = this.joined();
    const req = this.req!;
    req.body = buf.subarray(this.headEnd, total);
    this.parts = buf.length > total ? [buf.subarray(total)] : [];
    this.size = buf.length - total;
    this.phase = 'busy';
    this.deadline = 0;
    const res = new FastResponse(this);
    this.server.counts.served++;
    const handler = this.handler!;
    this.req = undefined;
    this.handler = undefined;
    handler(req, res).catch((err) => res.fail(err, req));
  }

  /** Takes the head if it is a plain request the route serves; false leaves it to node:http. */
  private head(text: string): boolean {
    const lines = text.split('\r\n');
    const line = lines[0]!;
    const sp1 = line.indexOf(' ');
    const sp2 = line.indexOf(' ', sp1 + 1);
    if (sp1 <= 0 || sp2 < 0 || line.slice(sp2 + 1) !== 'HTTP/1.1') return false;
    const method = line.slice(0, sp1);
    const url = line.slice(sp1 + 1, sp2);
    if (!TARGET.test(url)) return false;
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const handler = this.server.route(method, path);
    if (!handler) return false;
    const headers: IncomingHttpHeaders = {};
    let length: string | undefined;
    let host = false;
    for (let i = 1; i < lines.length; i++) {
      const l = lines[i]!;
      if (BAD_LINE.test(l)) return false;
      const c = l.indexOf(':');
      if (c <= 0) return false;
      const name = lower(l.slice(0, c));
      if (name === undefined || name === '__proto__' || headers[name] !== undefined) return false;
      let value = l.slice(c + 1);
      const last = value.charCodeAt(value.length - 1);
      if (
        value.charCodeAt(0) === 32 &&
        value.charCodeAt(1) !== 32 &&
        value.charCodeAt(1) !== 9 &&
        last !== 32 &&
        last !== 9
      )
        value = value.slice(1);
      else value = value.replace(/^[ \t]+|[ \t]+$/g, '');
      switch (name) {
        case 'content-length':
          // node:http refuses a tab after the digits (and takes one before): its call.
          if (l.includes('\t')) return false;
          length = value;
          break;
        case 'host':
          host = true;
          break;
        case 'transfer-encoding':
        case 'expect':
        case 'upgrade':
          return false;
        case 'connection': {
          const v = value.toLowerCase();
          if (v === 'close') this.closeAfter = true;
          else if (v !== 'keep-alive') return false;
        }
      }
      headers[name] = value;
    }
    if (!host || length === undefined || !DIGITS.test(length)) return false;
    const need = Number(length);
    if (need > this.server.opts.maxBodyBytes) return false;
    this.need = need;
    this.req = { method, url, path, headers, body: EMPTY };
    this.handler = handler;
    return true;
  }

  /** Everything from the request being read on goes to node:http, unread. */
  private handOff(): void {
    const { socket } = this;
    this.server.counts.handedOff++;
    const buf = this.size ? this.joined() : undefined;
    this.detach();
    this.parts = [];
    this.size = 0;
    socket.pause();
    if (buf) socket.unshift(buf);
    this.server.fallback.emit('connection', socket);
    socket.resume();
  }

  private detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onClose);
    // The error listener stays: a socket let go of here can still fail (ECONNRESET) after.
    this.deadline = 0;
    this.server.forget(this);
  }

  /** An answer is out: the next request, if one is buffered, or idle. */
  answered(): void {
    const socket = this.socket;
    if (this.closeAfter || this.server.closing) {
      this.detach();
      // As node:http does: closed once the answer is out, whether or not the client closes.
      socket.end();
      if (socket.writableFinished) socket.destroy();
      else socket.once('finish', () => socket.destroy());
      return;
    }
    if (socket.writableNeedDrain) {
      // The client is not reading its answers: no further request is read until it does.
      socket.pause();
      socket.once('drain', () => {
        if (!socket.destroyed && this.phase === 'busy') this.answered();
      });
      return;
    }
    this.phase = 'idle';
    this.deadline = Date.now() + this.server.keepAliveMs;
    if (socket.isPaused() && this.size <= this.server.maxUnread) socket.resume();
    if (this.size) {
      // Not inside the answer's own call stack.
      setImmediate(() => {
        if (this.phase === 'idle' && !this.socket.destroyed) this.parse();
      });
    }
  }

  closeIfIdle(): void {
    if (this.phase === 'idle') {
      this.detach();
      this.socket.destroy();
    }
  }

  /** A deadline passed: an idle connection is closed, a request still coming is answered 408. */
  expire(): void {
    const partial = this.phase !== 'idle';
    this.detach();
    if (partial) this.socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
    this.socket.destroy();
  }

  private closed(): void {
    this.detach();
    this.response?.left();
  }
}

const EMPTY = Buffer.alloc(0);
const noop = () => {};

/**
 * The answer to a fast-path request, as a Sink with the same behaviour as the node:http one
 * (runtime/faces/gateway/common.ts, ResponseSink): a complete answer (head, one chunk, end) goes out
 * in one write with a content-length; an event stream is written as it comes, chunked, its head
 * with its first bytes or, when they are not there yet, on the next turn of the event loop.
 */
export class FastResponse implements Sink {
  private gone_ = false;
  /** The head went out. */
  headersSent = false;
  ended = false;
  private held: { status: number; headers: Record<string, string>; body?: Buffer } | undefined;
  private streaming = false;

  constructor(private readonly conn: FastConn) {
    conn.response = this;
  }

  get gone(): boolean {
    return this.gone_ || this.conn.socket.destroyed;
  }

  /** The client went away before the answer was out. */
  left(): void {
    if (!this.ended) this.gone_ = true;
  }

  head(status: number, headers: Record<string, string>): void {
    if (this.gone_ || this.headersSent || this.held) return;
    this.held = { status, headers };
    if (headers['content-type']?.includes('text/event-stream')) {
      this.streaming = true;
      setImmediate(flushHead, this);
    }
  }

  chunk(data: Buffer): void {
    const { held } = this;
    if (this.gone || this.ended) return;
    if (held && !held.body && !this.streaming) held.body = data;
    else {
      const first = held?.body;
      const socket = this.conn.socket;
      // Before cork: a head that cannot go out throws here, with the socket as it was.
      this.release();
      socket.cork();
      if (first) writeChunk(socket, first);
      writeChunk(socket, data);
      socket.uncork();
    }
  }

  end(): void {
    if (this.ended) return;
    const socket = this.conn.socket;
    if (!this.gone && !this.headersSent) {
      const { held } = this;
      const body = held?.body ?? EMPTY;
      // Made first: a header that cannot go out throws here, with nothing written or marked.
      const head = this.headOf(held?.status ?? 200, held?.headers ?? {}, body.length);
      this.held = undefined;
      this.headersSent = true;
      writeMessage(socket, head, body);
    } else if (!this.gone) socket.write('0\r\n\r\n', 'latin1');
    this.ended = true;
    this.conn.response = undefined;
    this.conn.answered();
  }

  whole(): void {
    this.streaming = false;
  }

  /** A stream's head on its own when its first bytes did not come with it. */
  flushHead(): void {
    if (!this.streaming || !this.held || this.gone || this.ended) return;
    try {
      this.release();
    } catch (err) {
      // Out of any handler's reach (a turn of its own): the connection is dropped, not the process.
      this.conn.server.opts.failed?.(err, undefined);
      this.ended = true;
      this.conn.socket.destroy();
    }
  }

  /** The handler failed: a 500 if nothing went out yet, else the connection is dropped. */
  fail(err: unknown, req: FastRequest): void {
    this.conn.server.opts.failed?.(err, req);
    if (this.ended || this.gone) return;
    if (this.headersSent) {
      this.ended = true;
      this.conn.socket.destroy();
      return;
    }
    this.held = undefined;
    this.streaming = false;
    this.head(500, { 'content-type': 'application/json' });
    this.chunk(Buffer.from('{"type":"error","error":{"type":"api_error","message":"internal error"}}'));
    this.end();
  }

  /** Writes the held head, chunked (a stream's length is not known). */
  private release(): void {
    const { held } = this;
    if (!held || this.headersSent) return;
    const head = this.headOf(held.status, held.headers, -1);
    this.held = undefined;
    this.headersSent = true;
    this.conn.socket.write(head, 'latin1');
  }

  private headOf(status: number, headers: Record<string, string>, length: number): string {
    const { conn } = this;
    return headOf(status, headers, length, conn.closeAfter || conn.server.closing, conn.server.keepAliveLine);
  }
}

const flushHead = (r: FastResponse) => r.flushHead();

function writeChunk(socket: Socket, data: Buffer): void {
  if (!data.length) return;
  socket.write(`${data.length.toString(16)}\r\n`, 'latin1');
  socket.write(data);
  socket.write('\r\n', 'latin1');
}

/** An answer's head: status line, the headers (checked as node:http checks them), then Date,
 * Connection and either the length (`length` ≥ 0) or chunked framing. */
function headOf(
  status: number,
  headers: Record<string, string>,
  length: number,
  close: boolean,
  keepAlive: string,
): string {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'unknown'}\r\n`;
  for (const name in headers) {
    const value = headers[name]!;
    if (!GOOD_NAMES.has(name)) {
      if (!TOKEN.test(name))
        throw invalidHeader('ERR_INVALID_HTTP_TOKEN', `Header name must be a valid HTTP token ["${name}"]`);
      const l = name.toLowerCase();
      // Framing is this writer's: a handler's own is not taken.
      if (l === 'content-length' || l === 'transfer-encoding' || l === 'connection' || l === 'date') continue;
      if (GOOD_NAMES.size < 512) GOOD_NAMES.add(name);
    }
    if (BAD_VALUE.test(value))
      throw invalidHeader('ERR_INVALID_CHAR', `Invalid character in header content ["${name}"]`);
    head += `${name}: ${value}\r\n`;
  }
  head += date();
  head += close ? 'Connection: close\r\n' : keepAlive;
  head += length >= 0 ? `Content-Length: ${length}\r\n\r\n` : 'Transfer-Encoding: chunked\r\n\r\n';
  return head;
}

function invalidHeader(code: string, message: string): Error {
  return Object.assign(new TypeError(message), { code });
}
