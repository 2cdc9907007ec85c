import { AnthropicClient, type ClientResponse } from '../anthropic/client.ts';
import type {
  CallerHeaders,
  Family,
  Provider,
  ProviderFactory,
  ProviderResponse,
  SendRequest,
  StreamReader,
  Usage,
} from '../provider.ts';
import { asProviderError, ProviderError } from '../provider.ts';
import { injectUsage, USAGE_INJECTED_HEADER } from './stream.ts';
import { OpenAIStreamUsage, usageOfAnswer } from './usage.ts';

/** The endpoints a model call may name (`SendRequest.path`). */
export const OPENAI_PATHS = ['chat/completions', 'responses', 'embeddings'] as const;

export interface OpenAIOptions {
  /** `OpenAI-Organization`: the organization the key bills. */
  organization?: string;
  /** `OpenAI-Project`: the project the key bills. */
  project?: string;
}

/**
 * Caller headers that choose whose account pays: the provider's own settings win, a caller never
 * moves a call onto another organization or project of ours.
 */
const ACCOUNT_HEADERS = ['openai-organization', 'openai-project'];

/**
 * OpenAI (family `openai`): OpenAI-format bodies posted to `${baseUrl}/v1/${path}` with a bearer
 * key, answers passed through byte for byte. A streamed chat completion that does not ask for
 * `stream_options.include_usage` is sent with it (the only way the gateway learns a streamed
 * call's usage); the answer then carries {@link USAGE_INJECTED_HEADER} and the face drops the
 * extra chunk with `withoutInjectedUsage()` (stream.ts). Usage is read by `usage.ts`.
 */
export class OpenAIProvider implements Provider {
  readonly family: Family = 'openai';
  readonly client: AnthropicClient;

  constructor(
    readonly kind: string,
    opts: { baseUrl: string; apiKey: string; timeoutMs: number } & OpenAIOptions,
  ) {
    const headers: Record<string, string> = { authorization: `Bearer ${opts.apiKey}` };
    if (opts.organization) headers['openai-organization'] = opts.organization;
    if (opts.project) headers['openai-project'] = opts.project;
    this.client = new AnthropicClient({
      baseUrl: opts.baseUrl,
      apiKey: opts.apiKey,
      timeoutMs: opts.timeoutMs,
      headers,
      name: kind,
    });
  }

  async send(req: SendRequest): Promise<ProviderResponse> {
    const path = req.path ?? 'chat/completions';
    if (!(OPENAI_PATHS as readonly string[]).includes(path)) {
      throw new ProviderError(`the openai provider has no model endpoint ${JSON.stringify(path)}`, 'network');
    }
    const { body, injected } =
      path === 'chat/completions' ? injectUsage(req.body) : { body: req.body, injected: false };
    const headers: CallerHeaders = { ...req.headers };
    for (const h of ACCOUNT_HEADERS) delete headers[h];
    // OpenAI's own request-tracing header, so its logs name our request id too.
    if (req.requestId) headers['x-client-request-id'] = req.requestId;
    const res = await this.client.post(
      req.query ? `v1/${path}${req.query}` : `v1/${path}`,
      body,
      headers,
      req.signal,
      req.requestId,
    );
    const out = withStreaming(res);
    if (injected && out.streaming) out.headers = { ...out.headers, [USAGE_INJECTED_HEADER]: '1' };
    return out;
  }

  answer(status: number, body: Buffer): { usage?: Usage; errorType?: string } {
    if (status === 200) return { usage: usageOfAnswer(JSON.parse(body.toString('utf8'))) };
    return { errorType: errorTypeOf(body) ?? `http_${status}` };
  }

  usageOf(message: unknown): Usage {
    return usageOfAnswer(message);
  }

  streamReader(): StreamReader {
    return new OpenAIStreamUsage();
  }

  /** OpenAI has no token-counting endpoint for these APIs: the gateway estimates. */
  async countTokens(): Promise<number | undefined> {
    return undefined;
  }

  failure(err: unknown): ProviderError {
    return asProviderError(err);
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

function withStreaming(res: ClientResponse): ProviderResponse {
  return {
    status: res.status,
    headers: res.headers,
    body: res.body,
    streaming: res.status === 200 && String(res.headers['content-type'] ?? '').includes('text/event-stream'),
  };
}

/** OpenAI's error envelope `{"error":{"type","code",…}}`: its type (or code). */
function errorTypeOf(buf: Buffer): string | undefined {
  try {
    const e = (JSON.parse(buf.toString('utf8')) as { error?: { type?: unknown; code?: unknown } }).error;
    if (typeof e?.type === 'string' && e.type) return e.type;
    return typeof e?.code === 'string' ? e.code : undefined;
  } catch {
    return undefined;
  }
}

function optionalString(
  s: { name?: string; options?: Record<string, unknown> },
  key: string,
): string | undefined {
  const v = s.options?.[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !v)
    throw new Error(`providers.${s.name ?? 'openai'}.${key}: expected a non-empty string`);
  return v;
}

/** `kind: openai`: api.openai.com (or `baseUrl`) with the configured key (OPENAI_API_KEY). */
export const openaiProvider: ProviderFactory = async (s) =>
  new OpenAIProvider(s.kind, {
    baseUrl: s.baseUrl ?? 'https://api.openai.com',
    apiKey: s.apiKey ?? '',
    timeoutMs: s.timeoutMs,
    organization: optionalString(s, 'organization'),
    project: optionalString(s, 'project'),
  });
