/**
 * The emulator's Google Vertex AI face for Claude, under `/vertex`:
 *
 * - `POST /vertex[/v1]/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict`
 *   (and `:streamRawPredict`): an Anthropic Messages body without `model` and with
 *   `anthropic_version` (Vertex's `vertex-2023-10-16`; the SDK sends its header's value), billed
 *   to provider `vertex`, regional locations at 1.1× for the models that carry the premium.
 * - `POST …/models/count-tokens:rawPredict`: the body keeps its `model`; `{input_tokens}`.
 * - `POST /vertex/oauth2/token`, `POST /_emulator/vertex/service-accounts`: vertex-oauth.ts.
 * - `GET /_emulator/exports/gcp-billing?day=`: the bill's Vertex lines as a GCP billing export.
 *
 * Both `/vertex/v1/projects/…` and `/vertex/projects/…` are served: `@anthropic-ai/vertex-sdk`
 * appends `/projects/…` to its base URL as given (its default base URL carries the `/v1`), so a
 * client configured with `<emulator>/vertex/v1` and Claude Code with
 * `ANTHROPIC_VERTEX_BASE_URL=<emulator>/vertex` both land here. Authentication is
 * `Authorization: Bearer` with an emulator API key or a token from the OAuth endpoint. Answers are
 * Anthropic JSON / SSE as Vertex passes them through; errors are in Google's envelope.
 */
import type { Hono } from 'hono';
import { authenticateControl, type EmulatorState, errorResponse, guarded, readJson } from './http.ts';
import { newId } from './ids.ts';
import { countTokensCall, serveMessages } from './messages.ts';
import { gcpBillingCsv } from './vertex-export.ts';
import { bearerLabel, registerServiceAccount, tokenGrant } from './vertex-oauth.ts';

const GOOGLE_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  413: 'INVALID_ARGUMENT',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
  529: 'UNAVAILABLE',
};

/** A Google API error answer: `{"error":{"code","message","status"}}`. */
export function googleError(code: number, message: string): Response {
  const status = GOOGLE_STATUS[code] ?? (code >= 500 ? 'INTERNAL' : 'FAILED_PRECONDITION');
  return Response.json({ error: { code, message, status } }, { status: code });
}

/** Re-frames an Anthropic error answer from serveMessages as Google's envelope; successes pass. */
async function asVertex(res: Response): Promise<Response> {
  if (res.status < 400) return res;
  let message = `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { message?: string } };
    message = body.error?.message ?? message;
  } catch {
    // keep the status line as the message
  }
  return googleError(res.status, message);
}

interface Target {
  project: string;
  location: string;
  model: string;
  method: string;
}

/** The call a `/vertex/…` path names, or the Google 404 for any other path. */
function targetOf(pathname: string): Target | Response {
  const rest = pathname.replace(/^\/vertex(\/v1)?\//, '');
  const seg = rest.split('/');
  const ok =
    seg.length === 8 &&
    seg[0] === 'projects' &&
    seg[2] === 'locations' &&
    seg[4] === 'publishers' &&
    seg[5] === 'anthropic' &&
    seg[6] === 'models';
  if (!ok) return googleError(404, `The requested URL ${pathname} was not found on this server.`);
  const last = decodeURIComponent(seg[7] ?? '');
  const colon = last.lastIndexOf(':');
  const method = colon === -1 ? '' : last.slice(colon + 1);
  if (method !== 'rawPredict' && method !== 'streamRawPredict') {
    return googleError(404, `The requested URL ${pathname} was not found on this server.`);
  }
  return {
    project: decodeURIComponent(seg[1] ?? ''),
    location: decodeURIComponent(seg[3] ?? ''),
    model: last.slice(0, colon),
    method,
  };
}

/** Vertex model id → the catalogue's id: `claude-haiku-4-5@20251001` → `claude-haiku-4-5-20251001`. */
export function catalogueId(vertexModel: string): string {
  const m = /^(.+)@(\d{8})$/.exec(vertexModel);
  return m ? `${m[1]}-${m[2]}` : vertexModel;
}

/** Models priced the same on every endpoint: those before the global/regional split (Sonnet 4.5). */
const FLAT = /^claude-(3-|opus-4-1|opus-4-0|opus-4-2025|sonnet-4-0|sonnet-4-2025)/;

function authorize(h: Headers, state: EmulatorState): { label: string } | Response {
  const auth = h.get('authorization');
  const token = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
  const who = token ? bearerLabel(token, state) : ({ refused: 'unauthenticated' } as const);
  if ('label' in who) return who;
  if (who.refused === 'scope') return googleError(403, 'Request had insufficient authentication scopes.');
  return googleError(
    401,
    'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
  );
}

/** One `:rawPredict` / `:streamRawPredict` (count-tokens included). */
export async function vertexCall(raw: Request, state: EmulatorState): Promise<Response> {
  const url = new URL(raw.url);
  const target = targetOf(url.pathname);
  if (target instanceof Response) return target;
  const who = authorize(raw.headers, state);
  if (who instanceof Response) return who;
  let body: Record<string, unknown>;
  try {
    const parsed = await readJson(raw);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return googleError(400, 'Invalid JSON payload received. Expected an object.');
    }
    body = parsed as Record<string, unknown>;
  } catch (e) {
    return googleError(400, `Invalid JSON payload received. ${(e as Error).message}`);
  }
  const { anthropic_version, ...rest } = body;
  if (typeof anthropic_version !== 'string' || !anthropic_version) {
    return googleError(400, 'anthropic_version: Field required');
  }
  if (target.model === 'count-tokens') {
    if (typeof rest.model !== 'string') return googleError(400, 'model: Field required');
    const canonical = { ...rest, model: catalogueId(rest.model) };
    const counted = new Request(raw.url, {
      method: 'POST',
      headers: raw.headers,
      body: JSON.stringify(canonical),
    });
    try {
      return Response.json(await countTokensCall(counted, state));
    } catch (e) {
      const err = e as { status?: number; message?: string };
      return googleError(err.status ?? 500, err.message ?? 'Internal error');
    }
  }
  if (rest.model !== undefined) return googleError(400, 'model: Extra inputs are not permitted');
  const model = catalogueId(target.model);
  const regional = target.location !== 'global' && !FLAT.test(model);
  const res = await serveMessages({ ...rest, model }, raw, state, {
    requestId: newId('req_vrtx_'),
    apiKey: who.label,
    provider: 'vertex',
    ...(regional ? { regional: true } : {}),
  });
  return asVertex(res);
}

/** Registers the Vertex face, its OAuth endpoint and its controls on the emulator's app. */
export function vertexRoutes(app: Hono, state: EmulatorState): void {
  const control = (h: Headers) => authenticateControl(h, state);
  app.post('/vertex/oauth2/token', (c) => tokenGrant(c.req.raw, state));
  app.post('/vertex/*', (c) => vertexCall(c.req.raw, state));
  app.post(
    '/_emulator/vertex/service-accounts',
    guarded(control, async (raw) => {
      const b = (await readJson(raw)) as {
        client_email?: unknown;
        public_key?: unknown;
        project_id?: unknown;
      };
      const email = typeof b.client_email === 'string' && b.client_email ? b.client_email : undefined;
      const tokenUri = new URL('/vertex/oauth2/token', raw.url).href;
      return registerServiceAccount(state, {
        clientEmail: email ?? `emulator-${newId('sa')}@emulator-project.iam.gserviceaccount.com`,
        ...(typeof b.public_key === 'string' ? { publicKey: b.public_key } : {}),
        ...(typeof b.project_id === 'string' ? { projectId: b.project_id } : {}),
        tokenUri,
      });
    }),
  );
  app.get('/_emulator/exports/gcp-billing', async (c) => {
    try {
      authenticateControl(c.req.raw.headers, state);
    } catch (e) {
      return errorResponse(e, newId('req_011C'));
    }
    const day = new URL(c.req.raw.url).searchParams.get('day') ?? '';
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`))) {
      return googleError(400, `day: expected a date like 2026-12-01, got ${JSON.stringify(day)}`);
    }
    return new Response(gcpBillingCsv(state.billing.list(), day), {
      headers: { 'content-type': 'text/csv; charset=utf-8' },
    });
  });
}
