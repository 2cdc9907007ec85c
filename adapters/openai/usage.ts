import type { StreamReader, Usage, UsageTokens } from '../provider.ts';

/**
 * OpenAI usage, any endpoint, into the port's token classes (docs/research/openai-2026-12.md §3):
 *
 * - chat completions: `prompt_tokens` includes cached and written tokens, so
 *   input = prompt − `cached_tokens` − `cache_write_tokens`; output = `completion_tokens`
 *   (reasoning tokens are inside it and billed as output);
 * - responses: the same with `input_tokens` / `input_tokens_details` / `output_tokens`;
 * - embeddings (`object: "list"`): `prompt_tokens` is all input.
 *
 * Cache writes (GPT-5.6+) go to `cacheWrite5m` (the 30-minute TTL) and `cacheWrite1h` (12-hour),
 * from `cache_write_tokens_details` when present, else all as 30-minute writes. Responses'
 * billed built-in tool calls (`web_search_call`, `file_search_call`, `code_interpreter_call`)
 * are counted from `output` into `serverTools`. Fails closed: an answer without a readable usage
 * throws instead of charging zero.
 */

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A count field: absent/null is 0; anything else must be a whole number ≥ 0. */
function count(o: Obj | undefined, field: string, path: string): number {
  const v = o?.[field];
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new Error(`unreadable OpenAI usage: ${path}.${field} is ${JSON.stringify(v)}`);
  }
  return v;
}

function tokens(prompt: number, details: Obj | undefined, output: number, path: string): UsageTokens {
  const cached = count(details, 'cached_tokens', path);
  const writes = count(details, 'cache_write_tokens', path);
  const split = isObj(details?.cache_write_tokens_details) ? details.cache_write_tokens_details : undefined;
  const w12h = split ? count(split, 'ttl_12h_tokens', `${path}.cache_write_tokens_details`) : 0;
  const input = prompt - cached - writes;
  if (input < 0)
    throw new Error(`unreadable OpenAI usage: ${path} has more cached and written tokens than input`);
  return { input, cacheWrite5m: writes - w12h, cacheWrite1h: w12h, cacheRead: cached, output };
}

/** The port's usage of an OpenAI `usage` object; `responses` picks the responses field names. */
export function usageFrom(u: unknown, api: 'chat' | 'responses' | 'embeddings'): Usage {
  if (!isObj(u)) throw new Error('unreadable OpenAI usage: the answer carries no usage object');
  if (api === 'responses') {
    if (typeof u.input_tokens !== 'number')
      throw new Error('unreadable OpenAI usage: usage.input_tokens is missing');
    const d = isObj(u.input_tokens_details) ? u.input_tokens_details : undefined;
    const t = tokens(
      count(u, 'input_tokens', 'usage'),
      d,
      count(u, 'output_tokens', 'usage'),
      'usage.input_tokens_details',
    );
    return { tokens: t, options: {} };
  }
  if (typeof u.prompt_tokens !== 'number')
    throw new Error('unreadable OpenAI usage: usage.prompt_tokens is missing');
  const d = isObj(u.prompt_tokens_details) ? u.prompt_tokens_details : undefined;
  const out = api === 'embeddings' ? 0 : count(u, 'completion_tokens', 'usage');
  return {
    tokens: tokens(count(u, 'prompt_tokens', 'usage'), d, out, 'usage.prompt_tokens_details'),
    options: {},
  };
}

const TOOL_CALLS: Record<string, 'webSearch' | 'fileSearch' | 'codeInterpreter'> = {
  web_search_call: 'webSearch',
  file_search_call: 'fileSearch',
  code_interpreter_call: 'codeInterpreter',
};

/** Billed built-in tool calls among a response's output items. */
export function toolCallsOf(output: unknown): Usage['serverTools'] | undefined {
  if (!Array.isArray(output)) return undefined;
  const uses: NonNullable<Usage['serverTools']> = {};
  let any = false;
  for (const item of output) {
    const k = isObj(item) && typeof item.type === 'string' ? TOOL_CALLS[item.type] : undefined;
    if (k) {
      uses[k] = (uses[k] ?? 0) + 1;
      any = true;
    }
  }
  return any ? uses : undefined;
}

/** Usage of one OpenAI answer object (`chat.completion`, `response`, or an embeddings `list`). */
export function usageOfAnswer(answer: unknown): Usage {
  if (!isObj(answer)) throw new Error('unreadable OpenAI answer: not a JSON object');
  if (answer.object === 'response') {
    const u = usageFrom(answer.usage, 'responses');
    const tools = toolCallsOf(answer.output);
    return tools ? { ...u, serverTools: tools } : u;
  }
  if (answer.object === 'list') return usageFrom(answer.usage, 'embeddings');
  if (answer.object === 'chat.completion' || answer.object === 'chat.completion.chunk')
    return usageFrom(answer.usage, 'chat');
  throw new Error(`unreadable OpenAI answer: unknown object ${JSON.stringify(answer.object ?? null)}`);
}

const NONE = (): Usage => ({
  tokens: { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 },
  options: {},
});

/**
 * Follows an OpenAI stream, either format, as its bytes pass through: chat chunks
 * (`data: {…}` … `data: [DONE]`, usage on the final `choices: []` chunk when
 * `stream_options.include_usage` was set) or responses events (`event: …` + `data: {type, …}`,
 * usage on `response.completed` / `response.incomplete` / `response.failed`). Lines are parsed
 * as they complete, across any chunk boundaries. If the stream breaks off before its usage, the
 * content deltas seen so far (bytes / 4) are the output estimate: at least what was seen.
 */
export class OpenAIStreamUsage implements StreamReader {
  /** Bytes since the last newline, starting at absolute offset `bufStart`. */
  private buf: Buffer = Buffer.alloc(0);
  private bufStart = 0;
  private fed = 0;
  private lastChunk = 0;
  /** Absolute offset where the final event's line starts, once seen. */
  private finalStart?: number;
  private final?: Usage;
  private deltaBytes = 0;
  private tools: NonNullable<Usage['serverTools']> = {};
  /** True once the stream's usage was read. */
  complete = false;
  errorType?: string;

  feed(chunk: Buffer | string): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.lastChunk = bytes.length;
    this.fed += bytes.length;
    this.buf = this.buf.length ? Buffer.concat([this.buf, bytes]) : bytes;
    if (this.finalStart === undefined) {
      for (const marker of FINAL_MARKERS) {
        const at = this.buf.indexOf(marker);
        if (at !== -1) {
          this.finalStart = this.bufStart + lineStart(this.buf, at);
          break;
        }
      }
    }
    let nl = this.buf.indexOf(10);
    while (nl !== -1) {
      const line = this.buf.subarray(0, nl).toString('utf8').replace(/\r$/, '');
      this.buf = this.buf.subarray(nl + 1);
      this.bufStart += nl + 1;
      if (line.startsWith('data:')) this.data(line.slice(5).trim());
      nl = this.buf.indexOf(10);
    }
  }

  private data(data: string): void {
    if (data === '[DONE]' || data === '') return;
    let ev: Obj;
    try {
      ev = JSON.parse(data) as Obj;
    } catch {
      return;
    }
    if (isObj(ev.error)) {
      this.errorType = typeof ev.error.type === 'string' ? ev.error.type : 'error';
      return;
    }
    const type = typeof ev.type === 'string' ? ev.type : undefined;
    if (type === undefined) {
      this.chatChunk(ev);
      return;
    }
    if (type.endsWith('.delta')) {
      this.deltaBytes += typeof ev.delta === 'string' ? ev.delta.length : 0;
    } else if (type === 'response.output_item.done' && isObj(ev.item)) {
      const k = typeof ev.item.type === 'string' ? TOOL_CALLS[ev.item.type] : undefined;
      if (k) this.tools[k] = (this.tools[k] ?? 0) + 1;
    } else if (
      type === 'response.completed' ||
      type === 'response.incomplete' ||
      type === 'response.failed'
    ) {
      const r = isObj(ev.response) ? ev.response : {};
      if (isObj(r.usage)) {
        this.final = usageFrom(r.usage, 'responses');
        this.complete = true;
      }
      if (type === 'response.failed') this.errorType = 'response_failed';
    } else if (type === 'error') {
      this.errorType = typeof ev.code === 'string' ? ev.code : 'error';
    }
  }

  private chatChunk(ev: Obj): void {
    if (isObj(ev.usage)) {
      this.final = usageFrom(ev.usage, 'chat');
      this.complete = true;
    }
    if (!Array.isArray(ev.choices)) return;
    for (const c of ev.choices) {
      const d = isObj(c) && isObj(c.delta) ? c.delta : undefined;
      if (!d) continue;
      if (typeof d.content === 'string') this.deltaBytes += d.content.length;
      if (Array.isArray(d.tool_calls)) this.deltaBytes += JSON.stringify(d.tool_calls).length;
    }
  }

  usage(): Usage {
    const u = this.final ? { ...this.final, tokens: { ...this.final.tokens } } : NONE();
    if (Object.keys(this.tools).length) u.serverTools = { ...this.tools };
    if (!this.complete) u.tokens.output = Math.max(u.tokens.output, Math.ceil(this.deltaBytes / 4));
    return u;
  }

  /**
   * Where in `chunk` (the chunk just fed) the final event starts: the chat usage chunk
   * (`"choices":[]`), else `data: [DONE]`; for responses, `response.completed` (or
   * `incomplete`/`failed`). A final event whose line began in an earlier chunk (split markers,
   * 1-byte chunks) holds this chunk back from its start.
   */
  finalAt(chunk: Buffer): number {
    if (this.finalStart === undefined) return -1;
    const chunkStart = this.fed - this.lastChunk;
    const rel = this.finalStart - chunkStart;
    if (rel >= chunk.length) return -1;
    return Math.max(0, rel);
  }
}

const FINAL_MARKERS = [
  Buffer.from('"choices":[]'),
  Buffer.from('data: [DONE]'),
  Buffer.from('event: response.completed'),
  Buffer.from('event: response.incomplete'),
  Buffer.from('event: response.failed'),
];

/** The start of the line holding offset `at` (the event starts with its line). */
function lineStart(chunk: Buffer, at: number): number {
  const nl = chunk.lastIndexOf(10, at);
  return nl === -1 ? 0 : nl + 1;
}
