/**
 * The emulator's HTTP face: the Messages API, count_tokens, models, the Admin API usage and cost
 * reports, and the `/_emulator/*` control endpoints (script, faults, billing, cache).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { BillingRecord } from './billing.ts';
import type { PromptCache } from './cache.ts';
import { breakpointsOf } from './cache.ts';
import { CONTEXT_1M_BETA, MODELS, type ModelInfo, resolveModel } from './catalog.ts';
import { ApiError, errorBody, errorForStatus, errorHeaders, invalid } from './errors.ts';
import { newId } from './ids.ts';
import { apiUsage, buildReply, mergeSpecs, scriptView } from './reply.ts';
import { costReport, usageReport } from './reports.ts';
import { type MessagesRequest, validateRequest } from './request.ts';
import { type Script, type ScriptRule, scriptBodySchema } from './script.ts';
import { pacedStream, streamEvents } from './stream.ts';
import { countSegments, linearise, TOKEN_COSTS } from './tokens.ts';

/** A fault to inject into the next `count` calls of `POST /v1/messages`. */
export interface Fault {
  /** HTTP status to answer with (omit for latency only). */
  status?: number;
  /** How many calls it affects (default 1). */
  count?: number;
  latencyMs?: number;
  message?: string;
}

/** Everything the app reads and mutates; owned by `createEmulator`. */
export interface EmulatorState {
  /** API key → label (the label lands in the billing record and the usage report). */
  readonly apiKeys: ReadonlyMap<string, string>;
  readonly adminKey: string;
  readonly now: () => number;
  readonly latencyMs: number;
  readonly cache: PromptCache;
  readonly billing: BillingRecord;
  readonly script: Script;
  readonly faults: PendingFault[];
}

/** A queued fault with its remaining count. */
export interface PendingFault extends Fault {
  count: number;
}

const JSON_TYPE = 'application/json';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function keyOf(h: Headers): string | undefined {
  const key = h.get('x-api-key');
  if (key) return key;
  const auth = h.get('authorization');
  return auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
}

function authenticate(h: Headers, state: EmulatorState): string {
  const key = keyOf(h);
  if (!key) throw new ApiError(401, 'authentication_error', 'x-api-key header is required');
  const label = state.apiKeys.get(key);
  if (label === undefined) throw new ApiError(401, 'authentication_error', 'invalid x-api-key');
  return label;
}

function authenticateAdmin(h: Headers, state: EmulatorState): void {
  const key = keyOf(h);
  if (key !== state.adminKey) {
    throw new ApiError(
      401,
      'authentication_error',
      'invalid x-api-key: this endpoint requires an Admin API key',
    );
  }
}

function authenticateControl(h: Headers, state: EmulatorState): void {
  const key = keyOf(h);
  if (key !== state.adminKey) authenticate(h, state);
}

function headersFor(requestId: string, state: EmulatorState, type: string): Record<string, string> {
  return {
    'content-type': type,
    'request-id': requestId,
    'anthropic-ratelimit-requests-limit': '4000',
    'anthropic-ratelimit-requests-remaining': '3999',
    'anthropic-ratelimit-requests-reset': new Date(state.now() + 60_000).toISOString(),
    'anthropic-ratelimit-input-tokens-limit': '2000000',
    'anthropic-ratelimit-output-tokens-limit': '400000',
  };
}

function errorResponse(e: unknown, requestId: string): Response {
  const err = e instanceof ApiError ? e : errorForStatus(500, 'Internal server error');
  if (!(e instanceof ApiError)) console.error('[emulator] internal error', e);
  return new Response(errorBody(err, requestId), {
    status: err.status,
    headers: { 'content-type': JSON_TYPE, 'request-id': requestId, ...errorHeaders(err) },
  });
}

async function readJson(req: Request): Promise<unknown> {
  const text = await req.text();
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalid(`The request body is not valid JSON: ${(e as Error).message}`);
  }
}

function modelOf(name: string): ModelInfo {
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

async function messages(c: { req: { raw: Request } }, state: EmulatorState): Promise<Response> {
  const requestId = newId('req_011C');
  try {
    const raw = c.req.raw;
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
    const events = streamEvents(message, reply, usage);
    const headers = {
      ...headersFor(requestId, state, 'text/event-stream; charset=utf-8'),
      'cache-control': 'no-cache',
    };
    const delay = spec?.deltaDelayMs ?? 0;
    if (delay === 0) {
      bill(reply.outputTokens, false);
      return new Response(events.map((e) => e.text).join(''), { status: 200, headers });
    }
    return new Response(pacedStream(events, delay, raw.signal, bill), { status: 200, headers });
  } catch (e) {
    return errorResponse(e, requestId);
  }
}

const faultSchema = z.strictObject({
  status: z.int().min(400).max(599).optional(),
  count: z.int().positive().optional(),
  latencyMs: z.int().nonnegative().optional(),
  message: z.string().optional(),
});

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw invalid(`${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
}

const modelJson = (m: ModelInfo) => ({
  type: 'model',
  id: m.id,
  display_name: m.displayName,
  created_at: m.createdAt,
});

/** Builds the Hono app over `state`. */
export function createApp(state: EmulatorState): Hono {
  const app = new Hono();
  const guarded = (auth: (h: Headers) => void, handler: (req: Request) => Promise<unknown> | unknown) => {
    return async (c: { req: { raw: Request } }) => {
      const requestId = newId('req_011C');
      try {
        auth(c.req.raw.headers);
        const result = await handler(c.req.raw);
        return new Response(JSON.stringify(result), {
          headers: { 'content-type': JSON_TYPE, 'request-id': requestId },
        });
      } catch (e) {
        return errorResponse(e, requestId);
      }
    };
  };
  const api = (h: Headers) => void authenticate(h, state);
  const admin = (h: Headers) => authenticateAdmin(h, state);
  const control = (h: Headers) => authenticateControl(h, state);
  const query = (req: Request) => {
    const params = new URL(req.url).searchParams;
    return (name: string) => params.getAll(name);
  };

  app.post('/v1/messages', (c) => messages(c, state));
  app.post(
    '/v1/messages/count_tokens',
    guarded(api, async (raw) => {
      const req = validateRequest(await readJson(raw), 'count_tokens');
      modelOf(req.model);
      const segments = linearise(req);
      breakpointsOf(segments, req.cache_control);
      return { input_tokens: countSegments(segments) };
    }),
  );
  app.get(
    '/v1/models',
    guarded(api, () => ({
      data: MODELS.map(modelJson),
      has_more: false,
      first_id: MODELS[0]?.id,
      last_id: MODELS.at(-1)?.id,
    })),
  );
  app.get(
    '/v1/models/:id',
    guarded(api, (raw) =>
      modelJson(modelOf(decodeURIComponent(new URL(raw.url).pathname.split('/').pop() ?? ''))),
    ),
  );
  app.get(
    '/v1/organizations/cost_report',
    guarded(admin, (raw) => costReport(state.billing.list(), query(raw), state.now())),
  );
  app.get(
    '/v1/organizations/usage_report/messages',
    guarded(admin, (raw) => usageReport(state.billing.list(), query(raw), state.now())),
  );

  app.get(
    '/_emulator/billing',
    guarded(control, () => state.billing.toJSON()),
  );
  app.delete(
    '/_emulator/billing',
    guarded(control, () => {
      state.billing.clear();
      return { cleared: true };
    }),
  );
  app.post(
    '/_emulator/script',
    guarded(control, async (raw) => {
      const body = parseBody(scriptBodySchema, await readJson(raw));
      const rules = (Array.isArray(body) ? body : body.rules) as ScriptRule[];
      state.script.set(rules);
      return { rules: rules.length };
    }),
  );
  app.delete(
    '/_emulator/script',
    guarded(control, () => {
      state.script.set([]);
      return { rules: 0 };
    }),
  );
  app.get(
    '/_emulator/faults',
    guarded(control, () => ({ faults: state.faults })),
  );
  app.post(
    '/_emulator/faults',
    guarded(control, async (raw) => {
      const f = parseBody(faultSchema, await readJson(raw));
      state.faults.push({ ...f, count: f.count ?? 1 });
      return { faults: state.faults };
    }),
  );
  app.delete(
    '/_emulator/faults',
    guarded(control, () => {
      state.faults.length = 0;
      return { faults: [] };
    }),
  );
  app.post(
    '/_emulator/cache/reset',
    guarded(control, () => {
      state.cache.clear();
      return { cleared: true };
    }),
  );

  app.notFound((c) =>
    errorResponse(
      new ApiError(404, 'not_found_error', `Not found: ${c.req.method} ${c.req.path}`),
      newId('req_011C'),
    ),
  );
  app.onError((e) => errorResponse(e, newId('req_011C')));
  return app;
}
