import type { Context, MiddlewareHandler } from 'hono';
import { ApprovalConflictError, ApprovalNotFoundError } from '../../../approvals/port.ts';
import { ExtendInputError } from '../../../approvals/service.ts';
import { type Operator, type Role, roleAtLeast } from '../../auth/operators.ts';
import { invalidRequest, Refusal, unavailable } from '../../gateway/refusal.ts';
import { formatUsd, type Micros, tryParseUsd } from '../../money.ts';
import type { Runtime } from '../../runtime.ts';
import { type Budget, EnforcementUnavailableError, StoreInputError } from '../../store/port.ts';
import { RunInputError, RunNotFoundError, RunStateError } from '../../workflows/executor.ts';
import { WorkflowNotFoundError } from '../../workflows/host.ts';
import { PrefixDriftError } from '../../workflows/prompt.ts';

export type Env = { Variables: { operator: Operator; rt: Runtime } };

/** Operator tokens (Bearer) on every /api route: 401 without, 403 below the needed role. */
export function requireOperator(rt: Runtime): MiddlewareHandler<Env> {
  return async (c, next) => {
    // The inbox calls the API in-process (`app.request(..., { webOperator })`) for the operator
    // of a checked session: an env binding, which no HTTP request can set.
    const web = (c.env as { webOperator?: Operator } | undefined)?.webOperator;
    if (web) {
      c.set('operator', web);
      c.set('rt', rt);
      return next();
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
    c.set('rt', rt);
    await next();
  };
}

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
  if (err instanceof Refusal) refusal = err;
  else if (err instanceof EnforcementUnavailableError) refusal = unavailable(err.message);
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
  else {
    const rt = c.get('rt') as Runtime | undefined;
    rt?.log.error('operator API failed', { error: err, path: c.req.path });
    refusal = unavailable('internal error');
  }
  return c.json(refusal.envelope(), refusal.status as 400, refusal.headers());
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
  if (typeof r !== 'string' || r.trim().length === 0)
    throw invalidRequest('reason', 'required: say why (it goes to the audit log)');
  return r.trim();
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

export function timeParam(c: Context, name: string, fallback?: number): number | undefined {
  const v = c.req.query(name);
  if (v === undefined || v === '') return fallback;
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n))
    throw invalidRequest(name, `expected an ISO date/time or epoch ms, got ${JSON.stringify(v)}`);
  return n;
}

export function limitParam(c: Context, fallback = 100, max = 1000): number {
  const v = c.req.query('limit');
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw invalidRequest('limit', `expected an integer 1-${max}`);
  return n;
}

const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

export function budgetJson(b: Budget) {
  return {
    id: b.id,
    scope: b.scope,
    owner: b.owner,
    window: b.window,
    state: b.state,
    ceiling_usd: formatUsd(b.ceiling),
    spent_usd: formatUsd(b.spent),
    reserved_usd: formatUsd(b.reserved),
    ceiling_micros: b.ceiling,
    spent_micros: b.spent,
    reserved_micros: b.reserved,
    window_start: iso(b.windowStart || null),
    resets_at: iso(b.resetsAt),
    created_at: iso(b.createdAt),
    updated_at: iso(b.updatedAt),
  };
}

export { iso };
