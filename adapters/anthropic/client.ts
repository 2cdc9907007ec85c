import { Upstream, type UpstreamResponse } from '../http/upstream.ts';

/**
 * The pass-through client for an Anthropic-compatible Messages API (the real one or the
 * emulator; the OpenAI adapter's too). It forwards bytes, no re-serialising, through the
 * adapters' one HTTP client (adapters/http/upstream.ts). It knows the provider's wire protocol and
 * credentials, nothing of budgets or policy.
 */
export interface ClientOptions {
  baseUrl: string;
  /** The provider credential (sent as x-api-key); never the caller's key. */
  apiKey: string;
  /** The most the provider may stay silent, in ms: before the answer's head, or between two
   * pieces of its body. */
  timeoutMs: number;
  maxSockets?: number;
  /**
   * The provider's own headers on every call (credential, API version), replacing the default
   * `x-api-key` + `anthropic-version`: how another provider's adapter (OpenAI's bearer key)
   * reuses this client.
   */
  headers?: Record<string, string>;
  /** Who answers, in errors (`no answer from anthropic within …`); default `provider`. */
  name?: string;
}

export type ClientResponse = UpstreamResponse;

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
  private readonly origin: string;
  private readonly upstream: Upstream;
  /** Request paths by API path (the URL resolved once): the API has a handful of paths. */
  private readonly targets = new Map<string, string>();
  /** The provider's own headers on every call, as name/value pairs. */
  private readonly defaults: [string, string][];

  constructor(readonly opts: ClientOptions) {
    this.url = new URL(opts.baseUrl.endsWith('/') ? opts.baseUrl : `${opts.baseUrl}/`);
    this.origin = this.url.origin;
    this.upstream = new Upstream({
      name: opts.name ?? 'provider',
      timeoutMs: opts.timeoutMs,
      maxSockets: opts.maxSockets,
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
    // content-length are the HTTP client's to write (from the origin and the body).
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
    return this.upstream.send({ origin: this.origin, method, path: target, headers: raw, body, signal });
  }

  close(): void {
    this.upstream.close();
  }
}
