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

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const isSpace = (c: number | undefined) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
/** `"usage"` as bytes, from its closing quote backwards. */
const USAGE_KEY = Buffer.from('"usage"');
const MESSAGE_KEY = Buffer.from('"message"');

/**
 * The top-level `usage` object of a Messages API answer (non-streaming), read from the end of its
 * bytes: the API writes `usage` as the last member, so the object is found by walking back from the
 * final `}` to its matching `{` (strings skipped, escapes counted) and only it is parsed — not the
 * whole answer, whose text and tool inputs can run to many kilobytes. An answer whose last member
 * is anything else is parsed whole, as before: the same result, only slower.
 */
export function messageUsage(body: Buffer): ApiUsage | undefined {
  const tail = usageSpan(body);
  if (tail) {
    try {
      return JSON.parse(body.toString('utf8', tail[0], tail[1])) as ApiUsage;
    } catch {
      // Not what it looked like: the whole answer decides.
    }
  }
  return (JSON.parse(body.toString('utf8')) as { usage?: ApiUsage } | null)?.usage ?? undefined;
}

/** [start, end) of the `key` object (`usage` by default) in `b[from, to)`, the JSON object there,
 * when it is that object's last member. */
function usageSpan(b: Buffer, from = 0, to = b.length, key = USAGE_KEY): [number, number] | undefined {
  let i = to - 1;
  while (i >= from && isSpace(b[i])) i--;
  if (b[i] !== 0x7d) return undefined; // the top level's closing }
  i--;
  while (i >= from && isSpace(b[i])) i--;
  if (b[i] !== 0x7d) return undefined; // the last member's value is not an object
  const end = i + 1;
  let depth = 0;
  for (; i >= from; i--) {
    const c = b[i];
    if (c === 0x7d || c === 0x5d) depth++;
    else if (c === 0x7b || c === 0x5b) {
      if (--depth === 0) break;
    } else if (c === QUOTE) {
      // Back to the quote that opens this string: one not escaped (an even run of backslashes).
      for (i--; i >= from; i--) if (b[i] === QUOTE && escapes(b, i) % 2 === 0) break;
    }
  }
  if (i < from || b[i] !== 0x7b) return undefined;
  const start = i;
  i--;
  while (i >= from && isSpace(b[i])) i--;
  if (b[i] !== 0x3a) return undefined; // :
  i--;
  while (i >= from && isSpace(b[i])) i--;
  const keyStart = i - key.length + 1;
  if (keyStart < from + 1 || !same(b, keyStart, key) || escapes(b, keyStart) % 2 !== 0) {
    return undefined;
  }
  i = keyStart - 1;
  while (i >= from && isSpace(b[i])) i--;
  // A member of the answer itself: after a comma or the answer's opening brace.
  return b[i] === 0x2c || b[i] === 0x7b ? [start, end] : undefined;
}

/** How many backslashes stand right before position `i`. */
function escapes(b: Buffer, i: number): number {
  let n = 0;
  while (i - n - 1 >= 0 && b[i - n - 1] === BACKSLASH) n++;
  return n;
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
  /** The bytes of a line not ended yet (a view of the last chunk). */
  private pending: Buffer | undefined;
  private event = OTHER;
  private deltaBytes = 0;
  /** Where the last chunk fed starts its `message_stop` event (-1: it does not). */
  private stop = -1;
  /** Where in the bytes being read the `message_stop` event's line starts (-1: not among them). */
  private stopLine = -1;
  /** True once `message_delta` carried the final output count. */
  complete = false;
  errorType?: string;

  /** Lines are found and told apart in the bytes: only the few events that carry usage are decoded. */
  feed(chunk: Buffer | string): void {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    // Where this chunk starts in `buf`: after the line it ends, begun in the chunks before.
    const shift = this.pending ? this.pending.length : 0;
    if (this.pending) buf = Buffer.concat([this.pending, buf]);
    this.stop = -1;
    let start = 0;
    for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10, start)) {
      this.line(buf, start, nl > start && buf[nl - 1] === 13 ? nl - 1 : nl);
      start = nl + 1;
    }
    // The final event's line begun in an earlier chunk, which was passed on: held from this chunk's
    // start (a client cannot read an event whose line has not ended).
    if (this.stopLine !== -1) this.stop = Math.max(0, this.stopLine - shift);
    this.stopLine = -1;
    this.pending = start < buf.length ? buf.subarray(start) : undefined;
  }

  private line(buf: Buffer, start: number, end: number): void {
    if (startsWith(buf, start, end, EVENT)) {
      let i = start + EVENT.length;
      while (i < end && buf[i] === 32) i++;
      let j = end;
      while (j > i && buf[j - 1] === 32) j--;
      this.event = OTHER;
      for (const [code, name] of EVENTS) {
        if (j - i === name.length && same(buf, i, name)) {
          this.event = code;
          break;
        }
      }
      if (this.event === STOP && this.stopLine === -1) this.stopLine = start;
      return;
    }
    if (this.event === OTHER || this.event === STOP || !startsWith(buf, start, end, DATA)) return;
    if (this.event === DELTA) {
      // Byte length of the delta payload is enough for an estimate; no need to parse it.
      this.deltaBytes += end - start - DATA.length;
      return;
    }
    const from = start + DATA.length;
    if (this.event === MESSAGE_DELTA || this.event === START) {
      // The API writes `usage` last: message_delta's, and message_start's in its `message` (the
      // line's last member). Only it is parsed, as for a whole answer (messageUsage); any other
      // shape is parsed whole below.
      let span = usageSpan(buf, from, end, this.event === START ? MESSAGE_KEY : USAGE_KEY);
      if (span && this.event === START) span = usageSpan(buf, span[0], span[1]);
      let usage: ApiUsage | undefined;
      if (span) {
        try {
          usage = JSON.parse(buf.toString('utf8', span[0], span[1])) as ApiUsage;
        } catch {
          usage = undefined;
        }
      }
      if (usage !== undefined) {
        this.took(usage);
        return;
      }
    }
    let parsed: { message?: { usage?: ApiUsage }; usage?: ApiUsage; error?: { type?: string } };
    try {
      parsed = JSON.parse(buf.toString('utf8', from, end));
    } catch {
      return;
    }
    if (this.event === START) this.took(parsed.message?.usage);
    else if (this.event === MESSAGE_DELTA) this.took(parsed.usage);
    else {
      this.errorType = parsed.error?.type ?? 'error';
    }
  }

  /** message_start's usage (the start), or a message_delta's (cumulative: what it names replaces). */
  private took(usage: ApiUsage | undefined): void {
    if (this.event === START) {
      this.api = { ...usage };
      return;
    }
    if (usage !== null && typeof usage === 'object') {
      for (const k in usage) {
        const v = usage[k as keyof ApiUsage];
        if (v !== null && v !== undefined) (this.api as Record<string, unknown>)[k] = v;
      }
    }
    this.complete = true;
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

  /** Where the chunk just fed starts the `message_stop` event's line, found as the chunk was fed
   * (a line split over two chunks included). */
  finalAt(_chunk: Buffer): number {
    return this.stop;
  }
}

const EVENT = Buffer.from('event:');
const DATA = Buffer.from('data:');
/** The events whose data the reader looks at (OTHER: the rest). */
const OTHER = 0;
const START = 1;
const MESSAGE_DELTA = 2;
const DELTA = 3;
const ERROR = 4;
const STOP = 5;
const EVENTS: [number, Buffer][] = [
  [DELTA, Buffer.from('content_block_delta')],
  [START, Buffer.from('message_start')],
  [MESSAGE_DELTA, Buffer.from('message_delta')],
  [STOP, Buffer.from('message_stop')],
  [ERROR, Buffer.from('error')],
];

function startsWith(buf: Buffer, start: number, end: number, prefix: Buffer): boolean {
  return end - start >= prefix.length && same(buf, start, prefix);
}

/** Whether `buf` holds `bytes` at `at` (which the caller checked fit): compared here, in JavaScript —
 * a few bytes, where Buffer.compare's call into C++ costs more than the comparison. */
function same(buf: Buffer, at: number, bytes: Buffer): boolean {
  for (let k = 0; k < bytes.length; k++) if (buf[at + k] !== bytes[k]) return false;
  return true;
}
