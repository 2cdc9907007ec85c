import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { ProviderError, prematureClose, READ_PIECES, READ_WHOLE } from '../provider.ts';
import { type ExchangeHandler, H1Error, Pool } from './h1.ts';

/**
 * The HTTP client every provider adapter sends through (Anthropic and OpenAI, Bedrock, Vertex, the
 * emulator): HTTP/1.1 over keep-alive connections, one pool per origin (h1.ts), bytes in and out —
 * no fetch, no Response objects. It took the place of undici's Agent, which took node:http's: each
 * step cut what a proxied call costs (bench/instructions.ts, a bare proxy on each: node:http 410k
 * instructions a call at 50 connections, undici 306k, h1.ts 227k). Each way a call can fail comes
 * out as a ProviderError of its kind.
 */
export interface UpstreamOptions {
  /** Who answers, in errors: `no answer from ${name} within 600000 ms`, `${name} unreachable: …`. */
  name: string;
  /** The most the provider may stay silent: before its answer's head, or between two pieces of
   * its body (a long stream is not cut while it keeps coming). */
  timeoutMs: number;
  /** Connections per origin. */
  maxSockets?: number;
}

export interface UpstreamResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The answer's bytes as they arrive; read it to its end (or destroy it) to free the connection. */
  body: Readable;
}

export interface UpstreamRequest {
  /** `https://api.anthropic.com`: scheme, host and port, nothing else. */
  origin: string;
  method: string;
  /** The path and query, URL-encoded. */
  path: string;
  /** Name/value pairs (`[name, value, name, value, …]`) or an object. Host is the origin's unless
   * given; content-length is always the body's own (one given is left out). */
  headers: string[] | Record<string, string>;
  body?: Buffer;
  /** Aborts the call (kill, time box): before its head, the call rejects; after, its body breaks. */
  signal?: AbortSignal;
}

export class Upstream {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly opts: UpstreamOptions) {}

  /** Sends a request; resolves with the answer's head as soon as it arrives. Rejects with a
   * ProviderError (`timeout`, `aborted`, `network`). */
  send(req: UpstreamRequest): Promise<UpstreamResponse> {
    const { signal } = req;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new ProviderError('aborted before the call', 'aborted'));
      let pool = this.pools.get(req.origin);
      if (!pool) {
        pool = new Pool(req.origin, {
          maxSockets: this.opts.maxSockets ?? 256,
          timeoutMs: this.opts.timeoutMs,
        });
        this.pools.set(req.origin, pool);
      }
      let head: string;
      try {
        head = requestHead(req, pool.host);
      } catch (err) {
        return reject(err);
      }
      pool.dispatch(new Exchange(req.method, head, req.body, resolve, reject, signal, this.opts));
    });
  }

  close(): void {
    for (const p of this.pools.values()) p.close();
    this.pools.clear();
  }
}

/** Header names as HTTP allows them (a token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** What a header value may not hold (as node:http and undici check): control characters, which
 * would end the line, and anything past U+00FF, whose low byte alone goes out (U+010D as CR). */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** A request target as it goes out: URL-encoded, visible ASCII only. */
const BAD_PATH = /[^\x21-\x7e]/;
/** Names checked before (most repeat call after call), up to a bound. */
const GOOD_NAMES = new Set<string>();

function checkName(name: string): void {
  if (GOOD_NAMES.has(name)) return;
  if (!TOKEN.test(name)) throw new ProviderError(`invalid header name ${JSON.stringify(name)}`, 'network');
  if (GOOD_NAMES.size < 512) GOOD_NAMES.add(name);
}

/** The request's head: request line, Host, the headers, content-length, the blank line. */
function requestHead(req: UpstreamRequest, host: string): string {
  const m = req.method;
  if (!TOKEN.test(m)) throw new ProviderError(`invalid method ${JSON.stringify(m)}`, 'network');
  if (BAD_PATH.test(req.path) || !req.path.startsWith('/'))
    throw new ProviderError(`invalid request path ${JSON.stringify(req.path)}`, 'network');
  let head = `${m} ${req.path} HTTP/1.1\r\n`;
  let hostGiven = false;
  const add = (name: string, value: string) => {
    checkName(name);
    if (BAD_VALUE.test(value)) throw new ProviderError(`invalid value for header ${name}`, 'network');
    const lower = name.length === 4 || name.length === 14 || name.length === 17 ? name.toLowerCase() : '';
    if (lower === 'content-length' || lower === 'transfer-encoding') return;
    if (lower === 'host') hostGiven = true;
    head += `${name}: ${value}\r\n`;
  };
  const h = req.headers;
  if (Array.isArray(h)) for (let i = 0; i < h.length; i += 2) add(h[i]!, h[i + 1]!);
  else for (const name in h) add(name, h[name]!);
  if (!hostGiven) head = `${head}host: ${host}\r\n`;
  if (req.body !== undefined || m === 'POST' || m === 'PUT' || m === 'PATCH')
    head += `content-length: ${req.body?.length ?? 0}\r\n`;
  return `${head}\r\n`;
}

/**
 * One call on a provider connection: the head resolves the call, the body's pieces go into a
 * stream the caller reads (pushed back on the connection when the reader falls behind), and a
 * failure rejects the call or, once the head was in, breaks the stream. The caller's abort signal
 * aborts the exchange.
 */
class Exchange implements ExchangeHandler {
  dropped = false;
  private abort?: (err: Error) => void;
  private resume?: () => void;
  private body?: UpstreamBody;
  private readonly onAbort?: () => void;

  constructor(
    readonly method: string,
    readonly head: string,
    readonly requestBody: Buffer | undefined,
    private readonly resolve: (r: UpstreamResponse) => void,
    private readonly reject: (err: Error) => void,
    private readonly signal: AbortSignal | undefined,
    private readonly opts: UpstreamOptions,
  ) {
    if (signal) {
      this.onAbort = () => {
        const err = new ProviderError('call aborted', 'aborted');
        if (this.abort) this.abort(err);
        else {
          // Still waiting for a connection: it is skipped when its turn comes.
          this.dropped = true;
          this.onError(err);
        }
      };
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  attach(abort: (err: Error) => void, resume: () => void): void {
    this.abort = abort;
    this.resume = resume;
  }

  onHead(status: number, headers: IncomingHttpHeaders): void {
    const body = new UpstreamBody(this.resume!, this.abort!);
    this.body = body;
    this.resolve({ status, headers, body });
  }

  onData(chunk: Buffer): boolean {
    return this.body!.piece(chunk);
  }

  onComplete(): void {
    this.settled();
    this.body!.complete();
  }

  onError(err: Error): void {
    this.settled();
    const e = failure(err, this.opts);
    if (this.body) this.body.fail(e);
    else this.reject(e);
  }

  private settled(): void {
    if (this.onAbort) this.signal!.removeEventListener('abort', this.onAbort);
  }
}

/**
 * An answer's body: the pieces its connection hands over. Until its reader chooses how to read it, the
 * pieces wait here (up to the stream's high-water mark, then the connection waits too): read as a
 * stream, they are pushed in order and the rest follows as it comes, pushed back on the connection
 * when not read; read whole (`readAll`), they are gathered into one Buffer with no stream machinery
 * in between — a small answer, head and body in one packet, is complete before its reader asks.
 */
class UpstreamBody extends Readable {
  /** Pieces that came before the reader chose; undefined once it did. */
  private early: Buffer[] | undefined = [];
  private earlyBytes = 0;
  /** The exchange is over (complete, or failed with `failed`): nothing left to abort. Seen while
   * `early` is still there, it ended before the reader chose. */
  private over = false;
  private failed: Error | undefined;
  /** Read whole: where the pieces go, and who waits for them. */
  private gather: { chunks: Buffer[]; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  /** Read piece by piece (readPieces): where they go, and who hears the end. */
  private reader: { piece: (c: Buffer) => void; end: (err?: Error) => void } | undefined;

  constructor(
    private readonly resumeConnection: () => void,
    private readonly abortExchange: (err: Error) => void,
  ) {
    super();
  }

  /** A piece from the connection; false asks the connection to wait. */
  piece(chunk: Buffer): boolean {
    if (this.reader) {
      this.reader.piece(chunk);
      return true;
    }
    if (this.gather) {
      this.gather.chunks.push(chunk);
      return true;
    }
    if (this.early) {
      this.early.push(chunk);
      this.earlyBytes += chunk.length;
      return this.earlyBytes < this.readableHighWaterMark;
    }
    return this.push(chunk);
  }

  complete(): void {
    this.over = true;
    if (this.reader) {
      this.stopReading(undefined);
      return;
    }
    const g = this.gather;
    if (g) {
      this.gather = undefined;
      g.resolve(joined(g.chunks));
    } else if (!this.early) this.push(null);
  }

  fail(err: Error): void {
    this.over = true;
    if (this.reader) {
      this.stopReading(err);
      return;
    }
    const g = this.gather;
    if (g) {
      this.gather = undefined;
      g.reject(err);
    } else if (this.early) this.failed = err;
    else this.destroy(err);
  }

  /** All the bytes, once the answer is complete (readAll); undefined once read as a stream. */
  [READ_WHOLE](): Promise<Buffer> | undefined {
    const chunks = this.early;
    if (!chunks) return undefined;
    this.early = undefined;
    // As readAll leaves a body it read: a late error on it is swallowed, not thrown.
    this.on('error', ignore);
    if (this.failed) return Promise.reject(this.failed);
    if (this.over) return Promise.resolve(joined(chunks));
    return new Promise((resolve, reject) => {
      this.gather = { chunks, resolve, reject };
      this.resumeConnection();
    });
  }

  /** Hands the pieces to `piece` as they come, then `end` (readPieces); false once read otherwise. */
  [READ_PIECES](piece: (c: Buffer) => void, end: (err?: Error) => void): boolean {
    const early = this.early;
    if (!early) return false;
    this.early = undefined;
    // As a body read to its end leaves it: a late error on it is swallowed, not thrown.
    this.on('error', ignore);
    this.reader = { piece, end };
    // What waited goes first, then how the exchange ended, if it has.
    for (const c of early) {
      if (!this.reader) return true;
      piece(c);
    }
    if (!this.reader) return true;
    if (this.failed) this.stopReading(this.failed);
    else if (this.over) this.stopReading(undefined);
    else this.resumeConnection();
    return true;
  }

  private stopReading(err: Error | undefined): void {
    const r = this.reader;
    if (!r) return;
    this.reader = undefined;
    r.end(err);
  }

  override _read(): void {
    const early = this.early;
    if (early) {
      // Read as a stream: what waited goes first, then how the exchange ended, if it has.
      this.early = undefined;
      for (const c of early) this.push(c);
      if (this.failed) return void this.destroy(this.failed);
      if (this.over) return void this.push(null);
    }
    this.resumeConnection();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Destroyed before its end (the reader gave up): the exchange is dropped with it.
    if (!this.over) {
      this.abortExchange(err ?? new ProviderError('answer dropped by its reader', 'aborted'));
    }
    const g = this.gather;
    if (g) {
      this.gather = undefined;
      g.reject(err ?? new ProviderError('answer dropped by its reader', 'aborted'));
    }
    // Read piece by piece and stopped before its end: as a stream closed before its end.
    if (this.reader) this.stopReading(err ?? prematureClose());
    cb(err);
  }
}

const ignore = () => {};

const joined = (chunks: Buffer[]) => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));

function failure(err: Error, opts: UpstreamOptions): ProviderError {
  if (err instanceof ProviderError) return err;
  if (err instanceof H1Error && err.kind === 'timeout') {
    return new ProviderError(`no answer from ${opts.name} within ${opts.timeoutMs} ms`, 'timeout');
  }
  return new ProviderError(`${opts.name} unreachable: ${err.message}`, 'network');
}
