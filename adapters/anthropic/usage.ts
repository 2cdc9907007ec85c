import type { StreamReader, Usage, UsageTokens } from '../provider.ts';

/** The Messages API usage object (the fields that carry money). */
export interface ApiUsage {
  input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  cache_creation?: {
    ephemeral_5m_input_tokens?: number | null;
    ephemeral_1h_input_tokens?: number | null;
  } | null;
  output_tokens?: number | null;
  server_tool_use?: {
    web_search_requests?: number | null;
    web_fetch_requests?: number | null;
    code_execution_requests?: number | null;
  } | null;
  /** `batch` on Message Batches results (half price). */
  service_tier?: string | null;
  /** `us`: US-only inference (1.1×). */
  inference_geo?: string | null;
  /** `fast`: fast-mode rates. Billing follows the speed served, not the one asked for. */
  speed?: string | null;
  /** Per sampling step (compaction, advisor, server-side fallback): when present, the bill is
   * their sum, each at its own model's rates; the top-level fields cover the executor only. */
  iterations?: Array<ApiUsage & { type?: string; model?: string }> | null;
}

export function usageOf(u: ApiUsage | undefined | null): Usage {
  const options: Usage['options'] = {};
  if (u?.service_tier === 'batch') options.batch = true;
  if (u?.inference_geo === 'us') options.usOnly = true;
  if (u?.speed === 'fast') options.fast = true;
  const stu = u?.server_tool_use;
  const serverTools: Usage['serverTools'] = stu
    ? {
        webSearch: n(stu.web_search_requests),
        webFetch: n(stu.web_fetch_requests),
        codeExecution: n(stu.code_execution_requests),
      }
    : undefined;
  if (Array.isArray(u?.iterations) && u.iterations.length) {
    const parts = u.iterations.map((it) => ({
      ...(typeof it.model === 'string' ? { model: it.model } : {}),
      tokens: tokensOf(it),
    }));
    const tokens = { ...NONE };
    for (const p of parts) for (const k of CLASSES) tokens[k] += p.tokens[k];
    return { tokens, parts, ...(serverTools ? { serverTools } : {}), options };
  }
  return { tokens: tokensOf(u), ...(serverTools ? { serverTools } : {}), options };
}

/** A count as the API may send it (absent, null, negative): a non-negative number. */
const n = (v: number | null | undefined) => (typeof v === 'number' && v > 0 ? v : 0);

const CLASSES = ['input', 'cacheWrite5m', 'cacheWrite1h', 'cacheRead', 'output'] as const;
const NONE: UsageTokens = { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 };

/**
 * Maps the API's usage to our token classes. Cache writes are split by TTL from
 * `cache_creation`; without that breakdown all writes are 5-minute writes (the only kind that
 * existed before it). `cache_creation_input_tokens` is the sum of the two, never added again.
 */
export function tokensOf(u: ApiUsage | undefined | null): UsageTokens {
  if (!u) return { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 };
  const split = u.cache_creation;
  const w1h = split ? n(split.ephemeral_1h_input_tokens) : 0;
  const w5m = split ? n(split.ephemeral_5m_input_tokens) : n(u.cache_creation_input_tokens);
  return {
    input: n(u.input_tokens),
    cacheWrite5m: w5m,
    cacheWrite1h: w1h,
    cacheRead: n(u.cache_read_input_tokens),
    output: n(u.output_tokens),
  };
}

/**
 * Follows a Messages SSE stream as its bytes pass through, without holding it: usage from
 * `message_start` (input and cache tokens) and the cumulative usage of each `message_delta`
 * (output, and input/cache fields where the API repeats them). Text and tool-input bytes seen in
 * deltas give an output estimate for a stream cut off before its final `message_delta`. Its final
 * event is `message_stop`: the gateway holds the answer back from there until the call is settled.
 */
export class StreamUsage implements StreamReader {
  private api: ApiUsage = {};
  private pending = '';
  private event = '';
  private deltaBytes = 0;
  /** True once `message_delta` carried the final output count. */
  complete = false;
  errorType?: string;

  feed(chunk: Buffer | string): void {
    const text = this.pending + (typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      this.line(text.slice(start, nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl));
      start = nl + 1;
    }
    this.pending = start === 0 ? text : text.slice(start);
  }

  private line(line: string): void {
    if (line.startsWith('event:')) {
      this.event = line.slice(6).trim();
      return;
    }
    if (!line.startsWith('data:')) return;
    const data = line.slice(5);
    if (this.event === 'content_block_delta') {
      // Byte length of the delta payload is enough for an estimate; no need to parse it.
      this.deltaBytes += data.length;
      return;
    }
    if (this.event !== 'message_start' && this.event !== 'message_delta' && this.event !== 'error') return;
    let parsed: { message?: { usage?: ApiUsage }; usage?: ApiUsage; error?: { type?: string } };
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    if (this.event === 'message_start') {
      this.api = { ...parsed.message?.usage };
    } else if (this.event === 'message_delta') {
      for (const [k, v] of Object.entries(parsed.usage ?? {})) {
        if (v !== null && v !== undefined) (this.api as Record<string, unknown>)[k] = v;
      }
      this.complete = true;
    } else {
      this.errorType = parsed.error?.type ?? 'error';
    }
  }

  /** What the stream bills so far; if the final count never came, output is at least the deltas
   * seen (bytes/4). */
  usage(): Usage {
    const b = usageOf(this.api);
    if (!this.complete) {
      const seen = Math.ceil(this.deltaBytes / 4);
      if (seen > b.tokens.output) {
        const more = seen - b.tokens.output;
        b.tokens.output = seen;
        b.parts?.push({ tokens: { ...NONE, output: more } });
      }
    }
    return b;
  }

  finalAt(chunk: Buffer): number {
    return chunk.indexOf(MESSAGE_STOP);
  }
}

const MESSAGE_STOP = Buffer.from('event: message_stop');
