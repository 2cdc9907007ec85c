import type { ContentBlock, MessagesBody } from '../../../gateway/messages.ts';
import { describe } from '../../../gateway/messages.ts';
import type { OpenAIBody } from '../../../gateway/openai-body.ts';
import { invalidRequest } from '../../../gateway/refusal.ts';

/**
 * The pieces both OpenAI request formats share when translated for a Claude model: images and
 * files, function tools, tool_choice, sampling and the output cap, and the cache breakpoints.
 */

/** `max_tokens` when the request names no output cap (OpenAI's default is "up to the context"). */
export const DEFAULT_MAX_TOKENS = 4096;

export interface TranslateOptions {
  /** `max_tokens` when the request names no cap (default {@link DEFAULT_MAX_TOKENS}). */
  defaultMaxTokens?: number;
  /**
   * Set when the runtime owns the prompt prefix (a workflow class whose system prompt and tools
   * are frozen, so the prefix repeats call after call): the last tool and the last system block
   * get `cache_control`, so the prefix is written once and read at the cache-read price after.
   * Off by default: a cache write costs more than plain input, which a one-off prompt never earns
   * back. `'1h'` asks for the one-hour TTL.
   */
  cachePrefix?: boolean | '5m' | '1h';
}

export type Block = ContentBlock;

const DATA_URL = /^data:([^;,]+)((?:;[^;,]*)*),(.*)$/s;
const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);

/** An image part's URL as a Messages image block: data: URLs inline (base64), http(s) by URL. */
export function imageBlock(url: unknown, field: string): Block {
  if (typeof url !== 'string') throw invalidRequest(field, `expected the image URL, got ${describe(url)}`);
  const data = DATA_URL.exec(url);
  if (data) {
    const mediaType = data[1]!.toLowerCase();
    if (!data[2]!.split(';').includes('base64')) {
      throw invalidRequest(field, 'a data: URL image must be base64 (data:image/png;base64,...)');
    }
    if (!IMAGE_TYPES.has(mediaType)) {
      throw invalidRequest(
        field,
        `image type ${JSON.stringify(mediaType)} is not accepted by Claude (jpeg, png, gif or webp)`,
      );
    }
    return { type: 'image', source: { type: 'base64', media_type: mediaType, data: data[3] } };
  }
  if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
  throw invalidRequest(field, 'expected an https:// URL or a base64 data: URL');
}

/** A file part as a Messages document block: a base64 PDF, or a PDF by URL. */
export function fileBlock(file: Record<string, unknown>, field: string): Block {
  const title = typeof file.filename === 'string' ? { title: file.filename } : {};
  if (typeof file.file_data === 'string') {
    const data = DATA_URL.exec(file.file_data);
    if (!data || data[1]!.toLowerCase() !== 'application/pdf' || !data[2]!.includes('base64')) {
      throw invalidRequest(
        `${field}.file_data`,
        'Claude reads PDF files here: expected data:application/pdf;base64,...',
      );
    }
    return {
      type: 'document',
      source: { type: 'base64', media_type: 'application/pdf', data: data[3] },
      ...title,
    };
  }
  if (typeof file.file_url === 'string' && /^https?:\/\//i.test(file.file_url)) {
    return { type: 'document', source: { type: 'url', url: file.file_url }, ...title };
  }
  throw invalidRequest(
    `${field}.file_id`,
    'OpenAI file ids cannot be read by a Claude model: send the file inline as file_data',
  );
}

/**
 * Function tools as Messages tools (`parameters` becomes `input_schema`). `strict` is dropped, as
 * Anthropic's own compatibility layer does. Any other tool type has no Claude equivalent here and
 * is refused, naming it: a tool the client counts on must not vanish silently.
 */
export function functionTools(tools: unknown, nested: boolean): Block[] | undefined {
  if (!Array.isArray(tools) || tools.length === 0) return undefined;
  return tools.map((t, i) => {
    const tool = (t ?? {}) as Record<string, unknown>;
    if (tool.type !== 'function') {
      throw invalidRequest(
        `tools.${i}.type`,
        `${JSON.stringify(tool.type)} tools are not available for Claude models through the OpenAI format (function tools are)`,
      );
    }
    const fn = (nested ? (tool.function ?? {}) : tool) as Record<string, unknown>;
    const field = nested ? `tools.${i}.function` : `tools.${i}`;
    if (typeof fn.name !== 'string' || fn.name.length === 0) {
      throw invalidRequest(`${field}.name`, `required: the function's name, got ${describe(fn.name)}`);
    }
    const schema = fn.parameters ?? { type: 'object', properties: {} };
    return {
      name: fn.name,
      ...(typeof fn.description === 'string' ? { description: fn.description } : {}),
      input_schema: schema,
    } as Block;
  });
}

/**
 * `tool_choice` and `parallel_tool_calls` as Messages' `tool_choice`: auto → auto, none → none,
 * required → any, a named function → tool. `allowed_tools` and built-in choices are refused.
 */
export function toolChoice(choice: unknown, parallel: unknown, hasTools: boolean): Block | undefined {
  if (!hasTools) return undefined;
  const single = parallel === false ? { disable_parallel_tool_use: true } : {};
  if (choice === undefined || choice === null || choice === 'auto') {
    return parallel === false ? { type: 'auto', ...single } : undefined;
  }
  if (choice === 'none') return { type: 'none' };
  if (choice === 'required') return { type: 'any', ...single };
  if (typeof choice === 'object') {
    const c = choice as Record<string, unknown>;
    const name =
      c.type === 'function' ? ((c.function as { name?: unknown } | undefined)?.name ?? c.name) : undefined;
    if (typeof name === 'string') return { type: 'tool', name, ...single };
  }
  throw invalidRequest(
    'tool_choice',
    `expected "auto", "none", "required" or a named function for a Claude model, got ${describe(choice)}`,
  );
}

/**
 * The fields both formats carry alike: the output cap (or the default), temperature (capped at
 * 1, Claude's range, as Anthropic's layer does), top_p, stop sequences (whitespace-only ones
 * dropped: Claude refuses them) and `stream`.
 */
export function sampling(body: OpenAIBody, cap: unknown, opts: TranslateOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {
    max_tokens: typeof cap === 'number' ? cap : (opts.defaultMaxTokens ?? DEFAULT_MAX_TOKENS),
  };
  if (typeof body.temperature === 'number') out.temperature = Math.min(1, Math.max(0, body.temperature));
  if (typeof body.top_p === 'number') out.top_p = body.top_p;
  const stop = typeof body.stop === 'string' ? [body.stop] : Array.isArray(body.stop) ? body.stop : [];
  const sequences = stop.filter((s): s is string => typeof s === 'string' && s.trim().length > 0);
  if (sequences.length) out.stop_sequences = sequences;
  if (body.stream === true) out.stream = true;
  return out;
}

/** A JSON schema the client asked the answer to follow, as Claude's structured output format. */
export function outputFormat(format: unknown): Record<string, unknown> {
  if (format === null || typeof format !== 'object') return {};
  const f = format as Record<string, unknown>;
  if (f.type !== 'json_schema') return {};
  const schema = (f.json_schema as { schema?: unknown } | undefined)?.schema ?? f.schema;
  if (schema === null || typeof schema !== 'object') return {};
  return { output_config: { format: { type: 'json_schema', schema } } };
}

/** Adds the cache breakpoints of {@link TranslateOptions.cachePrefix} to a translated body. */
export function markPrefix(body: MessagesBody, opts: TranslateOptions): void {
  if (!opts.cachePrefix) return;
  const cc = opts.cachePrefix === '1h' ? { type: 'ephemeral', ttl: '1h' } : { type: 'ephemeral' };
  const tools = body.tools as Block[] | undefined;
  if (tools?.length) tools[tools.length - 1]!.cache_control = cc;
  const system = body.system as Block[] | undefined;
  if (Array.isArray(system) && system.length) system[system.length - 1]!.cache_control = cc;
}

/** Appends blocks to the conversation, merging a turn into the one before when the role repeats. */
export function pushTurn(
  messages: MessagesBody['messages'],
  role: 'user' | 'assistant',
  blocks: Block[],
): void {
  if (blocks.length === 0) return;
  const last = messages[messages.length - 1];
  if (last && last.role === role) {
    const before =
      typeof last.content === 'string' ? [{ type: 'text', text: last.content }] : (last.content as Block[]);
    last.content = [...before, ...blocks];
  } else messages.push({ role, content: blocks });
}

/** Text parts (`text`, `input_text`, `output_text`) as one string; other parts refused. */
export function textOf(content: unknown, field: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw invalidRequest(field, `expected text, got ${describe(content)}`);
  return content
    .map((p, i) => {
      const part = (p ?? {}) as Record<string, unknown>;
      if (typeof part.text === 'string') return part.text;
      throw invalidRequest(`${field}.${i}`, `expected a text part, got ${describe(part.type)}`);
    })
    .join('');
}

/** Parses a tool call's arguments (a JSON string) into the object a tool_use block carries. */
export function toolInput(args: unknown, field: string): Record<string, unknown> {
  if (args === undefined || args === null || args === '') return {};
  if (typeof args === 'string') {
    try {
      const v = JSON.parse(args);
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // fall through to the refusal below
    }
  }
  throw invalidRequest(field, 'expected the arguments as a JSON object in a string');
}
