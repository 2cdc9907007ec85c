/**
 * One Messages API call, in the provider's order: key, injected fault, body, model (404 when
 * unknown or retired), per-model rules (features.ts), limits, cache breakpoints, script, latency,
 * errors, reply, cache accounting, billing, response (JSON or SSE). `prepareCall` and `runCall`
 * are shared with the Message Batches API (batches.ts), which runs the same call at batch rates.
 */
import type { BilledBy } from './billing.ts';
import { breakpointsOf } from './cache.ts';
import { lifecycleOf, type ModelInfo, reached, resolveModel } from './catalog.ts';
import { ApiError, errorBody, errorForStatus, invalid } from './errors.ts';
import { type Served, serveOptions } from './features.ts';
import {
  authenticate,
  type EmulatorState,
  errorResponse,
  headersFor,
  JSON_TYPE,
  type PendingFault,
  readJson,
} from './http.ts';
import { newId } from './ids.ts';
import { CONTEXT_1M_BETA, CONTEXT_1M_BETA_RETIRED } from './models.ts';
import { type ApiUsage, apiUsage, buildReply, mergeSpecs, type Reply, scriptView } from './reply.ts';
import { type MessagesRequest, validateRequest } from './request.ts';
import type { ReplySpec } from './script.ts';
import { hasServerTools } from './server-tools.ts';
import { failMidStream, pacedStream, streamEvents } from './stream.ts';
import { countSegments, linearise, type Segment, TOKEN_COSTS } from './tokens.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The catalogue entry for a model id or alias (retired ones included), or a 404 like the API's. */
export function modelOf(name: string): ModelInfo {
  const model = resolveModel(name);
  if (!model) throw new ApiError(404, 'not_found_error', `model: ${name}`);
  return model;
}

/** A model inference may use at `now`: unknown and retired models are a 404, as on the API. */
export function servedModel(name: string, now: number, serveRetired = false): ModelInfo {
  const model = modelOf(name);
  if (!serveRetired && lifecycleOf(model, now) === 'retired') {
    throw new ApiError(404, 'not_found_error', `model: ${name}`);
  }
  return model;
}

function checkContext(model: ModelInfo, total: number, h: Headers, now: number): void {
  const beta =
    model.betaContextWindow &&
    !reached(CONTEXT_1M_BETA_RETIRED, now) &&
    h.get('anthropic-beta')?.includes(CONTEXT_1M_BETA);
  const limit = beta ? (model.betaContextWindow as number) : model.contextWindow;
  if (total > limit) throw invalid(`prompt is too long: ${total} tokens > ${limit} maximum`);
}

function takeFault(state: EmulatorState): PendingFault | undefined {
  const f = state.faults[0];
  if (!f) return undefined;
  if (--f.count <= 0) state.faults.shift();
  return f;
}

/** A validated call, ready to run. */
export interface Call {
  readonly req: MessagesRequest;
  readonly model: ModelInfo;
  readonly served: Served;
  readonly segments: Segment[];
  readonly bps: ReturnType<typeof breakpointsOf>;
  readonly spec: ReplySpec | undefined;
  readonly ctx: ReturnType<typeof scriptView>['ctx'];
}

/** Validates a body and matches the script; throws the API's 400/404. */
export function prepareCall(
  body: unknown,
  h: Headers,
  state: EmulatorState,
  mode: 'messages' | 'batch',
): Call {
  const req = validateRequest(body, 'messages');
  const now = state.now();
  const model = servedModel(req.model, now, state.serveRetiredModels);
  const served = serveOptions(req, model, h, now, mode);
  const segments = linearise(req);
  const bps = breakpointsOf(segments, req.cache_control);
  checkContext(model, countSegments(segments), h, now);
  const { ctx, directives } = scriptView(req, model.id);
  const spec = mergeSpecs(state.script.match(ctx), directives);
  return { req, model, served, segments, bps, spec, ctx };
}

/** A call's outcome: the reply, its usage, the message body, and how to bill it. */
export interface Ran {
  readonly reply: Reply;
  readonly usage: ApiUsage;
  readonly message: Record<string, unknown>;
  /** Billing input for `output` tokens generated (streams bill what was sent). */
  readonly billing: (output: number, aborted: boolean) => Parameters<EmulatorState['billing']['add']>[0];
}

/** Runs a prepared call: reply, cache accounting, usage and the message body. */
export function runCall(
  call: Call,
  state: EmulatorState,
  ids: { requestId: string; apiKey: string; clientRequestId?: string },
): Ran {
  const { req, model, served, segments, bps, spec, ctx } = call;
  const reply = buildReply(req, spec, ctx, served.thinking ? { thinking: served.thinking } : {});
  const salt =
    bps.length > 0 ? `${JSON.stringify(req.tool_choice ?? null)}${JSON.stringify(req.thinking ?? null)}` : '';
  const account = state.cache.account(
    model.id,
    model.minCacheableTokens,
    segments,
    bps,
    TOKEN_COSTS.request,
    salt,
  );
  const cached = { ...account, input: account.input + reply.extraInputTokens };
  const usage = apiUsage(cached, reply.outputTokens, {
    serviceTier: served.serviceTier,
    inferenceGeo: served.inferenceGeo,
    speed: served.speed,
    thinkingTokens: reply.thinkingTokens,
    ...(hasServerTools(req.tools)
      ? {
          serverToolUse: {
            web_search_requests: reply.webSearchRequests,
            web_fetch_requests: reply.webFetchRequests,
          },
        }
      : {}),
  });
  const id = newId('msg_01');
  const message: Record<string, unknown> = {
    id,
    type: 'message',
    role: 'assistant',
    model: model.id,
    content: reply.content,
    stop_reason: reply.stopReason,
    stop_sequence: reply.stopSequence,
    usage,
    // Context editing (beta schema, SDK 1.13 `BetaMessage.context_management`): the response
    // reports `{applied_edits: [...]}`; the emulator never needs to clear anything, so it is empty.
    ...(served.contextManagement ? { context_management: { applied_edits: [] } } : {}),
  };
  const billing = (output: number, aborted: boolean) => ({
    id,
    requestId: ids.requestId,
    clientRequestId: ids.clientRequestId,
    at: state.now(),
    model,
    apiKey: ids.apiKey,
    usage: { ...cached, output },
    stream: req.stream === true,
    aborted,
    speed: served.speed,
    inferenceGeo: served.inferenceGeo,
    serviceTier: served.serviceTier,
    webSearchRequests: reply.webSearchRequests,
    webFetchRequests: reply.webFetchRequests,
  });
  return { reply, usage, message, billing };
}

/** `POST /v1/messages`. */
export async function messages(raw: Request, state: EmulatorState): Promise<Response> {
  const requestId = newId('req_011C');
  try {
    const apiKey = authenticate(raw.headers, state);
    return await serveMessages(await readJson(raw), raw, state, { requestId, apiKey });
  } catch (e) {
    return errorResponse(e, requestId);
  }
}

/** Who a call is billed to: the emulated provider whose face it came in through, and the key. */
export interface Via {
  requestId: string;
  /** The label of the caller's credential (API key, AWS access key, token). */
  apiKey: string;
  /** Default `anthropic`. */
  provider?: BilledBy;
  /** Served on a cloud's regional endpoint (1.1×). */
  regional?: boolean;
}

/**
 * A Messages call already authenticated: `body` is an Anthropic Messages request (with `model`;
 * `stream` decides JSON or SSE). Answers in Anthropic's wire format; the Bedrock and Vertex faces
 * call this and re-frame the answer. Throws nothing: errors are Anthropic error responses.
 */
export async function serveMessages(
  body: unknown,
  raw: Request,
  state: EmulatorState,
  via: Via,
): Promise<Response> {
  const { requestId, apiKey } = via;
  try {
    const fault = takeFault(state);
    const call = prepareCall(body, raw.headers, state, 'messages');
    const { spec, req } = call;
    const latency = state.latencyMs + (fault?.latencyMs ?? 0) + (spec?.latencyMs ?? 0);
    if (latency > 0) await sleep(latency);
    if (fault?.status) throw errorForStatus(fault.status, fault.message);
    if (spec?.error) throw errorForStatus(spec.error, spec.errorMessage);
    const clientRequestId = raw.headers.get('x-chokepoint-request-id') ?? undefined;
    const ran = runCall(call, state, { requestId, apiKey, clientRequestId });
    const extra = { provider: via.provider ?? 'anthropic', ...(via.regional ? { regional: true } : {}) };
    const bill = (output: number, aborted: boolean) =>
      void state.billing.add({ ...ran.billing(output, aborted), ...extra });
    if (!req.stream) {
      bill(ran.reply.outputTokens, false);
      return new Response(JSON.stringify(ran.message), {
        status: 200,
        headers: headersFor(requestId, state, JSON_TYPE),
      });
    }
    const {
      content: _c,
      stop_reason: _s,
      stop_sequence: _q,
      usage: _u,
      context_management,
      ...head
    } = ran.message;
    const tail = context_management ? { context_management } : {};
    let events = streamEvents(head, ran.reply, ran.usage, tail);
    let billed: (output: number, aborted: boolean) => void = bill;
    if (spec?.streamError) {
      events = failMidStream(events, errorBody(errorForStatus(spec.streamError), requestId));
      billed = () => undefined;
    }
    const headers = {
      ...headersFor(requestId, state, 'text/event-stream; charset=utf-8'),
      'cache-control': 'no-cache',
    };
    const delay = spec?.deltaDelayMs ?? 0;
    if (delay === 0) {
      billed(ran.reply.outputTokens, false);
      return new Response(events.map((e) => e.text).join(''), { status: 200, headers });
    }
    return new Response(pacedStream(events, delay, raw.signal, billed), { status: 200, headers });
  } catch (e) {
    return errorResponse(e, requestId);
  }
}

/** `POST /v1/messages/count_tokens`: `{ input_tokens }`, the same count usage adds up to. */
export async function countTokensCall(raw: Request, state: EmulatorState): Promise<{ input_tokens: number }> {
  const req = validateRequest(await readJson(raw), 'count_tokens');
  servedModel(req.model, state.now(), state.serveRetiredModels);
  const segments = linearise(req);
  breakpointsOf(segments, req.cache_control);
  return { input_tokens: countSegments(segments) };
}
