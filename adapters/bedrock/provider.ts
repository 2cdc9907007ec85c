import type { IncomingHttpHeaders } from 'node:http';
import { Readable, Transform } from 'node:stream';
import { type ApiUsage, messageUsage, StreamUsage, usageOf } from '../anthropic/usage.ts';
import type { UpstreamResponse } from '../http/upstream.ts';
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
import { asProviderError, type ProviderError, readAll } from '../provider.ts';
import { BedrockClient } from './client.ts';
import { anthropicErrorOf } from './errors.ts';
import { EventStreamToSse } from './eventstream.ts';
import { billedRegional, GEOS, type Geo, ModelIdError, modelIdFor } from './models.ts';

export { listInferenceProfiles } from './profiles.ts';

/** The Anthropic Messages version Bedrock's InvokeModel takes in the body. */
export const BEDROCK_VERSION = 'bedrock-2023-05-31';

/** `providers.<name>` options of kind `bedrock`, validated. */
export interface BedrockOptions {
  region: string;
  /** The default geography when a call names none (`us`, `eu`, `global`…; absent: in-Region). */
  profile?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Canonical model → Bedrock model id or ARN, where the built one is not the one to call. */
  models?: Record<string, string>;
}

/** Validates `settings.options`, naming the field it rejects (`providers.bedrock.region: …`). */
export function bedrockOptions(s: Pick<ProviderSettings, 'options' | 'name' | 'baseUrl'>): BedrockOptions {
  const o = s.options ?? {};
  const at = (f: string) => `providers.${s.name ?? 'bedrock'}.${f}`;
  const str = (f: string): string | undefined => {
    const v = o[f];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || !v) throw new Error(`${at(f)}: expected a non-empty string`);
    return v;
  };
  const region = str('region');
  if (!region && !s.baseUrl) throw new Error(`${at('region')}: required (e.g. us-east-1)`);
  const profile = str('profile');
  if (profile && !(GEOS as readonly string[]).includes(profile)) {
    throw new Error(`${at('profile')}: expected one of ${GEOS.join(', ')}, got ${JSON.stringify(profile)}`);
  }
  const accessKeyId = str('accessKeyId');
  const secretAccessKey = str('secretAccessKey');
  if (!accessKeyId !== !secretAccessKey) {
    throw new Error(`${at(accessKeyId ? 'secretAccessKey' : 'accessKeyId')}: required with the other`);
  }
  const models = o.models;
  if (models !== undefined) {
    const ok =
      typeof models === 'object' &&
      models !== null &&
      Object.values(models).every((v) => typeof v === 'string' && v);
    if (!ok) throw new Error(`${at('models')}: expected a map of model → Bedrock model id`);
  }
  const sessionToken = str('sessionToken');
  return {
    region: region ?? 'us-east-1',
    ...(profile ? { profile } : {}),
    ...(accessKeyId ? { accessKeyId, secretAccessKey } : {}),
    ...(sessionToken ? { sessionToken } : {}),
    ...(models ? { models: models as Record<string, string> } : {}),
  };
}

/**
 * Claude on Amazon Bedrock behind the Provider port (family `anthropic`): the call path hands it
 * an Anthropic Messages body with `model`; it posts Bedrock's InvokeModel body (no `model`, no
 * `stream`, `anthropic_version` and `anthropic_beta` in the body) to `/model/{id}/invoke` or
 * `/invoke-with-response-stream`, SigV4-signed, and answers in Anthropic's format: JSON as it
 * came, the event-stream as Anthropic SSE, errors as Anthropic envelopes.
 */
export class BedrockProvider implements Provider {
  readonly family = 'anthropic' as const;
  readonly client: BedrockClient;

  constructor(
    readonly kind: string,
    readonly options: BedrockOptions,
    baseUrl: string,
    timeoutMs: number,
  ) {
    this.client = new BedrockClient({
      baseUrl,
      region: options.region,
      timeoutMs,
      ...(options.accessKeyId
        ? {
            credentials: {
              accessKeyId: options.accessKeyId,
              secretAccessKey: options.secretAccessKey!,
              ...(options.sessionToken ? { sessionToken: options.sessionToken } : {}),
            },
          }
        : {}),
    });
  }

  /** A geographic or in-Region profile costs 1.1× for the models with the regional premium. */
  regional(model: string, geo?: Geo): boolean {
    return billedRegional(model, geo ?? this.options.profile);
  }

  /** The Bedrock model id a canonical model is called by on `geo` (default: the configured profile). */
  modelId(model: string, geo?: Geo): string {
    return modelIdFor(model, geo ?? this.options.profile, this.options.models);
  }

  async send(req: SendRequest): Promise<ProviderResponse> {
    let built: { id: string; body: Buffer; stream: boolean };
    try {
      built = this.bedrockBody(req.body, req.headers, req.geo);
    } catch (err) {
      if (err instanceof ModelIdError || err instanceof SyntaxError || err instanceof TypeError) {
        return envelope(400, 'invalid_request_error', (err as Error).message);
      }
      throw err;
    }
    const action = built.stream ? 'invoke-with-response-stream' : 'invoke';
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      ...(built.stream ? { 'x-amzn-bedrock-accept': 'application/json' } : { accept: 'application/json' }),
      ...(req.requestId ? { 'x-chokepoint-request-id': req.requestId } : {}),
    };
    const res = await this.client.request(
      'POST',
      `/model/${encodeURIComponent(built.id)}/${action}`,
      built.body,
      headers,
      req.signal,
    );
    return this.canonical(res);
  }

  /** The canonical body as Bedrock's InvokeModel body, the model id and whether it streams. */
  private bedrockBody(
    body: Buffer,
    headers: CallerHeaders | undefined,
    geo: Geo,
  ): { id: string; body: Buffer; stream: boolean } {
    const parsed = JSON.parse(body.toString('utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new TypeError('the request body must be a JSON object');
    }
    const { model, stream, ...rest } = parsed as Record<string, unknown>;
    if (typeof model !== 'string' || !model) throw new TypeError('model: Field required');
    const out: Record<string, unknown> = { anthropic_version: versionFor(headers), ...rest };
    const betas = betasOf(headers?.['anthropic-beta']);
    if (betas.length) {
      const own = Array.isArray(rest.anthropic_beta) ? (rest.anthropic_beta as unknown[]) : [];
      out.anthropic_beta = [...new Set([...own.map(String), ...betas])];
    }
    return { id: this.modelId(model, geo), body: Buffer.from(JSON.stringify(out)), stream: stream === true };
  }

  private async canonical(res: UpstreamResponse): Promise<ProviderResponse> {
    const { status } = res;
    const type = String(res.headers['content-type'] ?? '');
    const headers: IncomingHttpHeaders = { ...res.headers };
    const requestId = res.headers['x-amzn-requestid'];
    if (requestId) headers['request-id'] = requestId;
    if (status === 200 && type.includes('application/vnd.amazon.eventstream')) {
      headers['content-type'] = 'text/event-stream; charset=utf-8';
      delete headers['content-length'];
      return { status, headers, body: toSse(res.body), streaming: true };
    }
    if (status === 200) return { status, headers, body: res.body, streaming: false };
    const raw = await readAll(res.body);
    const mapped = anthropicErrorOf(status, res.headers['x-amzn-errortype'], raw);
    const retry = mapped.status === 429 || mapped.status >= 500;
    return {
      status: mapped.status,
      headers: {
        'content-type': 'application/json',
        'x-should-retry': String(retry),
        ...(requestId ? { 'request-id': requestId } : {}),
      },
      body: Readable.from([Buffer.from(mapped.body)]),
      streaming: false,
    };
  }

  answer(status: number, body: Buffer): { usage?: Usage; errorType?: string } {
    if (status === 200) {
      return { usage: usageOf(messageUsage(body)) };
    }
    try {
      const t = (JSON.parse(body.toString('utf8')) as { error?: { type?: string } }).error?.type;
      return { errorType: t ?? `http_${status}` };
    } catch {
      return { errorType: `http_${status}` };
    }
  }

  usageOf(message: unknown): Usage {
    return usageOf((message as { usage?: ApiUsage } | null | undefined)?.usage);
  }

  streamReader(): StreamReader {
    return new StreamUsage();
  }

  /**
   * Bedrock's CountTokens (`POST /model/{foundation model id}/count-tokens`, body
   * `{input: {invokeModel: {body: <base64 of the InvokeModel body>}}}` → `{inputTokens}`); some
   * cross-Region-only Claude models refuse it on bedrock-runtime: then undefined.
   */
  async countTokens(body: Record<string, unknown>, headers?: CallerHeaders): Promise<number | undefined> {
    const { stream: _s, ...rest } = body;
    let built: { id: string; body: Buffer };
    try {
      built = this.bedrockBody(Buffer.from(JSON.stringify({ max_tokens: 1, ...rest })), headers, undefined);
    } catch {
      return undefined;
    }
    const payload = JSON.stringify({ input: { invokeModel: { body: built.body.toString('base64') } } });
    const res = await this.client.request(
      'POST',
      `/model/${encodeURIComponent(built.id.replace(/^[a-z-]+\.(?=anthropic\.)/, ''))}/count-tokens`,
      Buffer.from(payload),
      { 'content-type': 'application/json', accept: 'application/json' },
    );
    const buf = await readAll(res.body);
    if (res.status !== 200) return undefined;
    const n = (JSON.parse(buf.toString('utf8')) as { inputTokens?: unknown }).inputTokens;
    return typeof n === 'number' && n >= 0 ? n : undefined;
  }

  failure(err: unknown): ProviderError {
    return asProviderError(err);
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

/**
 * The body's `anthropic_version`: a caller on a newer API version (`anthropic-version:
 * 2026-10-21`) keeps its semantics, as @anthropic-ai/bedrock-sdk sends it; 2023-06-01 (or none)
 * is Bedrock's `bedrock-2023-05-31`. Bedrock's ARN-versioned models (Opus 4.6 and earlier) may
 * refuse 2026-10-21 with a 400, as they would the client's own call (research §1).
 */
function versionFor(headers: CallerHeaders | undefined): string {
  const v = headers?.['anthropic-version'];
  const version = (Array.isArray(v) ? v[0] : v)?.trim();
  return version && version !== '2023-06-01' && /^\d{4}-\d{2}-\d{2}$/.test(version)
    ? version
    : BEDROCK_VERSION;
}

function betasOf(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
}

function envelope(status: number, type: string, message: string): ProviderResponse {
  return {
    status,
    headers: { 'content-type': 'application/json', 'x-should-retry': 'false' },
    body: Readable.from([Buffer.from(JSON.stringify({ type: 'error', error: { type, message } }))]),
    streaming: false,
  };
}

/**
 * The event-stream body as Anthropic SSE, chunk for chunk. A corrupt frame, or a stream that ends
 * inside a frame, ends the SSE with an Anthropic `error` event (`api_error`), as the API itself
 * ends a stream that fails after its 200: what came before it is passed on and its usage read,
 * and the break is never mistaken for a whole answer. (An error on the body would make a reader
 * drop the bytes still buffered before it.)
 */
function toSse(res: Readable): Readable {
  const sse = new EventStreamToSse();
  let failed = false;
  const broken = (why: string) => {
    failed = true;
    const error = { type: 'api_error', message: `the Bedrock event stream ${why}` };
    return Buffer.from(`event: error\ndata: ${JSON.stringify({ type: 'error', error })}\n\n`);
  };
  const out = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (failed) return done();
      try {
        const text = sse.push(chunk);
        done(null, text ? Buffer.from(text, 'utf8') : undefined);
      } catch (err) {
        done(null, broken(`is corrupt: ${(err as Error).message}`));
      }
    },
    flush(done) {
      done(null, !failed && sse.incomplete ? broken('broke off inside a message') : undefined);
    },
  });
  // The connection broke (or the provider went silent) mid-stream: the body's ProviderError.
  res.on('error', (err) => out.destroy(err));
  out.on('close', () => {
    if (!res.readableEnded) res.destroy();
  });
  return res.pipe(out);
}

/**
 * `kind: bedrock`: Bedrock Runtime in `region` (or `baseUrl`), static credentials from the
 * options, else the standard AWS credential chain.
 */
export const bedrockProvider: ProviderFactory = async (s) => {
  const options = bedrockOptions(s);
  const baseUrl = s.baseUrl ?? `https://bedrock-runtime.${options.region}.amazonaws.com`;
  return new BedrockProvider(s.kind, options, baseUrl, s.timeoutMs);
};
