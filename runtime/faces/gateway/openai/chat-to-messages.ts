import type { MessagesBody } from '../../../gateway/messages.ts';
import { describe } from '../../../gateway/messages.ts';
import type { OpenAIBody } from '../../../gateway/openai-body.ts';
import { invalidRequest } from '../../../gateway/refusal.ts';
import {
  type Block,
  fileBlock,
  functionTools,
  imageBlock,
  markPrefix,
  outputFormat,
  pushTurn,
  sampling,
  type TranslateOptions,
  textOf,
  toolChoice,
  toolInput,
} from './request-parts.ts';

/**
 * Fields a chat-completions request may carry that a Claude model has no use for: ignored, as
 * Anthropic's OpenAI compatibility layer ignores them (`stream_options` is read by the answer's
 * translator, not here).
 */
export const CHAT_IGNORED = [
  'logprobs',
  'top_logprobs',
  'logit_bias',
  'seed',
  'presence_penalty',
  'frequency_penalty',
  'prediction',
  'service_tier',
  'store',
  'metadata',
  'user',
  'modalities',
  'audio',
  'reasoning_effort',
  'verbosity',
  'prompt_cache_key',
  'prompt_cache_retention',
  'safety_identifier',
  'stream_options',
] as const;

/**
 * A chat-completions request for a Claude model as a Messages body. System and developer
 * messages are hoisted into `system` (one text block each, in order; Claude takes one system
 * prompt); user and assistant text, images (data: URLs inline, http URLs by URL) and PDF files
 * become content blocks; assistant `tool_calls` become `tool_use` blocks; `tool` messages become
 * `tool_result` blocks in a user turn (consecutive ones merged). Fields Claude cannot honour and
 * the client would count on (`n` > 1, legacy `functions`, `web_search_options`, audio input) are
 * refused with a 400 naming them; {@link CHAT_IGNORED} are ignored.
 *
 * @example
 * const messages = chatToMessages(checkOpenAIBody('chat/completions', json), { cachePrefix: true });
 */
export function chatToMessages(body: OpenAIBody, opts: TranslateOptions = {}): MessagesBody {
  refuseUnsupported(body);
  const system: Block[] = [];
  const messages: MessagesBody['messages'] = [];
  (body.messages as Array<Record<string, unknown>>).forEach((m, i) => {
    const field = `messages.${i}`;
    switch (m.role) {
      case 'system':
      case 'developer': {
        const text = textOf(m.content, `${field}.content`);
        if (text.length) system.push({ type: 'text', text });
        break;
      }
      case 'user':
        pushTurn(messages, 'user', userBlocks(m.content, `${field}.content`));
        break;
      case 'assistant':
        pushTurn(messages, 'assistant', assistantBlocks(m, field));
        break;
      case 'tool':
        pushTurn(messages, 'user', [toolResult(m, field)]);
        break;
      default:
        throw invalidRequest(
          `${field}.role`,
          `expected "system", "developer", "user", "assistant" or "tool", got ${describe(m.role)}`,
        );
    }
  });
  const tools = functionTools(body.tools, true);
  const choice = toolChoice(body.tool_choice, body.parallel_tool_calls, tools !== undefined);
  const out: MessagesBody = {
    model: body.model,
    messages,
    ...(system.length ? { system } : {}),
    ...(tools ? { tools } : {}),
    ...(choice ? { tool_choice: choice } : {}),
    ...sampling(body, body.max_completion_tokens ?? body.max_tokens, opts),
    ...outputFormat(body.response_format),
  } as MessagesBody;
  markPrefix(out, opts);
  return out;
}

function refuseUnsupported(body: OpenAIBody): void {
  if (typeof body.n === 'number' && body.n > 1) {
    throw invalidRequest('n', 'Claude models generate one choice per call: n must be 1');
  }
  if (body.functions !== undefined || body.function_call !== undefined) {
    throw invalidRequest(
      body.functions !== undefined ? 'functions' : 'function_call',
      'the legacy functions API is not translated for Claude models: use tools and tool_choice',
    );
  }
  if (body.web_search_options !== undefined) {
    throw invalidRequest(
      'web_search_options',
      'web search is not available for Claude models through the chat completions format',
    );
  }
}

function userBlocks(content: unknown, field: string): Block[] {
  if (typeof content === 'string') return content.length ? [{ type: 'text', text: content }] : [];
  if (!Array.isArray(content)) {
    throw invalidRequest(field, `expected a string or an array of content parts, got ${describe(content)}`);
  }
  const blocks: Block[] = [];
  content.forEach((p, i) => {
    const part = (p ?? {}) as Record<string, unknown>;
    const at = `${field}.${i}`;
    if (part.type === 'text') {
      if (typeof part.text !== 'string') throw invalidRequest(`${at}.text`, 'required: the text');
      if (part.text.length) blocks.push({ type: 'text', text: part.text });
    } else if (part.type === 'image_url') {
      const image = part.image_url as { url?: unknown } | string | undefined;
      blocks.push(imageBlock(typeof image === 'string' ? image : image?.url, `${at}.image_url.url`));
    } else if (part.type === 'file') {
      blocks.push(fileBlock((part.file ?? {}) as Record<string, unknown>, `${at}.file`));
    } else if (part.type === 'input_audio') {
      throw invalidRequest(`${at}.type`, 'audio input is not accepted by Claude models');
    } else {
      throw invalidRequest(`${at}.type`, `unknown content part type ${describe(part.type)}`);
    }
  });
  return blocks;
}

function assistantBlocks(m: Record<string, unknown>, field: string): Block[] {
  const blocks: Block[] = [];
  if (m.content !== undefined && m.content !== null) {
    const content = Array.isArray(m.content)
      ? m.content.map((p) => {
          const part = (p ?? {}) as Record<string, unknown>;
          return part.type === 'refusal' ? { text: part.refusal } : part;
        })
      : m.content;
    const text = textOf(content, `${field}.content`);
    if (text.length) blocks.push({ type: 'text', text });
  }
  const calls = m.tool_calls;
  if (calls !== undefined && calls !== null) {
    if (!Array.isArray(calls)) throw invalidRequest(`${field}.tool_calls`, 'expected an array of tool calls');
    calls.forEach((c, j) => {
      const call = (c ?? {}) as Record<string, unknown>;
      const at = `${field}.tool_calls.${j}`;
      const fn = (call.function ?? {}) as Record<string, unknown>;
      if (typeof call.id !== 'string') throw invalidRequest(`${at}.id`, 'required: the tool call id');
      if (typeof fn.name !== 'string')
        throw invalidRequest(`${at}.function.name`, 'required: the function name');
      blocks.push({
        type: 'tool_use',
        id: call.id,
        name: fn.name,
        input: toolInput(fn.arguments, `${at}.function.arguments`),
      });
    });
  }
  return blocks;
}

function toolResult(m: Record<string, unknown>, field: string): Block {
  if (typeof m.tool_call_id !== 'string') {
    throw invalidRequest(`${field}.tool_call_id`, 'required: the id of the tool call this answers');
  }
  return { type: 'tool_result', tool_use_id: m.tool_call_id, content: textOf(m.content, `${field}.content`) };
}
