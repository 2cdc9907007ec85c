import { checkDepth, describe } from './messages.ts';
import { invalidRequest } from './refusal.ts';

/**
 * The OpenAI-format request bodies (chat completions, responses, embeddings), checked only as far
 * as admission needs them — validate what you enforce, forward the rest, as for `/v1/messages`.
 * The gateway checks the model, the output cap, the input's shape, `n`, `stream` and the nesting
 * bound; every other field reaches the provider (or the Claude translation) untouched.
 */
export type OpenAIEndpoint = 'chat/completions' | 'responses' | 'embeddings';

export interface OpenAIBody {
  model: string;
  stream?: boolean;
  [field: string]: unknown;
}

/** Built-in tool calls a request allows at most, each billed per call (or per container session). */
export interface BuiltinToolCalls {
  webSearch?: number;
  fileSearch?: number;
  codeInterpreter?: number;
}

/** What admission reads off an OpenAI-format body, in one walk over it. */
export interface OpenAIFacts {
  model: string;
  /** Conservative input-token estimate (see {@link inspectOpenAI}). */
  inputTokens: number;
  /** The output cap per choice; undefined = the model's maximum. 0 for embeddings. */
  maxOutput: number | undefined;
  /** Choices generated (chat's `n`): output tokens multiply by it. */
  n: number;
  builtinTools: BuiltinToolCalls;
  /**
   * True when the input continues state the provider keeps (responses' `previous_response_id`,
   * `conversation` or a stored `prompt`): the body does not show it, so the input can be anything
   * up to the model's context window, and admission must price it so.
   */
  storedContext: boolean;
}

/**
 * An image counts this many input tokens whatever its size, and its bytes are not walked. OpenAI
 * prices images by tiles or 32px patches times a per-model multiplier; the dearest documented case
 * (1,536 patches × 2.46) is under 3,800 tokens, so 8,000 stays above it with room for a detail
 * level that sends more patches.
 */
export const OPENAI_IMAGE_TOKENS = 8000;

/** Tool types billed as tokens only: client tools, and built-ins without a per-call fee. */
const TOKENS_ONLY = new Set([
  'function',
  'custom',
  'namespace',
  'computer',
  'computer_use_preview',
  'local_shell',
  'shell',
  'apply_patch',
  'mcp',
  'tool_search',
]);

/**
 * Checks what admission needs and answers a 400 naming the field otherwise. The nesting bound is
 * checked first, so nothing below ever walks an unbounded structure.
 */
export function checkOpenAIBody(endpoint: OpenAIEndpoint, json: unknown): OpenAIBody {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw invalidRequest('(body)', 'expected a JSON object');
  }
  checkDepth(json);
  const body = json as Record<string, unknown>;
  if (typeof body.model !== 'string' || body.model.length === 0) {
    throw invalidRequest(
      'model',
      body.model === undefined
        ? 'required: the model to call, e.g. "gpt-5.2" or "claude-sonnet-5-5"'
        : `expected a model id (a non-empty string), got ${describe(body.model)}`,
    );
  }
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') {
    throw invalidRequest('stream', `expected true or false, got ${describe(body.stream)}`);
  }
  if (endpoint === 'chat/completions') checkChat(body);
  else if (endpoint === 'responses') checkResponses(body);
  else checkEmbeddings(body);
  return body as OpenAIBody;
}

function positiveInt(body: Record<string, unknown>, field: string, what: string): void {
  const v = body[field];
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw invalidRequest(field, `expected ${what} (a positive integer), got ${describe(v)}`);
  }
}

function checkChat(body: Record<string, unknown>): void {
  positiveInt(body, 'max_completion_tokens', 'the most output tokens to generate');
  positiveInt(body, 'max_tokens', 'the most output tokens to generate');
  const a = body.max_completion_tokens;
  const b = body.max_tokens;
  if (typeof a === 'number' && typeof b === 'number' && a !== b) {
    // Two different caps: whichever the provider honoured, admission would have priced the other.
    throw invalidRequest(
      'max_tokens',
      `conflicts with max_completion_tokens (${b} vs ${a}); send one of them (max_tokens is the legacy name)`,
    );
  }
  positiveInt(body, 'n', 'how many choices to generate');
  if (!Array.isArray(body.messages)) {
    throw invalidRequest(
      'messages',
      body.messages === undefined
        ? 'required: an array of messages'
        : `expected an array of messages, got ${describe(body.messages)}`,
    );
  }
  body.messages.forEach((m, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) {
      throw invalidRequest(`messages.${i}`, `expected a message object, got ${describe(m)}`);
    }
  });
  if (body.tools !== undefined && body.tools !== null && !Array.isArray(body.tools)) {
    throw invalidRequest('tools', `expected an array of tools, got ${describe(body.tools)}`);
  }
}

function checkResponses(body: Record<string, unknown>): void {
  positiveInt(body, 'max_output_tokens', 'the most output tokens to generate');
  positiveInt(body, 'max_tool_calls', 'the most built-in tool calls');
  const input = body.input;
  if (input !== undefined && typeof input !== 'string' && !Array.isArray(input)) {
    throw invalidRequest('input', `expected a string or an array of input items, got ${describe(input)}`);
  }
  if (input === undefined && body.previous_response_id === undefined && body.prompt === undefined) {
    throw invalidRequest('input', 'required: a string or an array of input items');
  }
  if (body.tools !== undefined && body.tools !== null && !Array.isArray(body.tools)) {
    throw invalidRequest('tools', `expected an array of tools, got ${describe(body.tools)}`);
  }
}

function checkEmbeddings(body: Record<string, unknown>): void {
  const input = body.input;
  if (typeof input === 'string' || Array.isArray(input)) return;
  throw invalidRequest(
    'input',
    input === undefined
      ? 'required: the text (a string or an array of strings or token arrays) to embed'
      : `expected a string or an array, got ${describe(input)}`,
  );
}

/**
 * One iterative walk over the whole body. Like `inspect` for Messages bodies, the input estimate
 * counts the UTF-8 bytes of EVERY string — values and keys, known fields or not — divided by 2,
 * rounded up (tokenizers average 3–4 bytes per token), 4 bytes per number (a token id in an
 * embeddings token array is one token), plus 64 per request, 16 per message or input item, 32 per
 * tool and {@link OPENAI_IMAGE_TOKENS} per image part (its bytes not counted). These fixed parts
 * are larger than the Messages ones so that the estimate stays above the Messages estimate of the
 * same request translated for a Claude model. Audio and file parts are counted by their bytes:
 * an over-count, never an under-count.
 */
export function inspectOpenAI(endpoint: OpenAIEndpoint, body: OpenAIBody): OpenAIFacts {
  const items = endpoint === 'chat/completions' ? (body.messages as unknown[]) : body.input;
  const tools = Array.isArray(body.tools) ? (body.tools as unknown[]) : [];
  let fixed = 64 + 16 * (Array.isArray(items) ? items.length : 1) + 32 * tools.length;
  let bytes = 0;
  const stack: unknown[] = [body];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === 'string') bytes += Buffer.byteLength(v);
    else if (typeof v === 'number') bytes += 4;
    else if (Array.isArray(v)) for (const x of v) stack.push(x);
    else if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (o.type === 'image_url' || o.type === 'input_image') {
        fixed += OPENAI_IMAGE_TOKENS;
        continue;
      }
      for (const k in o) {
        bytes += Buffer.byteLength(k);
        stack.push(o[k]);
      }
    }
  }
  return {
    model: body.model,
    inputTokens: Math.ceil(bytes / 2) + fixed,
    maxOutput: maxOutputOf(endpoint, body),
    n: endpoint === 'chat/completions' && typeof body.n === 'number' ? body.n : 1,
    builtinTools: builtinTools(endpoint, body, tools),
    storedContext:
      endpoint === 'responses' &&
      (body.previous_response_id != null || body.conversation != null || body.prompt != null),
  };
}

function maxOutputOf(endpoint: OpenAIEndpoint, body: OpenAIBody): number | undefined {
  if (endpoint === 'embeddings') return 0;
  const cap =
    endpoint === 'responses' ? body.max_output_tokens : (body.max_completion_tokens ?? body.max_tokens);
  return typeof cap === 'number' ? cap : undefined;
}

/**
 * Built-in tools billed per call. The Responses API has no per-tool `max_uses`; its bound is the
 * request's `max_tool_calls` (across all built-in tools), so a billed built-in without it is
 * refused. Each billed tool type is counted at the whole bound (a worst case per type, summed:
 * an over-count). A `code_interpreter` tool is one container session per response. Chat's
 * `web_search_options` (search models) is one search per call. A tool type the gateway does not
 * know may carry a fee it cannot bound: refused, naming the field.
 */
function builtinTools(endpoint: OpenAIEndpoint, body: OpenAIBody, tools: unknown[]): BuiltinToolCalls {
  const out: BuiltinToolCalls = {};
  if (endpoint === 'embeddings') return out;
  if (endpoint === 'chat/completions' && body.web_search_options != null) out.webSearch = 1;
  tools.forEach((t, i) => {
    const type = t !== null && typeof t === 'object' ? (t as { type?: unknown }).type : undefined;
    if (typeof type !== 'string') {
      throw invalidRequest(`tools.${i}.type`, `required: the tool's type, got ${describe(type)}`);
    }
    if (TOKENS_ONLY.has(type) && (endpoint === 'responses' || type === 'function' || type === 'custom'))
      return;
    if (endpoint === 'responses' && type === 'code_interpreter') {
      out.codeInterpreter = (out.codeInterpreter ?? 0) + 1;
      return;
    }
    const kind = endpoint === 'responses' ? billedKind(type) : undefined;
    if (!kind) {
      throw invalidRequest(
        `tools.${i}.type`,
        `tool type ${JSON.stringify(type)} is not known to the gateway, so its cost cannot be bounded and the call is refused`,
      );
    }
    const bound = body.max_tool_calls;
    if (typeof bound !== 'number') {
      throw invalidRequest(
        'max_tool_calls',
        `required by the gateway with the ${type} tool (tools.${i}): it is billed per call, and without max_tool_calls its cost has no bound`,
      );
    }
    out[kind] = bound;
  });
  return out;
}

function billedKind(type: string): 'webSearch' | 'fileSearch' | undefined {
  if (/^web_search(_preview)?(_\d{4}_\d{2}_\d{2})?$/.test(type)) return 'webSearch';
  if (type === 'file_search') return 'fileSearch';
  return undefined;
}
