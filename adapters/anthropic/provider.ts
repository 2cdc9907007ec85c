import type {
  CallerHeaders,
  Provider,
  ProviderFactory,
  ProviderResponse,
  SendRequest,
  StreamReader,
  Usage,
} from '../provider.ts';
import { asProviderError, type ProviderError, readAll } from '../provider.ts';
import { AnthropicClient, type ClientResponse } from './client.ts';
import { type ApiUsage, messageUsage, StreamUsage, usageOf } from './usage.ts';

/**
 * Anthropic's Messages API (the real one, or anything that speaks it: the emulator): calls go to
 * `v1/messages`, usage is read off the answer's `usage` object or its SSE events, count_tokens
 * gives exact input counts, and every other path of the API (Message Batches) passes through.
 */
export class AnthropicProvider implements Provider {
  readonly client: AnthropicClient;

  constructor(
    readonly kind: string,
    opts: { baseUrl: string; apiKey: string; timeoutMs: number },
  ) {
    this.client = new AnthropicClient({ ...opts, name: kind });
  }

  async send(req: SendRequest): Promise<ProviderResponse> {
    const res = await this.client.post(
      req.query ? `v1/messages${req.query}` : 'v1/messages',
      req.body,
      req.headers ?? {},
      req.signal,
      req.requestId,
    );
    return withStreaming(res);
  }

  answer(status: number, body: Buffer): { usage?: Usage; errorType?: string } {
    if (status === 200) {
      return { usage: usageOf(messageUsage(body)) };
    }
    return { errorType: errorTypeOf(body) ?? `http_${status}` };
  }

  usageOf(message: unknown): Usage {
    return usageOf((message as { usage?: ApiUsage } | null | undefined)?.usage);
  }

  streamReader(): StreamReader {
    return new StreamUsage();
  }

  async countTokens(body: Record<string, unknown>, headers?: CallerHeaders): Promise<number | undefined> {
    // count_tokens takes the request without the fields that only shape the answer.
    const { max_tokens: _m, stream: _s, metadata: _md, ...rest } = body;
    const res = await this.client.post(
      'v1/messages/count_tokens',
      Buffer.from(JSON.stringify(rest)),
      headers ?? {},
    );
    const buf = await readAll(res.body);
    if (res.status !== 200) return undefined;
    const n = (JSON.parse(buf.toString('utf8')) as { input_tokens?: unknown }).input_tokens;
    return typeof n === 'number' && n >= 0 ? n : undefined;
  }

  failure(err: unknown): ProviderError {
    return asProviderError(err);
  }

  async passthrough(
    method: string,
    path: string,
    body: Buffer | undefined,
    headers: CallerHeaders,
    requestId?: string,
  ): Promise<ProviderResponse> {
    return withStreaming(await this.client.request(method, path, body, headers, undefined, requestId));
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

function errorTypeOf(buf: Buffer): string | undefined {
  try {
    return (JSON.parse(buf.toString('utf8')) as { error?: { type?: string } }).error?.type;
  } catch {
    return undefined;
  }
}

/** `provider.kind: anthropic`: api.anthropic.com (or `baseUrl`) with ANTHROPIC_API_KEY. */
export const anthropicProvider: ProviderFactory = async (s) =>
  new AnthropicProvider(s.kind, {
    baseUrl: s.baseUrl ?? 'https://api.anthropic.com',
    apiKey: s.apiKey ?? '',
    timeoutMs: s.timeoutMs,
  });
