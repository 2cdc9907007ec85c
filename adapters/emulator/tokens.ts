/**
 * The emulator's deterministic token estimate. It is not the provider's tokenizer (that is not
 * public); it is a stable, monotonic stand-in that every part of the emulator — `count_tokens`,
 * usage, caching, billing — agrees on, and that other adapters may reuse:
 *
 * - a text piece counts `ceil(utf8 bytes / 4)` (empty text: 0);
 * - each request adds {@link TOKEN_COSTS.request} (framing; never cacheable, always `input_tokens`);
 * - each message adds {@link TOKEN_COSTS.message} (role framing), charged to its first block;
 * - each tool definition adds {@link TOKEN_COSTS.tool} plus its name, description and the JSON of
 *   its `input_schema` (server tools: the JSON of the whole definition);
 * - each `tool_use` adds {@link TOKEN_COSTS.toolUse} plus its name and the JSON of its input;
 *   each `tool_result` adds {@link TOKEN_COSTS.toolResult} plus its content;
 * - each image (and each non-text document) counts a fixed {@link TOKEN_COSTS.image};
 * - `cache_control` markers never count; tools with `defer_loading: true` count 0 (not loaded);
 * - a mid-conversation `role: "system"` message counts like any other message (its text is input).
 *
 * The same request always counts the same, and adding text never lowers the count.
 */
import type { ContentBlock, MessagesRequest, Tool } from './request.ts';

/** The fixed overheads of the estimate. */
export const TOKEN_COSTS = Object.freeze({
  request: 3,
  message: 4,
  tool: 16,
  toolUse: 8,
  toolResult: 8,
  image: 1600,
});

/** Tokens of one text piece: `ceil(utf8 bytes / 4)`. */
export function textTokens(text: string): number {
  if (text.length === 0) return 0;
  return Math.ceil(Buffer.byteLength(text, 'utf8') / 4);
}

const withoutCacheControl = (key: string, value: unknown): unknown =>
  key === 'cache_control' ? undefined : value;

/** JSON with `cache_control` markers removed: the canonical text of a block. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, withoutCacheControl) ?? '';
}

/** Tokens of one content block (message content, system block or tool_result content). */
export function blockTokens(b: ContentBlock): number {
  switch (b.type) {
    case 'text':
      return textTokens(b.text ?? '');
    case 'image':
      return TOKEN_COSTS.image;
    case 'document':
      return b.source?.type === 'text' && typeof b.source.data === 'string'
        ? textTokens(b.source.data)
        : TOKEN_COSTS.image;
    case 'tool_use':
    case 'server_tool_use':
      return TOKEN_COSTS.toolUse + textTokens(b.name ?? '') + textTokens(canonicalJson(b.input ?? {}));
    case 'tool_result': {
      const c = b.content;
      let n = TOKEN_COSTS.toolResult;
      if (typeof c === 'string') n += textTokens(c);
      else if (Array.isArray(c)) for (const inner of c) n += blockTokens(inner);
      return n;
    }
    case 'thinking':
      return textTokens(b.thinking ?? '');
    case 'redacted_thinking':
      return textTokens(b.data ?? '');
    default:
      return textTokens(canonicalJson(b));
  }
}

/** Tokens of one tool definition. */
export function toolTokens(t: Tool): number {
  // Tool search (platform docs, tool-search-tool, Aug-2026 text): a tool with `defer_loading: true`
  // is not loaded into the context until a tool search returns it, so it adds no input tokens.
  if (t.defer_loading === true) return 0;
  if (t.type !== undefined && t.type !== 'custom') return TOKEN_COSTS.tool + textTokens(canonicalJson(t));
  return (
    TOKEN_COSTS.tool +
    textTokens(t.name) +
    textTokens(t.description ?? '') +
    textTokens(canonicalJson(t.input_schema ?? {}))
  );
}

/** One cacheable unit of the prompt, in the order the provider reads it: tools → system → messages. */
export interface Segment {
  readonly section: 'tools' | 'system' | 'messages';
  /** The tool definition or content block (string content is normalised to a text block). */
  readonly value: Tool | ContentBlock;
  /** Set on the first block of each message: its role, part of the prefix. */
  readonly role?: 'user' | 'assistant' | 'system';
  readonly tokens: number;
  /** True when this unit (or, for tool_result, a block inside it) carries `cache_control`. */
  readonly marked: boolean;
  readonly ttl: '5m' | '1h';
}

function ttlOf(b: { cache_control?: { ttl?: '5m' | '1h' } | null }): '5m' | '1h' {
  return b.cache_control?.ttl ?? '5m';
}

function markedInside(b: ContentBlock): ContentBlock | undefined {
  if (b.cache_control) return b;
  if (b.type === 'tool_result' && Array.isArray(b.content)) return b.content.find((c) => c.cache_control);
  return undefined;
}

/** The request as the provider linearises it: tools, then system blocks, then message blocks. */
export function linearise(req: MessagesRequest): Segment[] {
  const out: Segment[] = [];
  for (const t of req.tools ?? []) {
    out.push({ section: 'tools', value: t, tokens: toolTokens(t), marked: !!t.cache_control, ttl: ttlOf(t) });
  }
  const sys = req.system;
  if (typeof sys === 'string') {
    if (sys !== '') {
      out.push({
        section: 'system',
        value: { type: 'text', text: sys },
        tokens: textTokens(sys),
        marked: false,
        ttl: '5m',
      });
    }
  } else if (sys) {
    for (const b of sys) {
      out.push({
        section: 'system',
        value: b,
        tokens: blockTokens(b),
        marked: !!b.cache_control,
        ttl: ttlOf(b),
      });
    }
  }
  for (const m of req.messages) {
    const blocks: ContentBlock[] =
      typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    let extra: number = TOKEN_COSTS.message;
    if (blocks.length === 0) continue;
    blocks.forEach((b, i) => {
      const mark = markedInside(b);
      out.push({
        section: 'messages',
        value: b,
        role: i === 0 ? m.role : undefined,
        tokens: blockTokens(b) + extra,
        marked: !!mark,
        ttl: mark ? ttlOf(mark) : '5m',
      });
      extra = 0;
    });
  }
  return out;
}

/** Sum of a linearised request plus the per-request framing. */
export function countSegments(segments: readonly Segment[]): number {
  let n = TOKEN_COSTS.request;
  for (const s of segments) n += s.tokens;
  return n;
}

/**
 * The emulator's input-token count for a Messages request: what `count_tokens` returns and what
 * `input_tokens + cache_creation_input_tokens + cache_read_input_tokens` adds up to.
 *
 * @example countTokens({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'Hello' }] }) // 9
 */
export function countTokens(req: MessagesRequest): number {
  return countSegments(linearise(req));
}
