/**
 * One OpenAI model call, shared by chat completions and responses, in the provider's order: key,
 * injected fault, body, model (404), prompt, script and directives, latency, scripted error,
 * reply, cache accounting, and how to bill it (provider `openai`, the emulator's OpenAI prices).
 */
import type { EmulatorState } from '../http.ts';
import { newId } from '../ids.ts';
import { mergeSpecs, truncateToTokens } from '../reply.ts';
import type { JsonSchema } from '../request.ts';
import { parseDirectives, type ReplySpec, stripDirectives } from '../script.ts';
import { canonicalJson, TOKEN_COSTS, textTokens } from '../tokens.ts';
import { inputFromTurns } from '../tool-input.ts';
import { type OpenAICacheUsage, OpenAIPromptCache } from './cache.ts';
import {
  authenticateOpenAI,
  badParam,
  errorForStatus,
  OpenAIError,
  takeFault,
  unknownModel,
} from './http.ts';
import { type OpenAIModel, openaiModel } from './models.ts';
import { type Prompt, promptTokens } from './prompt.ts';

const caches = new WeakMap<EmulatorState, OpenAIPromptCache>();

/** The OpenAI face's prompt cache of an emulator (apart from the Anthropic one: other rules). */
export function openaiCacheOf(state: EmulatorState): OpenAIPromptCache {
  let c = caches.get(state);
  if (!c) {
    c = new OpenAIPromptCache(state.now);
    caches.set(state, c);
  }
  return c;
}

export interface ToolCallOut {
  id: string;
  name: string;
  arguments: string;
}

/** One generated answer (a chat `choice`, or a response's output). */
export interface Answer {
  text: string;
  toolCalls: ToolCallOut[];
  reasoningTokens: number;
  /** Visible output + tool calls + reasoning: what is billed as output. */
  outputTokens: number;
  truncated: boolean;
}

export interface Call {
  readonly model: OpenAIModel;
  readonly prompt: Prompt;
  readonly spec: ReplySpec | undefined;
  readonly apiKey: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const FILLER = ' The emulator pads this reply deterministically to the requested length.';

function sized(base: string, tokens: number): string {
  if (tokens <= 0) return '';
  let text = truncateToTokens(base, tokens);
  const want = tokens * 4;
  let bytes = Buffer.byteLength(text, 'utf8');
  while (bytes < want) {
    const add = FILLER.slice(0, want - bytes);
    text += add;
    bytes += add.length;
  }
  return text;
}

/** Authenticates, takes a fault, resolves the model and reads the prompt and script. */
export async function prepare(
  raw: Request,
  body: Record<string, unknown>,
  state: EmulatorState,
  read: (b: Record<string, unknown>) => Prompt,
  kind: 'chat' | 'embedding' = 'chat',
): Promise<Call> {
  const apiKey = authenticateOpenAI(raw.headers, state);
  const fault = takeFault(state);
  if (typeof body.model !== 'string' || !body.model) {
    throw badParam('model', 'you must provide a model parameter', 'missing_required_parameter');
  }
  const model = openaiModel(body.model);
  if (!model || model.kind !== kind) throw unknownModel(body.model);
  const prompt = read(body);
  const ctx = { ...prompt.ctx, model: body.model, modelId: model.id };
  const spec = mergeSpecs(state.script.match(ctx), parseDirectives(prompt.ctx.lastUserText));
  const latency = state.latencyMs + (fault?.latencyMs ?? 0) + (spec?.latencyMs ?? 0);
  if (latency > 0) await sleep(latency);
  if (fault?.status) throw errorForStatus(fault.status, fault.message);
  if (spec?.error) throw errorForStatus(spec.error, spec.errorMessage);
  return { model, prompt, spec, apiKey };
}

/** The output cap of a request (`max_completion_tokens`, the legacy `max_tokens`, `max_output_tokens`). */
export function outputCap(
  body: Record<string, unknown>,
  model: OpenAIModel,
  api: 'chat' | 'responses',
): number {
  const field = api === 'responses' ? 'max_output_tokens' : 'max_completion_tokens';
  if (api === 'chat' && body.max_tokens !== undefined && body.max_tokens !== null) {
    if (model.reasoning) {
      throw badParam(
        'max_tokens',
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
        'unsupported_parameter',
      );
    }
    if (body.max_completion_tokens !== undefined && body.max_completion_tokens !== null) {
      throw badParam('max_tokens', "Use only one of 'max_tokens' and 'max_completion_tokens'.");
    }
  }
  const v = body[field] ?? (api === 'chat' ? body.max_tokens : undefined);
  const name = body[field] !== undefined && body[field] !== null ? field : 'max_tokens';
  if (v === undefined || v === null) return model.maxOutputTokens;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw badParam(
      name,
      `Invalid '${name}': integer below minimum value. Expected a value >= 1, but got ${String(v)} instead.`,
      'integer_below_min_value',
    );
  }
  if (v > model.maxOutputTokens) {
    throw badParam(
      name,
      `${name} is too large: ${v}. This model supports at most ${model.maxOutputTokens} completion tokens.`,
      'invalid_value',
    );
  }
  return v;
}

/** The answer for a call: script > forced tool > default text; cut at `cap` tokens. */
export function answer(call: Call, cap: number, choice = 0): Answer {
  const { spec, prompt } = call;
  const calls =
    spec?.toolUse?.map((t) => ({ name: t.name, input: t.input })) ??
    (prompt.forced ? [{ name: prompt.forced, input: undefined }] : []);
  const toolCalls = calls.map((t) => {
    const schema = prompt.functions.find((f) => f.name === t.name)?.parameters as JsonSchema | undefined;
    return {
      id: newId('call_'),
      name: t.name,
      arguments: canonicalJson(t.input ?? inputFromTurns(schema, prompt.turns)),
    };
  });
  const quoted = stripDirectives(prompt.ctx.lastUserText)
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 12)
    .join(' ');
  const lead = prompt.ctx.afterToolResult ? 'Emulated reply after tool result' : 'Emulated reply';
  let text = spec?.text ?? (toolCalls.length ? '' : `${lead}: ${quoted}${choice ? ` (${choice + 1})` : ''}`);
  if (spec?.outputTokens !== undefined) text = sized(text, spec.outputTokens);
  let reasoningTokens = call.model.reasoning ? (spec?.thinkingTokens ?? 0) : 0;
  const callTokens = toolCalls.reduce(
    (n, t) => n + TOKEN_COSTS.toolUse + textTokens(t.name) + textTokens(t.arguments),
    0,
  );
  let truncated = false;
  if (reasoningTokens + textTokens(text) + callTokens > cap) {
    truncated = true;
    reasoningTokens = Math.min(reasoningTokens, cap);
    text = truncateToTokens(text, Math.max(0, cap - reasoningTokens));
    toolCalls.length = 0;
  }
  const outputTokens = reasoningTokens + textTokens(text) + (truncated ? 0 : callTokens);
  return { text, toolCalls, reasoningTokens, outputTokens, truncated };
}

/** Cache accounting of the prompt (once per call, whatever `n`). */
export function accountPrompt(
  call: Call,
  state: EmulatorState,
  body: Record<string, unknown>,
): OpenAICacheUsage {
  const opts = body.prompt_cache_options as { ttl?: unknown } | undefined;
  const ttl = opts?.ttl === '12h' ? '12h' : '30m';
  if (opts?.ttl !== undefined && opts.ttl !== '30m' && opts.ttl !== '12h') {
    throw badParam('prompt_cache_options.ttl', "Invalid value: expected '30m' or '12h'.", 'invalid_value');
  }
  return openaiCacheOf(state).account(call.model, call.prompt.units, TOKEN_COSTS.request, ttl);
}

/** Bills one call on the `openai` bill. */
export function bill(
  state: EmulatorState,
  call: Call,
  ids: { id: string; requestId: string; raw: Request },
  cache: OpenAICacheUsage,
  output: number,
  extra: { stream: boolean; webSearches?: number },
): void {
  state.billing.add({
    id: ids.id,
    provider: 'openai',
    requestId: ids.requestId,
    clientRequestId: ids.raw.headers.get('x-chokepoint-request-id') ?? undefined,
    at: state.now(),
    model: call.model,
    apiKey: call.apiKey,
    usage: {
      input: cache.input,
      cacheWrite5m: cache.cacheWrite30m,
      cacheWrite1h: cache.cacheWrite12h,
      cacheRead: cache.cacheRead,
      output,
    },
    stream: extra.stream,
    aborted: false,
    webSearchRequests: extra.webSearches ?? 0,
  });
}

/** Validates `stream` / `stream_options` like the API. */
export function streamFlags(body: Record<string, unknown>): { stream: boolean; includeUsage: boolean } {
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') {
    throw badParam('stream', "Invalid type for 'stream': expected a boolean.");
  }
  const stream = body.stream === true;
  const so = body.stream_options;
  if (so !== undefined && so !== null && !stream) {
    throw badParam(
      'stream_options',
      "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
      'invalid_value',
    );
  }
  return {
    stream,
    includeUsage: stream && (so as { include_usage?: unknown } | undefined)?.include_usage === true,
  };
}

export { OpenAIError };

/** Prompt tokens of a call (framing included). */
export const promptSize = (call: Call) => promptTokens(call.prompt.units);
