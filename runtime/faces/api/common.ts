import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ExtendInputError } from '../../../approvals/service.ts';
import { type Operator, type Role, roleAtLeast } from '../../auth/operators.ts';
import { decodePosition } from '../../backends/cursor.ts';
import type { Services } from '../../compose.ts';
import { invalidRequest, Refusal, unavailable } from '../../gateway/refusal.ts';
import { type Micros, tryParseUsd } from '../../money.ts';
import { ApprovalConflictError, ApprovalNotFoundError } from '../../store/approvals.ts';
import { EnforcementUnavailableError, StoreInputError } from '../../store/port.ts';
import { RunInputError, RunNotFoundError, RunStateError } from '../../workflows/executor.ts';
import { WorkflowNotFoundError } from '../../workflows/host.ts';
import { PrefixDriftError } from '../../workflows/prompt.ts';

/** Largest request body any /api route or inbox form accepts (bytes); bigger is a 413, unread. */
export const MAX_API_BODY_BYTES = 1024 * 1024;
/** Longest `reason` (characters): it is stored in the audit log and shown on every page. */
export const MAX_REASON_CHARS = 2000;
/** Longest other free-text field (labels, names, workflow ids) in an API body. */
export const MAX_TEXT_CHARS = 200;

/** Sent on every inbox and API response. */
export const SECURITY_HEADERS: Record<string, string> = {
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
};
/** The inbox's pages: scripts and styles only from /assets (no inline script or style anywhere). */
export const PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/** JSON answers: nothing to load at all. */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/** The 413 for a body past MAX_API_BODY_BYTES, raised before (or while) reading it, never after. */
export function apiBodyLimit(max = MAX_API_BODY_BYTES): MiddlewareHandler {
  return bodyLimit({
    maxSize: max,
    onError: () => {
      throw new Refusal('request_too_large', `request_too_large: the body is over the ${max}-byte limit`, {
        limit_bytes: max,
      });
    },
  });
}

/**
 * Query parameters every list shares, checked before any handler sees them: a `cursor` must be
 * one this server handed out (400 `cursor` otherwise, never a store error).
 */
function checkCommonQuery(c: Context): void {
  const cursor = c.req.query('cursor');
  if (cursor) {
    try {
      decodePosition(cursor, 'list');
    } catch {
      throw invalidRequest(
        'cursor',
        `expected a cursor from a previous page's next_cursor, got ${JSON.stringify(cursor)}`,
      );
    }
  }
}

export type Env = { Variables: { operator: Operator; rt: Services } };

/** Operator tokens (Bearer) on every /api route: 401 without, 403 below the needed role. */
export function requireOperator(rt: Services): MiddlewareHandler<Env> {
  return async (c, next) => {
    // The inbox calls the API in-process (`app.request(..., { webOperator })`) for the operator
    // of a checked session: an env binding, which no HTTP request can set.
    c.set('rt', rt);
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.header(k, v);
    c.header('content-security-policy', API_CSP);
    const web = (c.env as { webOperator?: Operator } | undefined)?.webOperator;
    if (web) {
      c.set('operator', web);
      checkCommonQuery(c);
      return limit(c, next);
    }
    const auth = c.req.header('authorization');
    const token = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
    const op = rt.operatorSetup.registry.authenticate(token);
    if (!op)
      throw new Refusal(
        'unauthenticated',
        'unauthenticated: send an operator token as "Authorization: Bearer <token>"',
      );
    c.set('operator', op);
    checkCommonQuery(c);
    await limit(c, next);
  };
}

const limit = apiBodyLimit();

export function requireRole(c: Context<Env>, role: Role): Operator {
  const op = c.get('operator');
  if (!roleAtLeast(op.role, role)) {
    throw new Refusal(
      'forbidden',
      `forbidden: this needs the ${role} role; token '${op.name}' is ${op.role}`,
      {
        needed_role: role,
      },
    );
  }
  return op;
}

/** Maps any error from a handler to the one error envelope (the same shape as gateway refusals). */
export function apiError(err: unknown, c: Context): Response {
  let refusal: Refusal;
  const rt = c.get('rt') as Services | undefined;
  if (err instanceof Refusal) refusal = err;
  else if (err instanceof URIError)
    // A path or query value whose percent-encoding does not decode (`%E0%A4%A`, a lone `%`).
    refusal = invalidRequest(
      uriField(c),
      'bad percent-encoding (a "%" must start a valid UTF-8 escape like %3A)',
    );
  else if (err instanceof EnforcementUnavailableError) {
    // Only an authenticated operator reads what failed; everyone else gets the generic refusal.
    if (!c.get('operator'))
      rt?.log.error('operator API: store unavailable', { error: err, path: c.req.path });
    refusal = unavailable(c.get('operator') ? err.message : 'the store did not answer');
  } else if (err instanceof Error && /^invalid \w+ list cursor/.test(err.message))
    refusal = invalidRequest('cursor', "expected a cursor from a previous page's next_cursor");
  else if (err instanceof StoreInputError)
    refusal =
      err.code === 'not_found' ? new Refusal('not_found', err.message) : invalidRequest('input', err.message);
  else if (err instanceof RunInputError)
    refusal = new Refusal('invalid_request', err.message, { field: `input.${err.field}` });
  else if (err instanceof RunNotFoundError || err instanceof WorkflowNotFoundError)
    refusal = new Refusal('not_found', err.message);
  else if (err instanceof RunStateError) refusal = new Refusal('conflict', err.message);
  else if (err instanceof ApprovalConflictError)
    refusal = new Refusal('conflict', err.message, {
      approval: err.item.id,
      state: err.item.state,
      ...(err.item.decision
        ? { decided_by: err.item.decision.actor, decided_at: new Date(err.item.decision.at).toISOString() }
        : {}),
    });
  else if (err instanceof ApprovalNotFoundError) refusal = new Refusal('not_found', err.message);
  else if (err instanceof ExtendInputError)
    refusal = new Refusal('invalid_request', err.message, { field: err.field });
  else if (err instanceof PrefixDriftError) refusal = new Refusal('prefix_drift', err.message);
  else if (err instanceof SyntaxError || err instanceof RangeError)
    // Input the handler could not take apart (JSON nested too deep, a value out of range): the
    // caller's mistake, never a retryable 503.
    refusal = invalidRequest('body', 'the request could not be read');
  else {
    rt?.log.error('operator API failed', { error: err, path: c.req.path });
    refusal = unavailable('internal error');
  }
  return c.json(refusal.envelope(), refusal.status as 400, {
    ...refusal.headers(),
    ...SECURITY_HEADERS,
    'content-security-policy': API_CSP,
  });
}

/** Which part of the request a percent-encoding error came from: the scope in the path, or a query key. */
function uriField(c: Context): string {
  const url = c.req.url;
  const q = url.indexOf('?');
  for (const part of q === -1 ? [] : url.slice(q + 1).split('&')) {
    const [k = '', v = ''] = part.split('=');
    try {
      decodeURIComponent(v);
    } catch {
      return k;
    }
  }
  return c.req.path.startsWith('/api/budgets/') || c.req.path.startsWith('/api/kill-switches/')
    ? 'scope'
    : 'path';
}

export async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  try {
    const v = await c.req.json();
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* answered below */
  }
  throw invalidRequest('body', 'expected a JSON object');
}

export function requireReason(body: Record<string, unknown>): string {
  const r = body.reason;
  if (r === undefined || r === null)
    throw invalidRequest('reason', 'required: say why (it goes to the audit log)');
  if (typeof r !== 'string') throw invalidRequest('reason', `expected a string, got ${typeOf(r)}`);
  if (r.trim().length === 0) throw invalidRequest('reason', 'required: say why (it goes to the audit log)');
  if (r.length > MAX_REASON_CHARS)
    throw invalidRequest('reason', `too long: at most ${MAX_REASON_CHARS} characters, got ${r.length}`);
  return r.trim();
}

/** An optional free-text field: a string of at most `max` characters, else 400 naming it. */
export function textField(
  body: Record<string, unknown>,
  field: string,
  max = MAX_TEXT_CHARS,
): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalidRequest(field, `expected a string, got ${typeOf(v)}`);
  if (v.length > max) throw invalidRequest(field, `too long: at most ${max} characters, got ${v.length}`);
  return v;
}

/** What a JSON value is, for "expected X, got Y". */
export function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `a string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${JSON.stringify(v)}`;
}

export function amountField(body: Record<string, unknown>, field: string): Micros {
  const v = tryParseUsd(body[field]);
  if (v === undefined) {
    throw invalidRequest(
      field,
      `expected a dollar amount like "50.00", got ${JSON.stringify(body[field] ?? null)}`,
    );
  }
  return v;
}

/** ISO 8601 dates and date-times only: Date.parse alone takes almost anything (`' OR '1'='1`). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

export function timeParam(c: Context, name: string, fallback?: number): number | undefined {
  const v = c.req.query(name);
  if (v === undefined || v === '') return fallback;
  const n = /^\d{1,15}$/.test(v) ? Number(v) : ISO_TIME.test(v) ? Date.parse(v) : Number.NaN;
  if (!Number.isFinite(n))
    throw invalidRequest(
      name,
      `expected an ISO date/time (2026-01-31 or 2026-01-31T12:00:00Z) or epoch ms, got ${JSON.stringify(v.slice(0, 100))}`,
    );
  return n;
}

export function limitParam(c: Context, fallback = 100, max = 1000): number {
  const v = c.req.query('limit');
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw invalidRequest('limit', `expected an integer 1-${max}`);
  return n;
}
