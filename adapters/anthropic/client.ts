import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type RequestOptions,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
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
  body: IncomingMessage;
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
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly send: typeof httpRequest;
  /** Request options by path (the URL resolved once): the API has a handful of paths. */
  private readonly targets = new Map<
    string,
    { hostname: string; port: string; path: string; host: string; auth?: string }
  >();
  /** The provider's own headers on every call, as name/value pairs. */
  private readonly defaults: [string, string][];

  constructor(readonly opts: ClientOptions) {
    this.url = new URL(opts.baseUrl.endsWith('/') ? opts.baseUrl : `${opts.baseUrl}/`);
    const https = this.url.protocol === 'https:';
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 256, keepAliveMsecs: 30_000 };
    this.agent = https ? new HttpsAgent(agentOpts) : new HttpAgent(agentOpts);
    this.send = (https ? httpsRequest : httpRequest) as typeof httpRequest;
    // Lower-cased, one value a name (a later one wins, as setHeader would have it).
    const own = new Map<string, string>([['content-type', 'application/json']]);
    for (const [k, v] of Object.entries(
      opts.headers ?? { 'anthropic-version': '2023-06-01', 'x-api-key': opts.apiKey },
    )) {
      own.set(k.toLowerCase(), v);
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
    if (!target) {
      const url = new URL(path, this.url);
      const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      // What node:http takes from a URL (urlToHttpOptions), taken once; and the Host header it
      // would write (an IPv6 address in brackets, the port unless the scheme's default).
      target = {
        hostname,
        port: url.port,
        path: `${url.pathname}${url.search}`,
        host: `${hostname.includes(':') ? `[${hostname}]` : hostname}${url.port ? `:${url.port}` : ''}`,
        ...(url.username || url.password
          ? { auth: `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` }
          : {}),
      };
      this.targets.set(path, target);
    }
    // The head as name/value pairs, not an object: node writes pairs as they are (each still
    // validated), where an object's headers go one by one through setHeader (lower-cased, stored,
    // looked up again for Host and Expect). A caller's header replaces the provider's default of
    // the same name; the caller's credentials and hop-by-hop headers never pass (DROP).
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
    if (body) raw.push('content-length', String(body.length));
    raw.push('host', target.host);
    // Credentials in the base URL, unless the provider's own headers carry some (as node does).
    if (target.auth !== undefined && !defaults.some(([n]) => n === 'authorization')) {
      raw.push('authorization', `Basic ${Buffer.from(target.auth).toString('base64')}`);
    }
    // A literal, not `{ ...target, method, … }`: V8 (Node 20) adds each key after a leading spread
    // through a slow path (~1 µs a key). No `protocol`: the agent's own (http: or https:) is the
    // URL's, and every key here is copied three times more inside node:http (ClientRequest, and the
    // agent's addRequest into a dictionary object, ~2,500 instructions a key).
    const options: RequestOptions = {
      hostname: target.hostname,
      port: target.port,
      path: target.path,
      method,
      headers: raw,
      agent: this.agent,
      signal,
    };
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new ProviderError('aborted before the call', 'aborted'));
      const req = this.send(options, (res) => {
        resolve({ status: res.statusCode ?? 502, headers: res.headers, body: res });
      });
      req.setTimeout(this.opts.timeoutMs, () => {
        req.destroy(
          new ProviderError(`no answer from the provider within ${this.opts.timeoutMs} ms`, 'timeout'),
        );
      });
      req.on('error', (err) => {
        if (err instanceof ProviderError) reject(err);
        else if ((err as Error).name === 'AbortError') reject(new ProviderError('call aborted', 'aborted'));
        else reject(new ProviderError(`provider unreachable: ${(err as Error).message}`, 'network'));
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
