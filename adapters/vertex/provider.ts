import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { type ApiUsage, messageUsage, StreamUsage, usageOf } from '../anthropic/usage.ts';
import { Upstream, type UpstreamResponse } from '../http/upstream.ts';
import type {
  CallerHeaders,
  Provider,
  ProviderFactory,
  ProviderResponse,
  ProviderSettings,
  SendRequest,
  StreamReader,
  Usage,
} from '../provider.ts';
import { asProviderError, ProviderError, readAll } from '../provider.ts';
import { type TokenSource, tokenSource } from './auth.ts';
import { toAnthropicError } from './errors.ts';
import {
  COUNT_TOKENS_MODEL,
  carriesRegionalPremium,
  defaultHost,
  regional,
  toVertex,
  vertexPath,
} from './models.ts';

/** What Vertex requires in the body in place of the `anthropic-version` header. */
export const VERTEX_VERSION = 'vertex-2023-10-16';

/** The `providers.<name>` options of kind `vertex`. */
export interface VertexOptions {
  project: string;
  /** The default location (`global`, `us-east5`, `europe-west1`…) when a call names none. */
  region: string;
  accessToken?: string;
  keyFile?: string;
  /** Canonical model id → Vertex model id, for ids the built-in table does not know. */
  models?: Record<string, string>;
}

/**
 * Caller headers Google must not see: hop-by-hop ones, every credential (Google gets our token),
 * cookies, accept-encoding (usage is read off the bytes), and `anthropic-version` (Vertex takes
 * the version in the body). `anthropic-beta` and the rest pass as they came.
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
  'x-goog-api-key',
  'cookie',
  'accept-encoding',
  'anthropic-version',
]);

/**
 * Claude on Google Vertex AI. Takes Anthropic Messages bodies (with `model`), names the model in
 * the URL instead (`…/publishers/anthropic/models/{model}:rawPredict` or `:streamRawPredict`),
 * puts `anthropic_version` in the body, and sends a Google bearer token. Vertex answers in
 * Anthropic's format (JSON / SSE) already; only its errors are rewritten (Google's envelope →
 * Anthropic's), so the call path reads every answer with the Anthropic adapter's readers.
 */
export class VertexProvider implements Provider {
  readonly kind = 'vertex';
  readonly family = 'anthropic' as const;
  private readonly upstream: Upstream;

  constructor(
    readonly options: VertexOptions,
    private readonly tokens: TokenSource,
    timeoutMs: number,
    /** Overrides the host of every location (a gateway, the emulator's `/vertex` face). */
    private readonly baseUrl?: string,
  ) {
    this.upstream = new Upstream({ name: 'Vertex', timeoutMs });
  }

  /** The URL of `model:method` at `location`. */
  url(location: string, model: string, method: 'rawPredict' | 'streamRawPredict'): URL {
    const host = (this.baseUrl ?? defaultHost(location)).replace(/\/+$/, '');
    const path = vertexPath({ project: this.options.project, location, model, method });
    return new URL(`${host}/v1/${path}`);
  }

  /** A regional location (not `global`) costs 1.1× for the models with the regional premium. */
  regional(model: string, geo?: string): boolean {
    return regional(geo ?? this.options.region) && carriesRegionalPremium(model);
  }

  async send(req: SendRequest): Promise<ProviderResponse> {
    const body = vertexBody(req.body);
    if ('error' in body) return localError(400, body.error);
    const location = req.geo ?? this.options.region;
    const model = toVertex(body.model, this.options.models);
    const target = this.url(location, model, body.stream ? 'streamRawPredict' : 'rawPredict');
    const res = await this.post(target, body.bytes, req.headers ?? {}, req.signal, req.requestId);
    return answerOf(res);
  }

  answer(status: number, body: Buffer): { usage?: Usage; errorType?: string } {
    if (status === 200) {
      return { usage: usageOf(messageUsage(body)) };
    }
    return { errorType: toAnthropicError(status, body).error.type };
  }

  usageOf(message: unknown): Usage {
    return usageOf((message as { usage?: ApiUsage } | null | undefined)?.usage);
  }

  streamReader(): StreamReader {
    return new StreamUsage();
  }

  /** Vertex's count-tokens endpoint: the model stays in the body, the URL names `count-tokens`. */
  async countTokens(body: Record<string, unknown>, headers?: CallerHeaders): Promise<number | undefined> {
    const { max_tokens: _m, stream: _s, metadata: _md, ...rest } = body;
    if (typeof rest.model !== 'string') return undefined;
    const payload = {
      ...rest,
      model: toVertex(rest.model, this.options.models),
      anthropic_version: rest.anthropic_version ?? VERTEX_VERSION,
    };
    const target = this.url(this.options.region, COUNT_TOKENS_MODEL, 'rawPredict');
    const res = await this.post(target, Buffer.from(JSON.stringify(payload)), headers ?? {});
    const buf = await readAll(res.body);
    if (res.status !== 200) return undefined;
    const n = (JSON.parse(buf.toString('utf8')) as { input_tokens?: unknown }).input_tokens;
    return typeof n === 'number' && n >= 0 ? n : undefined;
  }

  failure(err: unknown): ProviderError {
    return asProviderError(err);
  }

  async close(): Promise<void> {
    this.upstream.close();
  }

  private async post(
    target: URL,
    body: Buffer,
    callerHeaders: CallerHeaders,
    signal?: AbortSignal,
    requestId?: string,
  ): Promise<UpstreamResponse> {
    if (signal?.aborted) throw new ProviderError('aborted before the call', 'aborted');
    let token: string;
    try {
      token = await this.tokens.token();
    } catch (e) {
      throw new ProviderError(`Google credentials: ${(e as Error).message}`, 'network');
    }
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      authorization: `Bearer ${token}`,
      'content-length': String(body.length),
    };
    for (const name in callerHeaders) {
      const v = callerHeaders[name];
      if (v !== undefined && !DROP.has(name) && !name.startsWith('x-chokepoint-')) {
        headers[name] = Array.isArray(v) ? v.join(',') : v;
      }
    }
    if (requestId !== undefined) headers['x-chokepoint-request-id'] = requestId;
    return this.upstream.send({
      origin: target.origin,
      method: 'POST',
      path: `${target.pathname}${target.search}`,
      headers,
      body,
      signal,
    });
  }
}

/** The canonical body as Vertex takes it: no `model`, `anthropic_version` set, `stream` kept. */
export function vertexBody(
  canonical: Buffer,
): { model: string; stream: boolean; bytes: Buffer } | { error: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(canonical.toString('utf8'));
  } catch (e) {
    return { error: `The request body is not valid JSON: ${(e as Error).message}` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { error: 'The request body must be a JSON object' };
  }
  const { model, ...rest } = parsed as Record<string, unknown>;
  if (typeof model !== 'string' || !model) {
    return { error: 'model: required (the Vertex adapter names the model in the URL)' };
  }
  if (rest.anthropic_version === undefined) rest.anthropic_version = VERTEX_VERSION;
  return { model, stream: rest.stream === true, bytes: Buffer.from(JSON.stringify(rest)) };
}

function localError(status: number, message: string): ProviderResponse {
  const bytes = Buffer.from(
    JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message } }),
  );
  return {
    status,
    headers: { 'content-type': 'application/json', 'content-length': String(bytes.length) },
    body: Readable.from([bytes]),
    streaming: false,
  };
}

/** A Vertex answer as the port's: successes as they came, errors rewritten to Anthropic's envelope. */
async function answerOf(res: UpstreamResponse): Promise<ProviderResponse> {
  const { status } = res;
  if (status === 200) {
    const streaming = String(res.headers['content-type'] ?? '').includes('text/event-stream');
    return { status, headers: res.headers, body: res.body, streaming };
  }
  const raw = await readAll(res.body).catch(() => Buffer.alloc(0));
  const bytes = Buffer.from(JSON.stringify(toAnthropicError(status, raw)));
  const headers: IncomingHttpHeaders = {
    ...res.headers,
    'content-type': 'application/json',
    'content-length': String(bytes.length),
  };
  delete headers['transfer-encoding'];
  return { status, headers, body: Readable.from([bytes]), streaming: false };
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** Validates `providers.<name>` options of kind `vertex`, naming the field it rejects. */
export function vertexOptions(s: Pick<ProviderSettings, 'options' | 'name'>): VertexOptions {
  const o = s.options ?? {};
  const at = `providers.${s.name ?? 'vertex'}`;
  if (!isString(o.project)) throw new Error(`${at}.project: required (the Google Cloud project id)`);
  const region = o.region ?? 'global';
  if (!isString(region))
    throw new Error(`${at}.region: expected a Vertex location such as global or us-east5`);
  for (const k of ['accessToken', 'keyFile'] as const) {
    if (o[k] !== undefined && !isString(o[k])) throw new Error(`${at}.${k}: expected a non-empty string`);
  }
  let models: Record<string, string> | undefined;
  if (o.models !== undefined) {
    if (typeof o.models !== 'object' || o.models === null || Array.isArray(o.models)) {
      throw new Error(`${at}.models: expected a map of canonical model id to Vertex model id`);
    }
    models = {};
    for (const [k, v] of Object.entries(o.models)) {
      if (!isString(v)) throw new Error(`${at}.models.${k}: expected a Vertex model id`);
      models[k] = v;
    }
  }
  return {
    project: o.project,
    region,
    ...(isString(o.accessToken) ? { accessToken: o.accessToken } : {}),
    ...(isString(o.keyFile) ? { keyFile: o.keyFile } : {}),
    ...(models ? { models } : {}),
  };
}

/** `kind: vertex`: Claude on Vertex AI with a static token, a key file, or ADC. */
export const vertexProvider: ProviderFactory = async (s) => {
  const options = vertexOptions(s);
  const tokens = tokenSource({
    ...(options.accessToken ? { accessToken: options.accessToken } : {}),
    ...(options.keyFile ? { keyFile: options.keyFile } : {}),
    field: `providers.${s.name ?? 'vertex'}`,
    env: process.env,
  });
  return new VertexProvider(options, tokens, s.timeoutMs, s.baseUrl);
};
