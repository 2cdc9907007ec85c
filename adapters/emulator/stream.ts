/**
 * Server-sent events for `stream: true`, in the provider's order and shapes:
 *
 * ```text
 * message_start        {message: {..., content: [], stop_reason: null, usage: {input/cache fields, output_tokens: 1}}}
 * content_block_start  {index, content_block: {type:'text', text:''} | {type:'tool_use', id, name, input:{}}
 *                       | {type:'thinking', thinking:'', signature:''} | {type:'server_tool_use', …, input:{}}
 *                       | a whole web_search_tool_result / web_fetch_tool_result}
 * ping                 (after the first content_block_start)
 * content_block_delta  {index, delta: {type:'text_delta', text} | {type:'input_json_delta', partial_json}
 *                       | {type:'thinking_delta', thinking} | {type:'signature_delta', signature}}
 * content_block_stop   {index}
 * message_delta        {delta: {stop_reason, stop_sequence}, usage: {input_tokens, cache_creation_input_tokens,
 *                       cache_read_input_tokens, output_tokens}}   ← cumulative totals, not increments
 * message_stop
 * ```
 *
 * A client that disconnects mid-stream is billed for the output generated so far; a stream the
 * emulator fails on purpose (`stream_error`) ends with `event: error` and is not billed.
 */
import { type ApiUsage, type BlockOut, outTokens, type Reply, type ToolUseOut } from './reply.ts';
import type { ServerToolUseOut } from './server-tools.ts';
import { type ThinkingOut, thinkingTokensOf } from './thinking.ts';
import { TOKEN_COSTS, textTokens } from './tokens.ts';

const TEXT_CHUNK = 24;
const JSON_CHUNK = 32;

interface Event {
  readonly text: string;
  /** Output tokens generated once this event is sent. */
  readonly generated: number;
}

const sse = (type: string, data: unknown): string => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;

function thinkingEvents(b: ThinkingOut, index: number, before: number, out: Event[], first: boolean): void {
  const start = { type: 'thinking', thinking: '', signature: '' };
  out.push({
    text: sse('content_block_start', { type: 'content_block_start', index, content_block: start }),
    generated: before,
  });
  if (first) out.push({ text: sse('ping', { type: 'ping' }), generated: before });
  const total = thinkingTokensOf(b);
  for (let i = 0; i < b.thinking.length; i += TEXT_CHUNK) {
    const delta = { type: 'thinking_delta', thinking: b.thinking.slice(i, i + TEXT_CHUNK) };
    out.push({
      text: sse('content_block_delta', { type: 'content_block_delta', index, delta }),
      generated: before + Math.min(total, textTokens(b.thinking.slice(0, i + TEXT_CHUNK))),
    });
  }
  out.push({
    text: sse('content_block_delta', {
      type: 'content_block_delta',
      index,
      delta: { type: 'signature_delta', signature: b.signature },
    }),
    generated: before + total,
  });
}

function blockEvents(b: BlockOut, index: number, before: number, out: Event[], first: boolean): void {
  if (b.type === 'thinking') {
    thinkingEvents(b, index, before, out, first);
  } else if (b.type === 'web_search_tool_result' || b.type === 'web_fetch_tool_result') {
    // Server tool results arrive whole in their content_block_start.
    out.push({
      text: sse('content_block_start', { type: 'content_block_start', index, content_block: b }),
      generated: before,
    });
    if (first) out.push({ text: sse('ping', { type: 'ping' }), generated: before });
  } else if (b.type === 'text') {
    out.push({
      text: sse('content_block_start', {
        type: 'content_block_start',
        index,
        content_block: { type: 'text', text: '' },
      }),
      generated: before,
    });
    if (first) out.push({ text: sse('ping', { type: 'ping' }), generated: before });
    for (let i = 0; i < b.text.length; i += TEXT_CHUNK) {
      const text = b.text.slice(i, i + TEXT_CHUNK);
      out.push({
        text: sse('content_block_delta', {
          type: 'content_block_delta',
          index,
          delta: { type: 'text_delta', text },
        }),
        generated: before + textTokens(b.text.slice(0, i + TEXT_CHUNK)),
      });
    }
  } else {
    blockUseEvents(b as ToolUseOut | ServerToolUseOut, index, before, out, first);
  }
  out.push({
    text: sse('content_block_stop', { type: 'content_block_stop', index }),
    generated: before + outTokens(b),
  });
}

/** A `tool_use` / `server_tool_use` block: start with `input: {}`, then the input as JSON deltas. */
function blockUseEvents(
  b: ToolUseOut | ServerToolUseOut,
  index: number,
  before: number,
  out: Event[],
  first: boolean,
): void {
  {
    const start = { ...b, input: {} };
    const head = before + TOKEN_COSTS.toolUse + textTokens(b.name);
    out.push({
      text: sse('content_block_start', { type: 'content_block_start', index, content_block: start }),
      generated: head,
    });
    if (first) out.push({ text: sse('ping', { type: 'ping' }), generated: head });
    const json = JSON.stringify(b.input);
    out.push({
      text: sse('content_block_delta', {
        type: 'content_block_delta',
        index,
        delta: { type: 'input_json_delta', partial_json: '' },
      }),
      generated: head,
    });
    for (let i = 0; i < json.length; i += JSON_CHUNK) {
      const partial = json.slice(i, i + JSON_CHUNK);
      out.push({
        text: sse('content_block_delta', {
          type: 'content_block_delta',
          index,
          delta: { type: 'input_json_delta', partial_json: partial },
        }),
        generated: head + textTokens(json.slice(0, i + JSON_CHUNK)),
      });
    }
  }
}

/** Every event of a streamed reply, with the output generated after each. */
export function streamEvents(
  message: Record<string, unknown>,
  reply: Reply,
  usage: ApiUsage,
  tail: Record<string, unknown> = {},
): Event[] {
  const out: Event[] = [];
  const { output_tokens_details: _details, ...rest } = usage;
  const startUsage = { ...rest, output_tokens: 1 };
  out.push({
    text: sse('message_start', {
      type: 'message_start',
      message: { ...message, content: [], stop_reason: null, stop_sequence: null, usage: startUsage },
    }),
    generated: 1,
  });
  let generated = 0;
  reply.content.forEach((b, i) => {
    blockEvents(b, i, generated, out, i === 0);
    generated += outTokens(b);
  });
  if (reply.content.length === 0) out.push({ text: sse('ping', { type: 'ping' }), generated: 1 });
  const deltaUsage = {
    input_tokens: usage.input_tokens,
    cache_creation_input_tokens: usage.cache_creation_input_tokens,
    cache_read_input_tokens: usage.cache_read_input_tokens,
    output_tokens: usage.output_tokens,
    ...(usage.output_tokens_details ? { output_tokens_details: usage.output_tokens_details } : {}),
    ...(usage.server_tool_use ? { server_tool_use: usage.server_tool_use } : {}),
  };
  out.push({
    text: sse('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: reply.stopReason, stop_sequence: reply.stopSequence },
      usage: deltaUsage,
      ...tail,
    }),
    generated: usage.output_tokens,
  });
  out.push({ text: sse('message_stop', { type: 'message_stop' }), generated: usage.output_tokens });
  return out;
}

/**
 * Cuts a stream halfway through its content and ends it with an SSE `error` event, as the API
 * does when it fails after the 200 (e.g. `overloaded_error`). There is no message_delta/stop.
 */
export function failMidStream(events: readonly Event[], errorJson: string): Event[] {
  const end = events.findIndex((e) => e.text.startsWith('event: message_delta'));
  const cut = Math.max(2, Math.floor(end / 2));
  const last = events[cut - 1]?.generated ?? 1;
  return [...events.slice(0, cut), { text: `event: error\ndata: ${errorJson}\n\n`, generated: last }];
}

/**
 * A paced SSE body: `delayMs` between events. `onEnd(outputTokens, aborted)` is called exactly
 * once — at `message_stop`, or when the client goes away with the output generated so far.
 */
export function pacedStream(
  events: readonly Event[],
  delayMs: number,
  signal: AbortSignal | undefined,
  onEnd: (outputTokens: number, aborted: boolean) => void,
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let generated = 1;
  let done = false;
  const finish = (aborted: boolean) => {
    if (done) return;
    done = true;
    onEnd(Math.max(1, generated), aborted);
  };
  signal?.addEventListener('abort', () => finish(true), { once: true });
  return new ReadableStream<Uint8Array>({
    async start(controller) {
      for (const ev of events) {
        if (done) return;
        controller.enqueue(encoder.encode(ev.text));
        generated = Math.max(generated, ev.generated);
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      }
      if (done) return;
      finish(false);
      controller.close();
    },
    cancel() {
      finish(true);
    },
  });
}
