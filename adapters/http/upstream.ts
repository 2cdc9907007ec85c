import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { Agent, type Dispatcher, util } from 'undici';
import { ProviderError, READ_WHOLE } from '../provider.ts';

/**
 * The HTTP client every provider adapter sends through (Anthropic and OpenAI, Bedrock, Vertex, the
 * emulator): undici's connection pools, one per origin, keep-alive, driven through `dispatch` with
 * a handler of our own — no fetch, no Response objects, bytes in and out. node:http's client spent
 * ~200k instructions a call more on the same proxying when calls come one at a time
 * (bench/instructions.ts: the gateway 1,026k → 819k a call; a bare proxy on each 753k → 498k):
 * request options copied into dictionaries, a ClientRequest and an IncomingMessage a call, headers
 * set one by one. Each way a call can fail comes out as a ProviderError of its kind.
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
  /** Name/value pairs (`[name, value, name, value, …]`) or an object; undici writes Host and
   * content-length itself unless given. */
  headers: string[] | Record<string, string>;
  body?: Buffer;
  /** Aborts the call (kill, time box): before its head, the call rejects; after, its body breaks. */
  signal?: AbortSignal;
}

export class Upstream {
  private readonly agent: Agent;

  constructor(private readonly opts: UpstreamOptions) {
    this.agent = new Agent({
      connections: opts.maxSockets ?? 256,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
    });
  }

  /** Sends a request; resolves with the answer's head as soon as it arrives. Rejects with a
   * ProviderError (`timeout`, `aborted`, `network`). */
  send(req: UpstreamRequest): Promise<UpstreamResponse> {
    const { signal } = req;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new ProviderError('aborted before the call', 'aborted'));
      this.agent.dispatch(
        {
          origin: req.origin,
          path: req.path,
          method: req.method as Dispatcher.HttpMethod,
          headers: req.headers,
          body: req.body,
        },
        new Exchange(resolve, reject, signal, this.opts),
      );
    });
  }

  close(): void {
    this.agent.destroy().catch(() => {});
  }
}

/**
 * One call on a provider connection, as undici's dispatcher reports it: the head resolves the
 * call, the body's pieces go into a stream the caller reads (pushed back on the connection when
 * the reader falls behind), and a failure rejects the call or, once the head was in, breaks the
 * stream. The caller's abort signal aborts the exchange.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private abort?: (err: Error) => void;
  private body?: UpstreamBody;
  private readonly onAbort?: () => void;

  constructor(
    private readonly resolve: (r: UpstreamResponse) => void,
    private readonly reject: (err: Error) => void,
    private readonly signal: AbortSignal | undefined,
    private readonly opts: UpstreamOptions,
  ) {
    if (signal) {
      this.onAbort = () => this.abort?.(new ProviderError('call aborted', 'aborted'));
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    if (this.signal?.aborted) abort(new ProviderError('call aborted', 'aborted'));
  }

  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (status < 200) return true; // an informational head (103 Early Hints): the answer's is next
    const body = new UpstreamBody(resume, this.abort!);
    this.body = body;
    this.resolve({ status, headers: util.parseHeaders(rawHeaders) as IncomingHttpHeaders, body });
    return true;
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
 * An answer's body: the pieces undici hands over. Until its reader chooses how to read it, the
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

  constructor(
    private readonly resumeConnection: () => void,
    private readonly abortExchange: (err: Error) => void,
  ) {
    super();
  }

  /** A piece from the connection; false asks the connection to wait. */
  piece(chunk: Buffer): boolean {
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
    const g = this.gather;
    if (g) {
      this.gather = undefined;
      g.resolve(joined(g.chunks));
    } else if (!this.early) this.push(null);
  }

  fail(err: Error): void {
    this.over = true;
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
    cb(err);
  }
}

const ignore = () => {};

const joined = (chunks: Buffer[]) => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));

function failure(err: Error, opts: UpstreamOptions): ProviderError {
  if (err instanceof ProviderError) return err;
  const code = (err as { code?: string }).code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new ProviderError(`no answer from ${opts.name} within ${opts.timeoutMs} ms`, 'timeout');
  }
  if (code === 'UND_ERR_ABORTED' || err.name === 'AbortError')
    return new ProviderError('call aborted', 'aborted');
  return new ProviderError(`${opts.name} unreachable: ${err.message}`, 'network');
}
