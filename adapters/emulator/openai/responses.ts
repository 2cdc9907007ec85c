/**
 * `POST /openai/v1/responses`: a `response` object, or typed SSE events (`event: <type>` +
 * `data: {type, sequence_number, …}`) from `response.created` to `response.completed`, whose
 * `response.usage` is the bill (no `[DONE]` on this API). Output items: `reasoning` (when
 * reasoning tokens were spent), `web_search_call` (billed per call when a `web_search` tool is
 * declared and the script asks for searches), `function_call`, and the `message`.
 */
import type { EmulatorState } from '../http.ts';
import { newId } from '../ids.ts';
import type { OpenAICacheUsage } from './cache.ts';
import { type Answer, accountPrompt, answer, bill, outputCap, prepare, streamFlags } from './call.ts';
import { pieces } from './chat.ts';
import { authenticateOpenAI, okHeaders, openaiError, readBody, requestIdOf } from './http.ts';
import type { OpenAIModel } from './models.ts';
import { responsesPrompt } from './prompt.ts';

type Item = Record<string, unknown> & { type: string; id: string };

/** The responses `usage` object. */
export function responsesUsage(
  model: OpenAIModel,
  cache: OpenAICacheUsage,
  output: number,
  reasoning: number,
) {
  const writes = cache.cacheWrite30m + cache.cacheWrite12h;
  const input = cache.input + cache.cacheRead + writes;
  return {
    input_tokens: input,
    input_tokens_details: {
      cached_tokens: cache.cacheRead,
      ...(model.cacheWrites
        ? {
            cache_write_tokens: writes,
            cache_write_tokens_details: {
              ttl_30m_tokens: cache.cacheWrite30m,
              ttl_12h_tokens: cache.cacheWrite12h,
            },
          }
        : {}),
    },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: reasoning },
    total_tokens: input + output,
  };
}

function itemsOf(a: Answer, searches: number, query: string): Item[] {
  const items: Item[] = [];
  if (a.reasoningTokens > 0) items.push({ type: 'reasoning', id: newId('rs_'), summary: [] });
  for (let i = 0; i < searches; i++) {
    items.push({
      type: 'web_search_call',
      id: newId('ws_'),
      status: 'completed',
      action: { type: 'search', query },
    });
  }
  for (const t of a.toolCalls) {
    items.push({
      type: 'function_call',
      id: newId('fc_'),
      status: 'completed',
      call_id: t.id,
      name: t.name,
      arguments: t.arguments,
    });
  }
  if (a.text || !a.toolCalls.length) {
    items.push({
      type: 'message',
      id: newId('msg_'),
      status: a.truncated ? 'incomplete' : 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text: a.text, annotations: [], logprobs: [] }],
    });
  }
  return items;
}

/** Streams one output item: added, its deltas, done. */
function itemEvents(
  item: Item,
  index: number,
  emit: (type: string, data: Record<string, unknown>) => void,
): void {
  const start =
    item.type === 'message'
      ? { ...item, status: 'in_progress', content: [] }
      : item.type === 'function_call'
        ? { ...item, status: 'in_progress', arguments: '' }
        : { ...item, ...(item.status ? { status: 'in_progress' } : {}) };
  emit('response.output_item.added', { output_index: index, item: start });
  const at = { item_id: item.id, output_index: index };
  if (item.type === 'message') {
    const text = (item.content as Array<{ text: string }>)[0]!.text;
    const part = { type: 'output_text', text: '', annotations: [], logprobs: [] };
    emit('response.content_part.added', { ...at, content_index: 0, part });
    for (const d of pieces(text))
      emit('response.output_text.delta', { ...at, content_index: 0, delta: d, logprobs: [] });
    emit('response.output_text.done', { ...at, content_index: 0, text, logprobs: [] });
    emit('response.content_part.done', { ...at, content_index: 0, part: { ...part, text } });
  } else if (item.type === 'function_call') {
    const args = item.arguments as string;
    for (const d of pieces(args)) emit('response.function_call_arguments.delta', { ...at, delta: d });
    emit('response.function_call_arguments.done', { ...at, arguments: args });
  } else if (item.type === 'web_search_call') {
    emit('response.web_search_call.in_progress', at);
    emit('response.web_search_call.searching', at);
    emit('response.web_search_call.completed', at);
  }
  emit('response.output_item.done', { output_index: index, item });
}

function sse(response: Record<string, unknown>, items: Item[]): string {
  const out: string[] = [];
  let seq = 0;
  const emit = (type: string, data: Record<string, unknown>) =>
    out.push(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`);
  const pending = { ...response, status: 'in_progress', output: [], usage: null, incomplete_details: null };
  emit('response.created', { response: pending });
  emit('response.in_progress', { response: pending });
  for (const [i, item] of items.entries()) itemEvents(item, i, emit);
  emit(response.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response });
  return out.join('');
}

/** `POST /openai/v1/responses`. */
export async function responsesCall(raw: Request, state: EmulatorState): Promise<Response> {
  const requestId = requestIdOf();
  try {
    authenticateOpenAI(raw.headers, state);
    const body = await readBody(raw);
    const { stream } = streamFlags({ ...body, stream_options: undefined });
    const call = await prepare(raw, body, state, responsesPrompt);
    const cap = outputCap(body, call.model, 'responses');
    const a = answer(call, cap);
    const searches = call.prompt.builtins.has('web_search') ? (call.spec?.webSearches ?? 0) : 0;
    const cache = accountPrompt(call, state, body);
    const usage = responsesUsage(call.model, cache, a.outputTokens, a.reasoningTokens);
    const id = newId('resp_');
    const items = itemsOf(a, searches, call.prompt.ctx.lastUserText.slice(0, 80));
    const response = {
      id,
      object: 'response',
      created_at: Math.floor(state.now() / 1000),
      status: a.truncated ? 'incomplete' : 'completed',
      background: false,
      error: null,
      incomplete_details: a.truncated ? { reason: 'max_output_tokens' } : null,
      instructions: body.instructions ?? null,
      max_output_tokens: body.max_output_tokens ?? null,
      model: call.model.id,
      output: items,
      parallel_tool_calls: true,
      previous_response_id: body.previous_response_id ?? null,
      reasoning: { effort: null, summary: null },
      service_tier: 'default',
      store: body.store ?? true,
      temperature: 1,
      text: { format: { type: 'text' } },
      tool_choice: body.tool_choice ?? 'auto',
      tools: body.tools ?? [],
      top_p: 1,
      truncation: 'disabled',
      usage,
      user: null,
      metadata: body.metadata ?? {},
    };
    bill(state, call, { id, requestId, raw }, cache, a.outputTokens, { stream, webSearches: searches });
    if (!stream)
      return new Response(JSON.stringify(response), { headers: okHeaders(requestId, 'application/json') });
    return new Response(sse(response, items), {
      headers: { ...okHeaders(requestId, 'text/event-stream; charset=utf-8'), 'cache-control': 'no-cache' },
    });
  } catch (e) {
    return openaiError(e, requestId);
  }
}
