/**
 * The emulator's HTTP face: the Messages API, count_tokens, models, the Admin API usage and cost
 * reports, and the `/_emulator/*` control endpoints (script, faults, billing, cache).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { MODELS, type ModelInfo } from './catalog.ts';
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
import { costReport, usageReport } from './reports.ts';
import { type ScriptRule, scriptBodySchema } from './script.ts';

const faultSchema = z.strictObject({
  status: z.int().min(400).max(599).optional(),
  count: z.int().positive().optional(),
  latencyMs: z.int().nonnegative().optional(),
  message: z.string().optional(),
});

const modelJson = (m: ModelInfo) => ({
  type: 'model',
  id: m.id,
  display_name: m.displayName,
  created_at: m.createdAt,
});

/** Builds the Hono app over `state`. */
export function createApp(state: EmulatorState): Hono {
  const app = new Hono();
  const api = (h: Headers) => void authenticate(h, state);
  const admin = (h: Headers) => authenticateAdmin(h, state);
  const control = (h: Headers) => authenticateControl(h, state);
  const query = (req: Request) => {
    const params = new URL(req.url).searchParams;
    return (name: string) => params.getAll(name);
  };

  app.post('/v1/messages', (c) => messages(c.req.raw, state));
  app.post(
    '/v1/messages/count_tokens',
    guarded(api, (raw) => countTokensCall(raw)),
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
    guarded(admin, (raw) => costReport([...state.billing.rollups()], query(raw), state.now())),
  );
  app.get(
    '/v1/organizations/usage_report/messages',
    guarded(admin, (raw) => usageReport([...state.billing.rollups()], query(raw), state.now())),
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
