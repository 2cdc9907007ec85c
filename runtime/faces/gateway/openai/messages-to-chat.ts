import { SseReader } from './anthropic-sse.ts';
import { streamErrorOf } from './errors.ts';

/**
 * A Claude answer in the chat-completions format: the whole message as a `chat.completion`, and
 * the Anthropic SSE stream as `chat.completion.chunk` events, translated as the bytes arrive.
 */
export interface AnswerContext {
  /** The model as the client asked for it (echoed back, whatever alias it resolved to). */
  model: string;
  /** Unix seconds for `created` (default: now). Fixed per answer, so every chunk carries the same. */
  created?: number;
}

export interface ChatStreamContext extends AnswerContext {
  /** The client's `stream_options.include_usage`: the usage chunk is sent only when asked. */
  includeUsage?: boolean;
}

/** Anthropic usage, as a message or a `message_delta` reports it (cumulative). */
export interface AnthropicUsage {
  input_tokens?: number;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  output_tokens?: number;
  output_tokens_details?: { thinking_tokens?: number } | null;
}

/** Anthropic stop reasons as chat finish reasons. */
export function finishReason(stop: unknown): string {
  switch (stop) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return 'stop';
  }
}

/**
 * Chat usage: prompt_tokens counts every input token however it was billed (plain input, cache
 * reads and cache writes), cached_tokens the cache reads; reasoning_tokens the thinking tokens.
 */
export function chatUsage(u: AnthropicUsage): Record<string, unknown> {
  const cached = u.cache_read_input_tokens ?? 0;
  const prompt = (u.input_tokens ?? 0) + cached + (u.cache_creation_input_tokens ?? 0);
  const completion = u.output_tokens ?? 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: u.output_tokens_details?.thinking_tokens ?? 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

/** The completion id for an Anthropic message id (`msg_01…` → `chatcmpl-msg_01…`). */
export function chatId(messageId: unknown): string {
  return `chatcmpl-${typeof messageId === 'string' ? messageId : 'unknown'}`;
}

const seconds = (ctx: AnswerContext) => ctx.created ?? Math.floor(Date.now() / 1000);

/**
 * A whole Messages answer as a `chat.completion`: text blocks joined as `content`, `tool_use`
 * blocks as `tool_calls` (arguments as a JSON string), thinking and server-tool blocks left out
 * (their tokens stay in the usage).
 */
export function messageToChat(message: Record<string, unknown>, ctx: AnswerContext): Record<string, unknown> {
  const blocks = (Array.isArray(message.content) ? message.content : []) as Array<Record<string, unknown>>;
  const text = blocks
    .filter((b) => b.type === 'text')
    .map((b) => b.text)
    .join('');
  const calls = blocks
    .filter((b) => b.type === 'tool_use')
    .map((b) => ({
      id: b.id,
      type: 'function',
      function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) },
    }));
  return {
    id: chatId(message.id),
    object: 'chat.completion',
    created: seconds(ctx),
    model: ctx.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: text.length || calls.length === 0 ? text : null,
          refusal: null,
          annotations: [],
          ...(calls.length ? { tool_calls: calls } : {}),
        },
        logprobs: null,
        finish_reason: finishReason(message.stop_reason),
      },
    ],
    usage: chatUsage((message.usage ?? {}) as AnthropicUsage),
    system_fingerprint: null,
  };
}

/**
 * The streamed translation: Anthropic SSE bytes in, in any chunking, chat-completion chunks out
 * (`data: {…}\n\n`): a first chunk with the assistant role, `delta.content` pieces, tool calls
 * (id and name first, then `function.arguments` pieces), a final chunk with the finish reason,
 * the usage chunk (empty `choices`) only when the client asked for it, then `data: [DONE]`. An
 * error event becomes `data: {"error":{…}}`, which the `openai` SDK raises; a stream that breaks
 * off before its end says so the same way. The output depends only on the events, never on how
 * the input was cut.
 */
export class ChatStreamTranslator {
  private readonly reader = new SseReader();
  private readonly created: number;
  private id = chatId(undefined);
  private usage: AnthropicUsage = {};
  private stop: unknown = null;
  private readonly tools = new Map<number, number>();
  private finished = false;

  constructor(private readonly ctx: ChatStreamContext) {
    this.created = seconds(ctx);
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
    const error = {
      message: 'the provider stream broke off before its end',
      type: 'server_error',
      param: null,
      code: null,
    };
    return Buffer.concat([tail, Buffer.from(`data: ${JSON.stringify({ error })}\n\n`)]);
  }

  private emit(events: Array<{ event: string; data: unknown }>): Buffer {
    let out = '';
    for (const { event, data } of events) {
      if (this.finished) break;
      out += this.translate(event, (data ?? {}) as Record<string, unknown>);
    }
    return Buffer.from(out);
  }

  private chunk(delta: Record<string, unknown>, finish: string | null = null): string {
    const body = {
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.ctx.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(this.ctx.includeUsage ? { usage: null } : {}),
    };
    return `data: ${JSON.stringify(body)}\n\n`;
  }

  private translate(event: string, data: Record<string, unknown>): string {
    const type = data.type ?? event;
    if (type === 'message_start') {
      const message = (data.message ?? {}) as Record<string, unknown>;
      this.id = chatId(message.id);
      this.usage = { ...((message.usage ?? {}) as AnthropicUsage) };
      return this.chunk({ role: 'assistant', content: '', refusal: null });
    }
    if (type === 'content_block_start') {
      const block = (data.content_block ?? {}) as Record<string, unknown>;
      if (block.type === 'text' && typeof block.text === 'string' && block.text.length) {
        return this.chunk({ content: block.text });
      }
      if (block.type !== 'tool_use') return '';
      const index = this.tools.size;
      this.tools.set(data.index as number, index);
      const call = { index, id: block.id, type: 'function', function: { name: block.name, arguments: '' } };
      return this.chunk({ tool_calls: [call] });
    }
    if (type === 'content_block_delta') {
      const delta = (data.delta ?? {}) as Record<string, unknown>;
      if (delta.type === 'text_delta') return this.chunk({ content: delta.text });
      const index = this.tools.get(data.index as number);
      if (delta.type !== 'input_json_delta' || index === undefined || !delta.partial_json) return '';
      return this.chunk({ tool_calls: [{ index, function: { arguments: delta.partial_json } }] });
    }
    if (type === 'message_delta') {
      this.stop = (data.delta as { stop_reason?: unknown } | undefined)?.stop_reason ?? this.stop;
      this.usage = { ...this.usage, ...((data.usage ?? {}) as AnthropicUsage) };
      return '';
    }
    if (type === 'message_stop') {
      this.finished = true;
      let out = this.chunk({}, finishReason(this.stop));
      if (this.ctx.includeUsage) {
        const usage = {
          id: this.id,
          object: 'chat.completion.chunk',
          created: this.created,
          model: this.ctx.model,
          system_fingerprint: null,
          choices: [],
          usage: chatUsage(this.usage),
        };
        out += `data: ${JSON.stringify(usage)}\n\n`;
      }
      return `${out}data: [DONE]\n\n`;
    }
    if (type === 'error') {
      this.finished = true;
      return `data: ${JSON.stringify({ error: streamErrorOf(data) })}\n\n`;
    }
    return '';
  }
}
