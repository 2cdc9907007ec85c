import type { OpenAIBody } from '../../../gateway/openai-body.ts';
import { SseReader } from './anthropic-sse.ts';
import { streamErrorOf } from './errors.ts';
import type { AnswerContext, AnthropicUsage } from './messages-to-chat.ts';

/**
 * A Claude answer in the responses format: the whole message as a `response` object, and the
 * Anthropic SSE stream as the typed responses events (`response.created` … `response.completed`),
 * translated as the bytes arrive.
 */
export interface ResponsesContext extends AnswerContext {
  /** The client's request: the response echoes its settings (instructions, tools, caps…). */
  request?: OpenAIBody;
}

type Item = Record<string, unknown>;

/** Responses usage: input counts cache reads and writes too; cached_tokens the reads. */
export function responsesUsage(u: AnthropicUsage): Record<string, unknown> {
  const cached = u.cache_read_input_tokens ?? 0;
  const input = (u.input_tokens ?? 0) + cached + (u.cache_creation_input_tokens ?? 0);
  const output = u.output_tokens ?? 0;
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: cached },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: u.output_tokens_details?.thinking_tokens ?? 0 },
    total_tokens: input + output,
  };
}

/** `completed`, or `incomplete` with its reason (the output cap, a refusal). */
function statusOf(stop: unknown): { status: string; incomplete_details: unknown } {
  if (stop === 'max_tokens' || stop === 'model_context_window_exceeded') {
    return { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } };
  }
  if (stop === 'refusal') return { status: 'incomplete', incomplete_details: { reason: 'content_filter' } };
  return { status: 'completed', incomplete_details: null };
}

const idOf = (messageId: unknown) => (typeof messageId === 'string' ? messageId : 'unknown');

/** The response object around `output`, echoing the request's settings as OpenAI does. */
function envelope(
  messageId: unknown,
  created: number,
  ctx: ResponsesContext,
  output: Item[],
  rest: Record<string, unknown>,
): Record<string, unknown> {
  const req = (ctx.request ?? {}) as Record<string, unknown>;
  return {
    id: `resp_${idOf(messageId)}`,
    object: 'response',
    created_at: created,
    status: 'in_progress',
    background: false,
    error: null,
    incomplete_details: null,
    instructions: req.instructions ?? null,
    max_output_tokens: req.max_output_tokens ?? null,
    max_tool_calls: req.max_tool_calls ?? null,
    model: ctx.model,
    output,
    parallel_tool_calls: req.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    service_tier: 'default',
    store: false,
    temperature: req.temperature ?? 1,
    text: req.text ?? { format: { type: 'text' } },
    tool_choice: req.tool_choice ?? 'auto',
    tools: req.tools ?? [],
    top_p: req.top_p ?? 1,
    truncation: 'disabled',
    usage: null,
    metadata: req.metadata ?? {},
    ...rest,
  };
}

const messageItem = (id: string, text: string, status: string): Item => ({
  type: 'message',
  id,
  status,
  role: 'assistant',
  content: status === 'in_progress' ? [] : [textPart(text)],
});

const textPart = (text: string) => ({ type: 'output_text', text, annotations: [], logprobs: [] });

const callItem = (block: Record<string, unknown>, args: string, status: string): Item => ({
  type: 'function_call',
  id: `fc_${block.id}`,
  call_id: block.id,
  name: block.name,
  arguments: args,
  status,
});

/**
 * A whole Messages answer as a `response`: each text block a `message` output item with one
 * `output_text` part, each `tool_use` a `function_call` item (`call_id` = the tool_use id, which a
 * later `function_call_output` names); thinking and server-tool blocks left out.
 */
export function messageToResponse(
  message: Record<string, unknown>,
  ctx: ResponsesContext,
): Record<string, unknown> {
  const blocks = (Array.isArray(message.content) ? message.content : []) as Array<Record<string, unknown>>;
  const output: Item[] = [];
  for (const b of blocks) {
    if (b.type === 'text')
      output.push(messageItem(`msg_${idOf(message.id)}_${output.length}`, String(b.text), 'completed'));
    if (b.type === 'tool_use') output.push(callItem(b, JSON.stringify(b.input ?? {}), 'completed'));
  }
  const created = ctx.created ?? Math.floor(Date.now() / 1000);
  return envelope(message.id, created, ctx, output, {
    ...statusOf(message.stop_reason),
    usage: responsesUsage((message.usage ?? {}) as AnthropicUsage),
  });
}

/**
 * The streamed translation: Anthropic SSE bytes in, in any chunking, responses events out
 * (`event: <type>\ndata: {…, sequence_number}\n\n`): `response.created` and
 * `response.in_progress`; per text block `output_item.added`, `content_part.added`,
 * `output_text.delta`…, `output_text.done`, `content_part.done`, `output_item.done`; per tool_use
 * `output_item.added`, `function_call_arguments.delta`…, `function_call_arguments.done`,
 * `output_item.done`; then `response.completed` (or `response.incomplete`) with the usage. An
 * Anthropic error event, or a stream that breaks off, ends it with an `error` event.
 */
export class ResponsesStreamTranslator {
  private readonly reader = new SseReader();
  private readonly created: number;
  private messageId: unknown;
  private seq = 0;
  private usage: AnthropicUsage = {};
  private stop: unknown = null;
  private readonly output: Item[] = [];
  /** The open block: its output index, item, and the text or arguments so far. */
  private open?: { index: number; block: Record<string, unknown>; item: Item; acc: string };
  private finished = false;

  constructor(private readonly ctx: ResponsesContext) {
    this.created = ctx.created ?? Math.floor(Date.now() / 1000);
  }

  /** Translates a chunk of the Anthropic stream; returns the OpenAI bytes it completes. */
  push(chunk: Buffer): Buffer {
    return this.emit(this.reader.push(chunk));
  }

  /** The Anthropic stream ended (or broke off): the bytes that close the OpenAI one. */
  end(): Buffer {
    const tail = this.emit(this.reader.end());
    if (this.finished) return tail;
    this.finished = true;
    const broke = this.event('error', {
      code: 'server_error',
      message: 'the provider stream broke off before its end',
      param: null,
    });
    return Buffer.concat([tail, Buffer.from(broke)]);
  }

  private emit(events: Array<{ event: string; data: unknown }>): Buffer {
    let out = '';
    for (const { event, data } of events) {
      if (this.finished) break;
      out += this.translate(event, (data ?? {}) as Record<string, unknown>);
    }
    return Buffer.from(out);
  }

  private event(type: string, fields: Record<string, unknown>): string {
    return `event: ${type}\ndata: ${JSON.stringify({ type, ...fields, sequence_number: this.seq++ })}\n\n`;
  }

  private response(rest: Record<string, unknown>): Record<string, unknown> {
    return envelope(this.messageId, this.created, this.ctx, this.output, rest);
  }

  private translate(event: string, data: Record<string, unknown>): string {
    const type = data.type ?? event;
    if (type === 'message_start') {
      const message = (data.message ?? {}) as Record<string, unknown>;
      this.messageId = message.id;
      this.usage = { ...((message.usage ?? {}) as AnthropicUsage) };
      return (
        this.event('response.created', { response: this.response({}) }) +
        this.event('response.in_progress', { response: this.response({}) })
      );
    }
    if (type === 'content_block_start')
      return this.startBlock((data.content_block ?? {}) as Record<string, unknown>);
    if (type === 'content_block_delta') return this.delta((data.delta ?? {}) as Record<string, unknown>);
    if (type === 'content_block_stop') return this.stopBlock();
    if (type === 'message_delta') {
      this.stop = (data.delta as { stop_reason?: unknown } | undefined)?.stop_reason ?? this.stop;
      this.usage = { ...this.usage, ...((data.usage ?? {}) as AnthropicUsage) };
      return '';
    }
    if (type === 'message_stop') {
      this.finished = true;
      const status = statusOf(this.stop);
      const done = status.status === 'completed' ? 'response.completed' : 'response.incomplete';
      return this.event(done, { response: this.response({ ...status, usage: responsesUsage(this.usage) }) });
    }
    if (type === 'error') {
      this.finished = true;
      const error = streamErrorOf(data);
      return this.event('error', {
        code: error.code ?? error.type,
        message: error.message,
        param: error.param,
      });
    }
    return '';
  }

  private startBlock(block: Record<string, unknown>): string {
    const index = this.output.length;
    if (block.type === 'text') {
      const item = messageItem(`msg_${idOf(this.messageId)}_${index}`, '', 'in_progress');
      this.open = { index, block, item, acc: '' };
      const ids = { item_id: item.id, output_index: index };
      let out =
        this.event('response.output_item.added', { output_index: index, item }) +
        this.event('response.content_part.added', { ...ids, content_index: 0, part: textPart('') });
      if (typeof block.text === 'string' && block.text.length)
        out += this.delta({ type: 'text_delta', text: block.text });
      return out;
    }
    if (block.type === 'tool_use') {
      const item = callItem(block, '', 'in_progress');
      this.open = { index, block, item, acc: '' };
      return this.event('response.output_item.added', { output_index: index, item });
    }
    return '';
  }

  private delta(delta: Record<string, unknown>): string {
    const open = this.open;
    if (!open) return '';
    const ids = { item_id: open.item.id, output_index: open.index };
    if (delta.type === 'text_delta' && open.item.type === 'message') {
      open.acc += String(delta.text);
      return this.event('response.output_text.delta', {
        ...ids,
        content_index: 0,
        delta: delta.text,
        logprobs: [],
      });
    }
    if (delta.type === 'input_json_delta' && open.item.type === 'function_call' && delta.partial_json) {
      open.acc += String(delta.partial_json);
      return this.event('response.function_call_arguments.delta', { ...ids, delta: delta.partial_json });
    }
    return '';
  }

  private stopBlock(): string {
    const open = this.open;
    if (!open) return '';
    this.open = undefined;
    const ids = { item_id: open.item.id, output_index: open.index };
    if (open.item.type === 'message') {
      const item = messageItem(String(open.item.id), open.acc, 'completed');
      this.output.push(item);
      return (
        this.event('response.output_text.done', { ...ids, content_index: 0, text: open.acc, logprobs: [] }) +
        this.event('response.content_part.done', { ...ids, content_index: 0, part: textPart(open.acc) }) +
        this.event('response.output_item.done', { output_index: open.index, item })
      );
    }
    const args = open.acc || '{}';
    const item = callItem(open.block, args, 'completed');
    this.output.push(item);
    return (
      this.event('response.function_call_arguments.done', {
        ...ids,
        name: open.block.name,
        arguments: args,
      }) + this.event('response.output_item.done', { output_index: open.index, item })
    );
  }
}
