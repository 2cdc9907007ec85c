/**
 * One Messages API call, in the provider's order: key, injected fault, body, model, limits,
 * cache breakpoints, script, latency, errors, reply, cache accounting, billing, response
 * (JSON or SSE).
 */
import { breakpointsOf } from './cache.ts';
import { CONTEXT_1M_BETA, type ModelInfo, resolveModel } from './catalog.ts';
import { ApiError, errorBody, errorForStatus, invalid } from './errors.ts';
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
import { apiUsage, buildReply, mergeSpecs, scriptView } from './reply.ts';
import { type MessagesRequest, validateRequest } from './request.ts';
import { failMidStream, pacedStream, streamEvents } from './stream.ts';
import { countSegments, linearise, TOKEN_COSTS } from './tokens.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The catalogue entry for a model id or alias, or a 404 like the API's. */
export function modelOf(name: string): ModelInfo {
  const model = resolveModel(name);
  if (!model) throw new ApiError(404, 'not_found_error', `model: ${name}`);
  return model;
}

function checkContext(model: ModelInfo, total: number, h: Headers): void {
  const beta = model.betaContextWindow && h.get('anthropic-beta')?.includes(CONTEXT_1M_BETA);
  const limit = beta ? (model.betaContextWindow as number) : model.contextWindow;
  if (total > limit) throw invalid(`prompt is too long: ${total} tokens > ${limit} maximum`);
}

function takeFault(state: EmulatorState): PendingFault | undefined {
  const f = state.faults[0];
  if (!f) return undefined;
  if (--f.count <= 0) state.faults.shift();
  return f;
}

/** `POST /v1/messages`. */
export async function messages(raw: Request, state: EmulatorState): Promise<Response> {
  const requestId = newId('req_011C');
  try {
    const apiKey = authenticate(raw.headers, state);
    const fault = takeFault(state);
    const req: MessagesRequest = validateRequest(await readJson(raw), 'messages');
    const model = modelOf(req.model);
    if (req.max_tokens > model.maxOutputTokens) {
      throw invalid(
        `max_tokens: ${req.max_tokens} > ${model.maxOutputTokens}, which is the maximum allowed number of output tokens for ${model.id}`,
      );
    }
    const segments = linearise(req);
    const bps = breakpointsOf(segments, req.cache_control);
    checkContext(model, countSegments(segments), raw.headers);
    const { ctx, directives } = scriptView(req, model.id);
    const spec = mergeSpecs(state.script.match(ctx), directives);
    const latency = state.latencyMs + (fault?.latencyMs ?? 0) + (spec?.latencyMs ?? 0);
    if (latency > 0) await sleep(latency);
    if (fault?.status) throw errorForStatus(fault.status, fault.message);
    if (spec?.error) throw errorForStatus(spec.error, spec.errorMessage);
    const reply = buildReply(req, spec, ctx);
    const salt =
      bps.length > 0
        ? `${JSON.stringify(req.tool_choice ?? null)}${JSON.stringify(req.thinking ?? null)}`
        : '';
    const cached = state.cache.account(
      model.id,
      model.minCacheableTokens,
      segments,
      bps,
      TOKEN_COSTS.request,
      salt,
    );
    const id = newId('msg_01');
    const usage = apiUsage(cached, reply.outputTokens);
    const bill = (output: number, aborted: boolean) =>
      state.billing.add({
        id,
        requestId,
        clientRequestId: raw.headers.get('x-chokepoint-request-id') ?? undefined,
        at: state.now(),
        model,
        apiKey,
        usage: { ...cached, output },
        stream: req.stream === true,
        aborted,
      });
    const message = { id, type: 'message', role: 'assistant', model: model.id };
    if (!req.stream) {
      bill(reply.outputTokens, false);
      const body = {
        ...message,
        content: reply.content,
        stop_reason: reply.stopReason,
        stop_sequence: reply.stopSequence,
        usage,
      };
      return new Response(JSON.stringify(body), {
        status: 200,
        headers: headersFor(requestId, state, JSON_TYPE),
      });
    }
    let events = streamEvents(message, reply, usage);
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
      billed(reply.outputTokens, false);
      return new Response(events.map((e) => e.text).join(''), { status: 200, headers });
    }
    return new Response(pacedStream(events, delay, raw.signal, billed), { status: 200, headers });
  } catch (e) {
    return errorResponse(e, requestId);
  }
}

/** `POST /v1/messages/count_tokens`: `{ input_tokens }`, the same count usage adds up to. */
export async function countTokensCall(raw: Request): Promise<{ input_tokens: number }> {
  const req = validateRequest(await readJson(raw), 'count_tokens');
  modelOf(req.model);
  const segments = linearise(req);
  breakpointsOf(segments, req.cache_control);
  return { input_tokens: countSegments(segments) };
}
