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
 * Responses fields a Claude model has no use for: ignored (`reasoning` included — Claude's
 * thinking is not switched on from an OpenAI-format request, as in Anthropic's own layer).
 */
export const RESPONSES_IGNORED = [
  'reasoning',
  'include',
  'store',
  'truncation',
  'metadata',
  'user',
  'service_tier',
  'prompt_cache_key',
  'prompt_cache_retention',
  'safety_identifier',
  'max_tool_calls',
  'top_logprobs',
  'stream_options',
] as const;

/**
 * A responses request for a Claude model as a Messages body: `instructions` and system/developer
 * items are hoisted into `system`; message items become turns (input_text, input_image, input_file
 * parts; assistant output_text); `function_call` items become `tool_use` blocks and
 * `function_call_output` items `tool_result` blocks (consecutive ones merged into one user turn);
 * `reasoning` items (OpenAI's, opaque to Claude) are dropped. Requests that lean on state OpenAI
 * keeps (`previous_response_id`, `conversation`, stored `prompt`, `background`) are refused,
 * naming the field: nothing here stores responses.
 */
export function responsesToMessages(body: OpenAIBody, opts: TranslateOptions = {}): MessagesBody {
  for (const field of ['previous_response_id', 'conversation', 'prompt'] as const) {
    if (body[field] != null) {
      throw invalidRequest(
        field,
        'Claude models are served statelessly here: send the whole conversation as input',
      );
    }
  }
  if (body.background === true) {
    throw invalidRequest('background', 'background responses are not available for Claude models');
  }
  const system: Block[] = [];
  if (body.instructions != null) {
    const text = textOf(body.instructions, 'instructions');
    if (text.length) system.push({ type: 'text', text });
  }
  const messages: MessagesBody['messages'] = [];
  const input = typeof body.input === 'string' ? [{ role: 'user', content: body.input }] : body.input;
  (input as Array<Record<string, unknown>>).forEach((item, i) => {
    addItem(item ?? {}, `input.${i}`, system, messages);
  });
  const tools = functionTools(body.tools, false);
  const choice = toolChoice(body.tool_choice, body.parallel_tool_calls, tools !== undefined);
  const out: MessagesBody = {
    model: body.model,
    messages,
    ...(system.length ? { system } : {}),
    ...(tools ? { tools } : {}),
    ...(choice ? { tool_choice: choice } : {}),
    ...sampling(body, body.max_output_tokens, opts),
    ...outputFormat((body.text as { format?: unknown } | undefined)?.format),
  } as MessagesBody;
  markPrefix(out, opts);
  return out;
}

function addItem(
  item: Record<string, unknown>,
  field: string,
  system: Block[],
  messages: MessagesBody['messages'],
): void {
  const type = item.type ?? 'message';
  if (type === 'message') {
    if (item.role === 'system' || item.role === 'developer') {
      const text = textOf(item.content, `${field}.content`);
      if (text.length) system.push({ type: 'text', text });
    } else if (item.role === 'user') {
      pushTurn(messages, 'user', parts(item.content, `${field}.content`));
    } else if (item.role === 'assistant') {
      pushTurn(messages, 'assistant', assistantText(item.content, `${field}.content`));
    } else {
      throw invalidRequest(
        `${field}.role`,
        `expected "user", "assistant", "system" or "developer", got ${describe(item.role)}`,
      );
    }
  } else if (type === 'function_call') {
    if (typeof item.call_id !== 'string') throw invalidRequest(`${field}.call_id`, 'required: the call id');
    if (typeof item.name !== 'string') throw invalidRequest(`${field}.name`, 'required: the function name');
    pushTurn(messages, 'assistant', [
      {
        type: 'tool_use',
        id: item.call_id,
        name: item.name,
        input: toolInput(item.arguments, `${field}.arguments`),
      },
    ]);
  } else if (type === 'function_call_output') {
    if (typeof item.call_id !== 'string') throw invalidRequest(`${field}.call_id`, 'required: the call id');
    const output = typeof item.output === 'string' ? item.output : parts(item.output, `${field}.output`);
    pushTurn(messages, 'user', [{ type: 'tool_result', tool_use_id: item.call_id, content: output }]);
  } else if (type !== 'reasoning') {
    throw invalidRequest(
      `${field}.type`,
      `input item ${describe(type)} is not translated for Claude models (message, function_call, function_call_output and reasoning are)`,
    );
  }
}

function parts(content: unknown, field: string): Block[] {
  if (typeof content === 'string') return content.length ? [{ type: 'text', text: content }] : [];
  if (!Array.isArray(content)) {
    throw invalidRequest(field, `expected a string or an array of content parts, got ${describe(content)}`);
  }
  const blocks: Block[] = [];
  content.forEach((p, i) => {
    const part = (p ?? {}) as Record<string, unknown>;
    const at = `${field}.${i}`;
    if (part.type === 'input_text' || part.type === 'text') {
      if (typeof part.text !== 'string') throw invalidRequest(`${at}.text`, 'required: the text');
      if (part.text.length) blocks.push({ type: 'text', text: part.text });
    } else if (part.type === 'input_image') {
      if (part.image_url === undefined && part.file_id !== undefined) {
        throw invalidRequest(
          `${at}.file_id`,
          'OpenAI file ids cannot be read by a Claude model: send image_url',
        );
      }
      blocks.push(imageBlock(part.image_url, `${at}.image_url`));
    } else if (part.type === 'input_file') {
      blocks.push(fileBlock(part, at));
    } else {
      throw invalidRequest(
        `${at}.type`,
        `content part ${describe(part.type)} is not accepted by Claude models`,
      );
    }
  });
  return blocks;
}

function assistantText(content: unknown, field: string): Block[] {
  const normalised = Array.isArray(content)
    ? content.map((p) => {
        const part = (p ?? {}) as Record<string, unknown>;
        return part.type === 'refusal' ? { text: part.refusal } : part;
      })
    : content;
  const text = textOf(normalised, field);
  return text.length ? [{ type: 'text', text }] : [];
}
