/**
 * `POST /openai/v1/chat/completions`: JSON, or SSE chunks (`data: {…}\n\n` … `data: [DONE]`).
 * With `stream_options.include_usage` every chunk carries `usage: null` and one more chunk with
 * `choices: []` and the usage comes before `[DONE]`; without it a stream reports no usage at all
 * (which is why the OpenAI adapter asks for it). `n` answers share one prompt, billed once.
 */
import type { EmulatorState } from '../http.ts';
import { newId } from '../ids.ts';
import type { OpenAICacheUsage } from './cache.ts';
import { type Answer, accountPrompt, answer, bill, outputCap, prepare, streamFlags } from './call.ts';
import { authenticateOpenAI, badParam, okHeaders, openaiError, readBody, requestIdOf } from './http.ts';
import type { OpenAIModel } from './models.ts';
import { chatPrompt } from './prompt.ts';

/** The chat completions `usage` object. */
export function chatUsage(
  model: OpenAIModel,
  cache: OpenAICacheUsage,
  completion: number,
  reasoning: number,
) {
  const writes = cache.cacheWrite30m + cache.cacheWrite12h;
  const prompt = cache.input + cache.cacheRead + writes;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: {
      cached_tokens: cache.cacheRead,
      audio_tokens: 0,
      ...(model.cacheWrites ? { cache_write_tokens: writes } : {}),
    },
    completion_tokens_details: {
      reasoning_tokens: reasoning,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

const finishOf = (a: Answer) => (a.truncated ? 'length' : a.toolCalls.length ? 'tool_calls' : 'stop');

function message(a: Answer) {
  return {
    role: 'assistant',
    content: a.toolCalls.length && !a.text ? null : a.text,
    refusal: null,
    annotations: [],
    ...(a.toolCalls.length
      ? {
          tool_calls: a.toolCalls.map((t) => ({
            id: t.id,
            type: 'function',
            function: { name: t.name, arguments: t.arguments },
          })),
        }
      : {}),
  };
}

/** Splits text into stream deltas of about 16 characters (words kept whole). */
export function pieces(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const w of text.split(/(?<=\s)/)) {
    cur += w;
    if (cur.length >= 16) {
      out.push(cur);
      cur = '';
    }
  }
  if (cur) out.push(cur);
  return out;
}

function chunks(head: Record<string, unknown>, answers: Answer[], usage: unknown): string[] {
  const out: string[] = [];
  const tail = usage === undefined ? {} : { usage: null };
  const chunk = (index: number, delta: unknown, finish: string | null = null) =>
    out.push(
      `data: ${JSON.stringify({ ...head, choices: [{ index, delta, logprobs: null, finish_reason: finish }], ...tail })}\n\n`,
    );
  answers.forEach((a, i) => {
    chunk(i, { role: 'assistant', content: '', refusal: null });
    for (const p of pieces(a.text)) chunk(i, { content: p });
    a.toolCalls.forEach((t, k) => {
      chunk(i, {
        tool_calls: [{ index: k, id: t.id, type: 'function', function: { name: t.name, arguments: '' } }],
      });
      for (const p of pieces(t.arguments))
        chunk(i, { tool_calls: [{ index: k, function: { arguments: p } }] });
    });
    chunk(i, {}, finishOf(a));
  });
  if (usage !== undefined) out.push(`data: ${JSON.stringify({ ...head, choices: [], usage })}\n\n`);
  out.push('data: [DONE]\n\n');
  return out;
}

function choicesOf(body: Record<string, unknown>): number {
  const n = body.n ?? 1;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 128) {
    throw badParam(
      'n',
      `Invalid 'n': expected an integer between 1 and 128, got ${JSON.stringify(n)}.`,
      'invalid_value',
    );
  }
  return n;
}

/** `POST /openai/v1/chat/completions`. */
export async function chatCompletions(raw: Request, state: EmulatorState): Promise<Response> {
  const requestId = requestIdOf();
  try {
    authenticateOpenAI(raw.headers, state);
    const body = await readBody(raw);
    const { stream, includeUsage } = streamFlags(body);
    const n = choicesOf(body);
    const call = await prepare(raw, body, state, chatPrompt);
    const cap = outputCap(body, call.model, 'chat');
    const answers = Array.from({ length: n }, (_, i) => answer(call, cap, i));
    const cache = accountPrompt(call, state, body);
    const completion = answers.reduce((s, a) => s + a.outputTokens, 0);
    const usage = chatUsage(
      call.model,
      cache,
      completion,
      answers.reduce((s, a) => s + a.reasoningTokens, 0),
    );
    const id = newId('chatcmpl-');
    const head = {
      id,
      object: stream ? 'chat.completion.chunk' : 'chat.completion',
      created: Math.floor(state.now() / 1000),
      model: call.model.id,
      service_tier: 'default',
      system_fingerprint: null,
    };
    bill(state, call, { id, requestId, raw }, cache, completion, { stream });
    if (!stream) {
      const choices = answers.map((a, index) => ({
        index,
        message: message(a),
        logprobs: null,
        finish_reason: finishOf(a),
      }));
      return new Response(JSON.stringify({ ...head, choices, usage }), {
        headers: okHeaders(requestId, 'application/json'),
      });
    }
    const text = chunks(head, answers, includeUsage ? usage : undefined).join('');
    return new Response(text, {
      headers: { ...okHeaders(requestId, 'text/event-stream; charset=utf-8'), 'cache-control': 'no-cache' },
    });
  } catch (e) {
    return openaiError(e, requestId);
  }
}
