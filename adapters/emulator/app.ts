/**
 * The emulator's HTTP face: the Messages API, count_tokens, Message Batches, models, the Admin API
 * usage and cost reports, and the `/_emulator/*` control endpoints (script, faults, billing, cache,
 * batches).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import {
  batchResults,
  cancelBatch,
  createBatch,
  deleteBatch,
  forceEnd,
  listBatches,
  retrieveBatch,
} from './batches.ts';
import { bedrockRoutes } from './bedrock.ts';
import { type Lifecycle, lifecycleOf, MODELS, type ModelInfo } from './catalog.ts';
import { curCsv } from './cur.ts';
import { ApiError } from './errors.ts';
import {
  authenticate,
  authenticateAdmin,
  authenticateControl,
  type EmulatorState,
  errorResponse,
  guarded,
  parseBody,
  readJson,
} from './http.ts';
import { newId } from './ids.ts';
import { countTokensCall, messages, modelOf } from './messages.ts';
import { openaiCacheOf } from './openai/call.ts';
import { openaiRoutes } from './openai/routes.ts';
import { paginate } from './pages.ts';
import { costReport, usageReport } from './reports.ts';
import { type ScriptRule, scriptBodySchema } from './script.ts';
import { vertexRoutes } from './vertex.ts';

const faultSchema = z.strictObject({
  status: z.int().min(400).max(599).optional(),
  count: z.int().positive().optional(),
  latencyMs: z.int().nonnegative().optional(),
  message: z.string().optional(),
});

const isoOrNull = (d: string | undefined, now: number, stage: Lifecycle) =>
  d && (stage !== 'active' || now >= Date.parse(d)) ? d : null;

/** A model as `GET /v1/models` shows it (SDK 1.13 `ModelInfo`; `capabilities` not emulated: null). */
const modelJson = (m: ModelInfo, now: number) => {
  const lifecycle = lifecycleOf(m, now);
  return {
    type: 'model',
    id: m.id,
    display_name: m.displayName,
    created_at: m.createdAt,
    lifecycle,
    line: m.line,
    max_input_tokens: m.contextWindow,
    max_tokens: m.maxOutputTokens,
    deprecated_at: lifecycle === 'active' ? null : (m.deprecatedAt ?? null),
    retires_at: isoOrNull(m.retiresAt, now, lifecycle),
    capabilities: null,
  };
};

const LIFECYCLES = ['active', 'deprecated', 'retired'];

/**
 * `GET /v1/models`: newest first (SDK doc: "More recently released models are listed first").
 * Without `lifecycle[]` the list holds active and deprecated models; retired ones only when
 * asked for (SDK 1.13 `ModelListParams.lifecycle`).
 */
function listModels(url: string, now: number) {
  const params = new URL(url).searchParams;
  const wanted = [...params.getAll('lifecycle[]'), ...params.getAll('lifecycle')];
  for (const w of wanted) {
    if (!LIFECYCLES.includes(w))
      throw new ApiError(
        400,
        'invalid_request_error',
        `lifecycle: Input should be 'active', 'deprecated' or 'retired'`,
      );
  }
  const stages = new Set(wanted.length ? wanted : ['active', 'deprecated']);
  const models = [...MODELS]
    .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt))
    .map((m) => modelJson(m, now))
    .filter((m) => stages.has(m.lifecycle));
  return paginate(models, url);
}

const idFrom = (raw: Request, fromEnd = 0) =>
  decodeURIComponent(new URL(raw.url).pathname.split('/').at(-1 - fromEnd) ?? '');

/** Builds the Hono app over `state`: the provider's API, its Admin API reports, the test controls. */
export function createApp(state: EmulatorState): Hono {
  const app = new Hono();
  apiRoutes(app, state);
  adminRoutes(app, state);
  openaiRoutes(app, state);
  controlRoutes(app, state);
  vertexRoutes(app, state);
  bedrockRoutes(app, state);
  app.notFound((c) =>
    errorResponse(
      new ApiError(404, 'not_found_error', `Not found: ${c.req.method} ${c.req.path}`),
      newId('req_011C'),
    ),
  );
  app.onError((e) => errorResponse(e, newId('req_011C')));
  return app;
}

/** Messages, count_tokens, batches and models: what a client with an API key calls. */
function apiRoutes(app: Hono, state: EmulatorState): void {
  const api = (h: Headers) => void authenticate(h, state);
  app.post('/v1/messages', (c) => messages(c.req.raw, state));
  app.post(
    '/v1/messages/count_tokens',
    guarded(api, (raw) => countTokensCall(raw, state)),
  );
  app.post(
    '/v1/messages/batches',
    guarded(api, async (raw) =>
      createBatch(await readJson(raw), raw, authenticate(raw.headers, state), state),
    ),
  );
  app.get(
    '/v1/messages/batches',
    guarded(api, (raw) => listBatches(raw.url, state)),
  );
  app.get(
    '/v1/messages/batches/:id',
    guarded(api, (raw) => retrieveBatch(idFrom(raw), state)),
  );
  app.post(
    '/v1/messages/batches/:id/cancel',
    guarded(api, (raw) => cancelBatch(idFrom(raw, 1), state)),
  );
  app.delete(
    '/v1/messages/batches/:id',
    guarded(api, (raw) => deleteBatch(idFrom(raw), state)),
  );
  app.get('/v1/messages/batches/:id/results', async (c) => {
    const requestId = newId('req_011C');
    try {
      authenticate(c.req.raw.headers, state);
      const body = batchResults(idFrom(c.req.raw, 1), state);
      return new Response(body, {
        headers: { 'content-type': 'application/x-jsonl', 'request-id': requestId },
      });
    } catch (e) {
      return errorResponse(e, requestId);
    }
  });
  app.get(
    '/v1/models',
    guarded(api, (raw) => listModels(raw.url, state.now())),
  );
  app.get(
    '/v1/models/:id',
    guarded(api, (raw) => modelJson(modelOf(idFrom(raw)), state.now())),
  );
}

/** The Admin API's cost and usage reports, read by reconciliation. */
function adminRoutes(app: Hono, state: EmulatorState): void {
  const admin = (h: Headers) => authenticateAdmin(h, state);
  const query = (req: Request) => {
    const params = new URL(req.url).searchParams;
    return (name: string) => params.getAll(name);
  };
  app.get(
    '/v1/organizations/cost_report',
    guarded(admin, (raw) => costReport([...state.billing.rollups()], query(raw), state.now())),
  );
  app.get(
    '/v1/organizations/usage_report/messages',
    guarded(admin, (raw) => usageReport([...state.billing.rollups()], query(raw), state.now())),
  );
}

/** `/_emulator/*`: the billing record, scripted replies, injected faults, cache and batch controls. */
function controlRoutes(app: Hono, state: EmulatorState): void {
  const control = (h: Headers) => authenticateControl(h, state);
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
    '/_emulator/batches/:id/end',
    guarded(control, (raw) => forceEnd(idFrom(raw, 1), state)),
  );
  // The Bedrock calls as AWS bills them: a CUR 2.0 CSV for one UTC day (`entity=bedrock` for
  // AmazonBedrock lines instead of AWS Marketplace ones).
  app.get('/_emulator/exports/aws-cur', (c) => {
    const requestId = newId('req_011C');
    try {
      authenticateControl(c.req.raw.headers, state);
      const day = c.req.query('day') ?? '';
      if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(day))) {
        throw new ApiError(400, 'invalid_request_error', 'day: expected a date like 2026-12-02');
      }
      const entity = c.req.query('entity') === 'bedrock' ? 'bedrock' : 'marketplace';
      return new Response(curCsv(state.billing.list(), day, entity), {
        headers: { 'content-type': 'text/csv; charset=utf-8', 'request-id': requestId },
      });
    } catch (e) {
      return errorResponse(e, requestId);
    }
  });
  app.post(
    '/_emulator/cache/reset',
    guarded(control, () => {
      state.cache.clear();
      openaiCacheOf(state).clear();
      return { cleared: true };
    }),
  );
}
