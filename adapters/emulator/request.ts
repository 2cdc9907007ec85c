/**
 * The `/v1/messages` request body: its types and its validation, with the API's own wording
 * (`"max_tokens: Field required"`, `"messages.1.role: Input should be 'user', 'assistant' or 'system'"`).
 * Hand-written rather than a zod schema because it runs on every request of every benchmark and
 * because the messages must name the field exactly as the provider does.
 */
import { invalid } from './errors.ts';

export interface CacheControl {
  type: 'ephemeral';
  ttl?: '5m' | '1h';
}

/** A content block. Known fields are typed; other block types pass through untouched. */
export interface ContentBlock {
  type: string;
  text?: string;
  id?: string;
  name?: string;
  input?: unknown;
  tool_use_id?: string;
  content?: string | ContentBlock[];
  is_error?: boolean;
  thinking?: string;
  data?: string;
  source?: { type?: string; data?: string; content?: unknown };
  cache_control?: CacheControl | null;
  [key: string]: unknown;
}

export interface Message {
  /** `system`: a mid-conversation system message (models that accept them; see features.ts). */
  role: 'user' | 'assistant' | 'system';
  content: string | ContentBlock[];
}

export interface Tool {
  name: string;
  type?: string;
  description?: string;
  input_schema?: JsonSchema;
  cache_control?: CacheControl | null;
  [key: string]: unknown;
}

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  examples?: unknown[];
  minimum?: number;
  minItems?: number;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  [key: string]: unknown;
}

export type ToolChoice =
  | { type: 'auto'; disable_parallel_tool_use?: boolean }
  | { type: 'any'; disable_parallel_tool_use?: boolean }
  | { type: 'tool'; name: string; disable_parallel_tool_use?: boolean }
  | { type: 'none' };

export interface MessagesRequest {
  model: string;
  max_tokens: number;
  messages: Message[];
  system?: string | ContentBlock[];
  tools?: Tool[];
  tool_choice?: ToolChoice;
  stream?: boolean;
  stop_sequences?: string[];
  thinking?: { type: string; budget_tokens?: number; display?: string } | null;
  /** Automatic caching: a breakpoint on the last cacheable block. */
  cache_control?: CacheControl | null;
  speed?: string | null;
  inference_geo?: string | null;
  output_config?: { effort?: string | null; [key: string]: unknown } | null;
  context_management?: { edits?: unknown[]; [key: string]: unknown } | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  [key: string]: unknown;
}

const BLOCK_TYPES = new Set([
  'text',
  'image',
  'document',
  'search_result',
  'tool_use',
  'tool_result',
  'thinking',
  'redacted_thinking',
  'server_tool_use',
  'web_search_tool_result',
  'web_fetch_tool_result',
  'code_execution_tool_result',
  'container_upload',
]);
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,128}$/;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function checkCacheControl(v: unknown, path: string, isEmptyText: boolean): void {
  if (v === undefined || v === null) return;
  if (!isObject(v) || v.type !== 'ephemeral')
    throw invalid(`${path}.cache_control.type: Input should be 'ephemeral'`);
  if (v.ttl !== undefined && v.ttl !== '5m' && v.ttl !== '1h') {
    throw invalid(`${path}.cache_control.ttl: Input should be '5m' or '1h'`);
  }
  if (isEmptyText) throw invalid(`${path}: cache_control cannot be set for empty text blocks`);
}

function checkBlock(b: unknown, path: string): void {
  if (!isObject(b)) throw invalid(`${path}: Input should be a valid dictionary or object`);
  const type = b.type;
  if (typeof type !== 'string') throw invalid(`${path}.type: Field required`);
  if (!BLOCK_TYPES.has(type)) {
    throw invalid(
      `${path}.type: Input tag '${type}' found using 'type' does not match any of the expected tags: ${[...BLOCK_TYPES].map((t) => `'${t}'`).join(', ')}`,
    );
  }
  if (type === 'text' && typeof b.text !== 'string') throw invalid(`${path}.text: Field required`);
  if (type === 'tool_use') {
    if (typeof b.id !== 'string') throw invalid(`${path}.id: Field required`);
    if (typeof b.name !== 'string') throw invalid(`${path}.name: Field required`);
    if (!isObject(b.input)) throw invalid(`${path}.input: Input should be a valid dictionary`);
  }
  if (type === 'tool_result') {
    if (typeof b.tool_use_id !== 'string') throw invalid(`${path}.tool_use_id: Field required`);
    if (Array.isArray(b.content)) {
      for (const [i, c] of b.content.entries()) checkBlock(c, `${path}.content.${i}`);
    } else if (b.content !== undefined && typeof b.content !== 'string') {
      throw invalid(`${path}.content: Input should be a valid string or list`);
    }
  }
  if ((type === 'thinking' || type === 'redacted_thinking') && b.cache_control) {
    throw invalid(`${path}: cache_control cannot be set on ${type} blocks`);
  }
  checkCacheControl(b.cache_control, path, type === 'text' && b.text === '');
}

function toolUseIds(content: Message['content'], type: 'tool_use' | 'tool_result'): string[] {
  if (typeof content === 'string') return [];
  const key = type === 'tool_use' ? 'id' : 'tool_use_id';
  return content.filter((b) => b.type === type).map((b) => b[key] as string);
}

const endsInServerToolUse = (m: Message | undefined) =>
  !!m && typeof m.content !== 'string' && m.content.at(-1)?.type === 'server_tool_use';

/**
 * Mid-conversation system messages (platform docs, "Mid-conversation system messages", Aug-2026
 * text): not first; right after a `user` turn (or an `assistant` turn ending in server tool use);
 * last, or followed by an `assistant` turn; never two in a row; text content only.
 */
function checkSystemPlacement(messages: Message[], i: number): void {
  const path = `messages.${i}`;
  if (i === 0) throw invalid(`${path}.role: a system message cannot be the first message`);
  const prev = messages[i - 1];
  if (prev?.role === 'system') throw invalid(`${path}.role: consecutive system messages are not allowed`);
  if (!(prev?.role === 'user' || (prev?.role === 'assistant' && endsInServerToolUse(prev)))) {
    throw invalid(`${path}.role: a system message must immediately follow a user message`);
  }
  const next = messages[i + 1];
  if (next && next.role !== 'assistant' && next.role !== 'system') {
    throw invalid(
      `${path}.role: a system message must be the last message or be followed by an assistant message`,
    );
  }
  const c = messages[i]?.content;
  if (Array.isArray(c) && c.some((b) => !isObject(b) || b.type !== 'text')) {
    throw invalid(`${path}.content: system messages may only contain text blocks`);
  }
}

function checkMessages(messages: unknown): asserts messages is Message[] {
  if (messages === undefined) throw invalid('messages: Field required');
  if (!Array.isArray(messages)) throw invalid('messages: Input should be a valid list');
  if (messages.length === 0) throw invalid('messages: at least one message is required');
  messages.forEach((m, i) => {
    const path = `messages.${i}`;
    if (!isObject(m)) throw invalid(`${path}: Input should be a valid dictionary or object`);
    if (m.role !== 'user' && m.role !== 'assistant' && m.role !== 'system') {
      throw invalid(`${path}.role: Input should be 'user', 'assistant' or 'system'`);
    }
    if (m.role === 'system') checkSystemPlacement(messages as Message[], i);
    const c = m.content;
    if (c === undefined) throw invalid(`${path}.content: Field required`);
    if (typeof c === 'string') {
      if (c === '' && !(i === messages.length - 1 && m.role === 'assistant')) {
        throw invalid(
          `${path}: all messages must have non-empty content except for the optional final assistant message`,
        );
      }
      return;
    }
    if (!Array.isArray(c)) throw invalid(`${path}.content: Input should be a valid string or list`);
    if (c.length === 0 && !(i === messages.length - 1 && m.role === 'assistant')) {
      throw invalid(
        `${path}: all messages must have non-empty content except for the optional final assistant message`,
      );
    }
    for (const [j, b] of c.entries()) checkBlock(b, `${path}.content.${j}`);
  });
  // Every tool_use must be answered in the very next message, and every tool_result must answer one.
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as Message;
    const uses = m.role === 'assistant' ? toolUseIds(m.content, 'tool_use') : [];
    const next = messages[i + 1] as Message | undefined;
    const results =
      next?.role === 'user' ? new Set(toolUseIds(next.content, 'tool_result')) : new Set<string>();
    const unanswered = uses.filter((id) => !results.has(id));
    if (unanswered.length > 0 && next) {
      throw invalid(
        `messages.${i + 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${unanswered.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`,
      );
    }
    if (m.role === 'user') {
      const prev = messages[i - 1] as Message | undefined;
      const asked = new Set(prev?.role === 'assistant' ? toolUseIds(prev.content, 'tool_use') : []);
      const orphan = toolUseIds(m.content, 'tool_result').filter((id) => !asked.has(id));
      if (orphan.length > 0) {
        throw invalid(
          `messages.${i}.content.0: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${orphan.join(', ')}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`,
        );
      }
    }
  }
}

function checkTools(tools: unknown, toolChoice: unknown): void {
  if (tools !== undefined) {
    if (!Array.isArray(tools)) throw invalid('tools: Input should be a valid list');
    const names = new Set<string>();
    tools.forEach((t, i) => {
      const path = `tools.${i}`;
      if (!isObject(t)) throw invalid(`${path}: Input should be a valid dictionary or object`);
      if (typeof t.name !== 'string') throw invalid(`${path}.name: Field required`);
      if (!TOOL_NAME.test(t.name))
        throw invalid(`${path}.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`);
      if (t.type === undefined || t.type === 'custom') {
        if (!isObject(t.input_schema)) throw invalid(`${path}.input_schema: Field required`);
      }
      if (names.has(t.name)) throw invalid('tools: Tool names must be unique.');
      names.add(t.name);
      checkCacheControl(t.cache_control, path, false);
    });
  }
  if (toolChoice === undefined) return;
  if (!isObject(toolChoice) || !['auto', 'any', 'tool', 'none'].includes(toolChoice.type as string)) {
    throw invalid(
      `tool_choice: Input tag '${String((toolChoice as { type?: unknown })?.type)}' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'`,
    );
  }
  if (toolChoice.type === 'tool') {
    if (typeof toolChoice.name !== 'string') throw invalid('tool_choice.tool.name: Field required');
    const known = Array.isArray(tools) && tools.some((t) => isObject(t) && t.name === toolChoice.name);
    if (!known) throw invalid(`tool_choice: Tool '${toolChoice.name}' not found in tools`);
  }
  if (
    (toolChoice.type === 'any' || toolChoice.type === 'tool') &&
    !(Array.isArray(tools) && tools.length > 0)
  ) {
    throw invalid(`tool_choice: tool_choice.type '${toolChoice.type}' requires tools to be provided`);
  }
}

function checkSystem(system: unknown): void {
  if (system === undefined || typeof system === 'string') return;
  if (!Array.isArray(system)) throw invalid('system: Input should be a valid string or list');
  system.forEach((b, i) => {
    if (!isObject(b) || b.type !== 'text') throw invalid(`system.${i}.type: Input should be 'text'`);
    if (typeof b.text !== 'string') throw invalid(`system.${i}.text: Field required`);
    checkCacheControl(b.cache_control, `system.${i}`, b.text === '');
  });
}

/**
 * Validates a `/v1/messages` body (or a `count_tokens` body, which has no `max_tokens`).
 * Throws an `ApiError` 400 naming the first wrong field. Model existence and the model's
 * output limit are checked by the caller, which knows the catalogue.
 */
export function validateRequest(body: unknown, kind: 'messages' | 'count_tokens'): MessagesRequest {
  if (!isObject(body)) throw invalid('Request body must be a JSON object');
  if (body.model === undefined) throw invalid('model: Field required');
  if (typeof body.model !== 'string') throw invalid('model: Input should be a valid string');
  if (kind === 'messages') {
    const mt = body.max_tokens;
    if (mt === undefined) throw invalid('max_tokens: Field required');
    if (typeof mt !== 'number' || !Number.isInteger(mt))
      throw invalid('max_tokens: Input should be a valid integer');
    if (mt < 1) throw invalid('max_tokens: Input should be greater than or equal to 1');
  }
  checkMessages(body.messages);
  checkSystem(body.system);
  checkTools(body.tools, body.tool_choice);
  checkCacheControl(body.cache_control, 'cache_control', false);
  if (body.stream !== undefined && typeof body.stream !== 'boolean')
    throw invalid('stream: Input should be a valid boolean');
  const stops = body.stop_sequences;
  if (stops !== undefined && !(Array.isArray(stops) && stops.every((s) => typeof s === 'string'))) {
    throw invalid('stop_sequences: Input should be a valid list of strings');
  }
  const thinking = body.thinking;
  if (kind === 'messages' && isObject(thinking) && thinking.type === 'enabled') {
    const budget = thinking.budget_tokens;
    if (typeof budget !== 'number') throw invalid('thinking.enabled.budget_tokens: Field required');
    if (budget < 1024)
      throw invalid('thinking.enabled.budget_tokens: Input should be greater than or equal to 1024');
    if (budget >= (body.max_tokens as number)) {
      throw invalid('`max_tokens` must be greater than `thinking.budget_tokens`');
    }
  }
  return body as MessagesRequest;
}
