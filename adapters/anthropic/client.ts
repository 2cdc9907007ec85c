import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { type Dispatcher, Pool, util } from 'undici';
import { ProviderError } from '../provider.ts';

/**
 * The pass-through client for an Anthropic-compatible Messages API (the real one or the
 * emulator). It forwards bytes: no re-serialising, no global fetch, pooled keep-alive sockets.
 * It knows the provider's wire protocol and credentials, nothing of budgets or policy.
 */
export interface ClientOptions {
  baseUrl: string;
  /** The provider credential (sent as x-api-key); never the caller's key. */
  apiKey: string;
  /** Per-request timeout in ms (no bytes for this long aborts the request). */
  timeoutMs: number;
  maxSockets?: number;
  /**
   * The provider's own headers on every call (credential, API version), replacing the default
   * `x-api-key` + `anthropic-version`: how another provider's adapter (OpenAI's bearer key)
   * reuses this client.
   */
  headers?: Record<string, string>;
}

export interface ClientResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The answer's bytes as they arrive; read it to its end (or destroy it) to free the connection. */
  body: Readable;
}

/**
 * Caller headers the upstream must NOT see: hop-by-hop ones, the caller's credentials (the
 * provider gets ours), cookies, and accept-encoding (the gateway reads usage off the answer's
 * bytes, so it asks for them uncompressed). Every other header — anthropic-version, every
 * anthropic-beta, Claude Code's x-claude-code-session-id and x-app, the SDK's x-stainless-* —
 * passes through as it came.
 */
const DROP = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'content-length',
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'cookie',
  'accept-encoding',
]);

function forwarded(name: string): boolean {
  return !DROP.has(name) && !name.startsWith('x-chokepoint-');
}

export class AnthropicClient {
  private readonly url: URL;
  /**
   * The provider's connections: undici's pool, driven through `dispatch` with a handler of our
   * own. node:http's client spent ~250k instructions a call more on the same proxying (a bare
   * proxy on each, counted by bench/instructions.ts: 753k against 498k a call): its request
   * options copied into dictionaries, a ClientRequest and an IncomingMessage stream a call,
   * headers set and validated one by one.
   */
  private readonly pool: Pool;
  /** Request paths by API path (the URL resolved once): the API has a handful of paths. */
  private readonly targets = new Map<string, string>();
  /** The provider's own headers on every call, as name/value pairs. */
  private readonly defaults: [string, string][];

  constructor(readonly opts: ClientOptions) {
    this.url = new URL(opts.baseUrl.endsWith('/') ? opts.baseUrl : `${opts.baseUrl}/`);
    // No bytes for `timeoutMs` — before the head, or between two pieces of the body — ends the call.
    this.pool = new Pool(this.url.origin, {
      connections: opts.maxSockets ?? 256,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
    });
    // Lower-cased, one value a name (a later one wins).
    const own = new Map<string, string>([['content-type', 'application/json']]);
    for (const [k, v] of Object.entries(
      opts.headers ?? { 'anthropic-version': '2023-06-01', 'x-api-key': opts.apiKey },
    )) {
      own.set(k.toLowerCase(), v);
    }
    // Credentials in the base URL, unless the provider's own headers carry some.
    if ((this.url.username || this.url.password) && !own.has('authorization')) {
      const auth = `${decodeURIComponent(this.url.username)}:${decodeURIComponent(this.url.password)}`;
      own.set('authorization', `Basic ${Buffer.from(auth).toString('base64')}`);
    }
    this.defaults = [...own];
  }

  /**
   * POSTs `body` to `path` (e.g. `v1/messages`) and resolves with the response head as soon as it
   * arrives; the body is a stream for the caller to pipe. `signal` aborts it (kill, time box);
   * `requestId` goes along as x-chokepoint-request-id.
   */
  post(
    path: string,
    body: Buffer,
    callerHeaders: Record<string, string | string[] | undefined>,
    signal?: AbortSignal,
    requestId?: string,
  ): Promise<ClientResponse> {
    return this.request('POST', path, body, callerHeaders, signal, requestId);
  }

  /** Any method (GET, DELETE for Message Batches); `body` only where the method has one. */
  request(
    method: string,
    path: string,
    body: Buffer | undefined,
    callerHeaders: Record<string, string | string[] | undefined>,
    signal?: AbortSignal,
    requestId?: string,
  ): Promise<ClientResponse> {
    let target = this.targets.get(path);
    if (target === undefined) {
      const url = new URL(path, this.url);
      target = `${url.pathname}${url.search}`;
      this.targets.set(path, target);
    }
    // The head as name/value pairs. A caller's header replaces the provider's default of the same
    // name; the caller's credentials and hop-by-hop headers never pass (DROP). Host and
    // content-length are undici's to write (from the origin and the body).
    const raw: string[] = [];
    const defaults = this.defaults;
    let replaced = 0; // bit i: the caller sent defaults[i]'s header
    for (const name in callerHeaders) {
      const v = callerHeaders[name];
      if (v === undefined) continue;
      const lower = name.toLowerCase();
      if (!forwarded(lower)) continue;
      for (let i = 0; i < defaults.length; i++) if (defaults[i]![0] === lower) replaced |= 1 << i;
      raw.push(lower, Array.isArray(v) ? v.join(',') : v);
    }
    for (let i = 0; i < defaults.length; i++)
      if (!(replaced & (1 << i))) raw.push(defaults[i]![0], defaults[i]![1]);
    if (requestId !== undefined) raw.push('x-chokepoint-request-id', requestId);
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new ProviderError('aborted before the call', 'aborted'));
      this.pool.dispatch(
        { path: target, method: method as Dispatcher.HttpMethod, headers: raw, body },
        new Exchange(resolve, reject, signal, this.opts.timeoutMs),
      );
    });
  }

  close(): void {
    this.pool.destroy().catch(() => {});
  }
}

/**
 * One call on the provider's connection, as undici's dispatcher reports it: the head resolves the
 * call, the body's pieces go into a stream the caller reads (pushed back on the connection when
 * the reader falls behind), and a failure rejects the call or, once the head was in, breaks the
 * stream. The caller's abort signal aborts the exchange.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private abort?: (err: Error) => void;
  private body?: UpstreamBody;
  private readonly onAbort?: () => void;

  constructor(
    private readonly resolve: (r: ClientResponse) => void,
    private readonly reject: (err: Error) => void,
    private readonly signal: AbortSignal | undefined,
    private readonly timeoutMs: number,
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
    if (status < 200) return true; // an informational head (100 Continue): the answer's is next
    const body = new UpstreamBody(resume, this.abort!);
    this.body = body;
    this.resolve({
      status,
      headers: util.parseHeaders(rawHeaders) as IncomingHttpHeaders,
      body,
    });
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.body!.push(chunk);
  }

  onComplete(): void {
    this.settled();
    this.body!.push(null);
  }

  onError(err: Error): void {
    this.settled();
    const e = providerErrorOf(err, this.timeoutMs);
    if (this.body) this.body.destroy(e);
    else this.reject(e);
  }

  private settled(): void {
    if (this.onAbort) this.signal!.removeEventListener('abort', this.onAbort);
  }
}

/** An answer's body: the pieces undici hands over, pushed back on the connection when not read. */
class UpstreamBody extends Readable {
  constructor(
    private readonly resumeConnection: () => void,
    private readonly abortExchange: (err: Error) => void,
  ) {
    super();
  }

  override _read(): void {
    this.resumeConnection();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Destroyed before its end (the reader gave up): the exchange is dropped with it.
    if (!this.readableEnded)
      this.abortExchange(err ?? new ProviderError('answer dropped by its reader', 'aborted'));
    cb(err);
  }
}

function providerErrorOf(err: Error, timeoutMs: number): ProviderError {
  if (err instanceof ProviderError) return err;
  const code = (err as { code?: string }).code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new ProviderError(`no answer from the provider within ${timeoutMs} ms`, 'timeout');
  }
  if (code === 'UND_ERR_ABORTED' || err.name === 'AbortError')
    return new ProviderError('call aborted', 'aborted');
  return new ProviderError(`provider unreachable: ${err.message}`, 'network');
}
