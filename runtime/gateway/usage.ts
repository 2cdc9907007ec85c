import type { TokenCounts } from '../store/port.ts';

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
}

/**
 * Maps the API's usage to our token classes. Cache writes are split by TTL from
 * `cache_creation`; without that breakdown all writes are 5-minute writes (the only kind that
 * existed before it). `cache_creation_input_tokens` is the sum of the two, never added again.
 */
export function tokensOf(u: ApiUsage | undefined | null): TokenCounts {
  const n = (v: number | null | undefined) => (typeof v === 'number' && v > 0 ? v : 0);
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

export function cacheHitRate(t: TokenCounts): number {
  const all = t.input + t.cacheWrite5m + t.cacheWrite1h + t.cacheRead;
  return all === 0 ? 0 : t.cacheRead / all;
}

/**
 * Follows a Messages SSE stream as its bytes pass through, without holding it: usage from
 * `message_start` (input and cache tokens) and the cumulative usage of each `message_delta`
 * (output, and input/cache fields where the API repeats them). Text and tool-input bytes seen in
 * deltas give an output estimate for a stream cut off before its final `message_delta`.
 */
export class StreamUsage {
  private usage: ApiUsage = {};
  private pending = '';
  private event = '';
  private deltaBytes = 0;
  /** True once `message_delta` carried the final output count. */
  complete = false;
  errorType?: string;

  feed(chunk: Buffer | string): void {
    this.pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let nl = this.pending.indexOf('\n');
    while (nl !== -1) {
      const line = this.pending.slice(0, nl).replace(/\r$/, '');
      this.pending = this.pending.slice(nl + 1);
      this.line(line);
      nl = this.pending.indexOf('\n');
    }
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
      this.usage = { ...parsed.message?.usage };
    } else if (this.event === 'message_delta') {
      for (const [k, v] of Object.entries(parsed.usage ?? {})) {
        if (v !== null && v !== undefined) (this.usage as Record<string, unknown>)[k] = v;
      }
      this.complete = true;
    } else {
      this.errorType = parsed.error?.type ?? 'error';
    }
  }

  /** Token counts so far; if the final count never came, output is at least the deltas seen (bytes/4). */
  tokens(): TokenCounts {
    const t = tokensOf(this.usage);
    if (!this.complete) t.output = Math.max(t.output, Math.ceil(this.deltaBytes / 4));
    return t;
  }
}
