import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { Services } from '../../compose.ts';
import { parseDuration } from '../../config/schema.ts';
import { invalidRequest } from '../../gateway/refusal.ts';
import { type Micros, tryParseUsd } from '../../money.ts';
import { APPROVAL_STATES, type ApprovalState, type DecisionAction } from '../../store/approvals.ts';
import type { RunRecord } from '../../store/runs.ts';
import {
  type ApprovalResponse,
  type ApprovalsResponse,
  approvalView,
  type DecisionResponse,
} from '../views/approvals.ts';
import { iso } from '../views/format.ts';
import { runEventView } from '../views/runs.ts';
import { type Env, jsonBody, limitParam, requireReason, requireRole } from './common.ts';

/**
 * Approvals under /api: the items suspended runs wait in, and the four decisions on them.
 * `GET /events` streams live changes (server-sent events) to the inbox: `approval` events come
 * from every process sharing the store (BullMQ QueueEvents on Redis), and so do `run` events (a
 * Redis broadcast from whichever worker runs the run).
 */

/** Live `/api/events` streams one operator may hold at once; more are a 429. */
export const MAX_EVENT_STREAMS_PER_OPERATOR = 8;

/** "+$1", "1.50", "$2" → µ$ > 0 (the amount added to the spend box). */
function addSpend(v: unknown): Micros {
  const raw = typeof v === 'string' ? v.trim().replace(/^\+/, '') : v;
  const m = tryParseUsd(raw);
  if (m === undefined || m <= 0)
    throw invalidRequest('spend', `expected an amount to add like "+$1.00", got ${JSON.stringify(v)}`);
  return m;
}

/** "+10m", "30s" → ms > 0 (the time added to the time box). */
function addTime(v: unknown): number {
  const ms = typeof v === 'string' ? parseDuration(v.trim().replace(/^\+/, '')) : undefined;
  if (ms === undefined || ms <= 0)
    throw invalidRequest('time', `expected a duration to add like "+10m" or "30s", got ${JSON.stringify(v)}`);
  return ms;
}

export function approvalsApi(rt: Services): Hono<Env> {
  const api = new Hono<Env>();
  const hosted: MiddlewareHandler<Env> = async (c, next) => {
    if (rt.approvals) return next();
    const message = 'this server does not host workflows or approvals: start it with `chokepoint serve`';
    return c.json(
      { type: 'error', error: { type: 'api_error', message }, chokepoint: { code: 'workflows_not_hosted' } },
      503,
      { 'x-should-retry': 'false' },
    );
  };
  api.use('/approvals', hosted);
  api.use('/approvals/*', hosted);
  api.use('/events', hosted);
  const approvals = () => rt.approvals!;

  api.get('/approvals', async (c) => {
    requireRole(c, 'viewer');
    const state = c.req.query('state') ?? 'pending';
    if (state !== 'all' && !APPROVAL_STATES.includes(state as ApprovalState)) {
      throw invalidRequest('state', `expected all or one of ${APPROVAL_STATES.join(', ')}`);
    }
    const page = await approvals().list({
      state: state === 'all' ? undefined : (state as ApprovalState),
      workflow: c.req.query('workflow') || undefined,
      team: c.req.query('team') || undefined,
      reason: c.req.query('reason') || undefined,
      runId: c.req.query('run') || undefined,
      limit: limitParam(c, 50, 1000),
      cursor: c.req.query('cursor') || undefined,
    });
    return c.json({
      approvals: page.items.map(approvalView),
      ...(page.next ? { next: page.next } : {}),
    } satisfies ApprovalsResponse);
  });

  api.get('/approvals/:id', async (c) => {
    requireRole(c, 'viewer');
    const item = await approvals().mustGet(c.req.param('id'));
    return c.json({ approval: approvalView(item) } satisfies ApprovalResponse);
  });

  const decide = (action: DecisionAction) => async (c: Context<Env>) => {
    const op = requireRole(c, 'operator');
    const body = await jsonBody(c);
    const reason = requireReason(body);
    const known = new Set(['reason', ...(action === 'extend' ? ['spend', 'time'] : [])]);
    const unknown = Object.keys(body).find((k) => !known.has(k));
    if (unknown) throw invalidRequest(unknown, `unknown field (${action} takes ${[...known].join(', ')})`);
    let spend: Micros | undefined;
    let time: number | undefined;
    if (action === 'extend') {
      if (body.spend === undefined && body.time === undefined) {
        throw invalidRequest('spend', 'extend needs an amount: spend (e.g. "+$1") and/or time (e.g. "+10m")');
      }
      if (body.spend !== undefined) spend = addSpend(body.spend);
      if (body.time !== undefined) time = addTime(body.time);
      // An outside agent's session has a time box only: spend added to it would be ignored and
      // the session refused again at once, with the item shown as extended.
      if (spend && (await approvals().mustGet(c.req.param('id') ?? '')).kind === 'session') {
        throw invalidRequest(
          'spend',
          'a session has no spend box: extend its time box with time (e.g. "+30m")',
        );
      }
    }
    const item = await approvals().decide(c.req.param('id') ?? '', {
      action,
      actor: op.name,
      reason,
      ...(spend ? { addSpend: spend } : {}),
      ...(time ? { addTime: time } : {}),
    });
    const run = rt.runs ? await rt.runs.get(item.runId) : undefined;
    return c.json({
      approval: approvalView(item),
      ...(run ? { run: { id: run.id, state: run.state, limits: run.limits } } : {}),
    } satisfies DecisionResponse);
  };
  api.post('/approvals/:id/approve', decide('approve'));
  api.post('/approvals/:id/extend', decide('extend'));
  api.post('/approvals/:id/deny', decide('deny'));
  api.post('/approvals/:id/kill', decide('kill'));

  eventRoutes(api, rt);

  return api;
}

/** `GET /events`: live approval and run changes as server-sent events, a few streams per operator. */
function eventRoutes(api: Hono<Env>, rt: Services): void {
  const approvals = () => rt.approvals!;
  /** Open `/events` streams per operator (token name): at most MAX_EVENT_STREAMS_PER_OPERATOR. */
  const streams = new Map<string, number>();
  api.get('/events', (c) => {
    const op = requireRole(c, 'viewer');
    const held = streams.get(op.name) ?? 0;
    if (held >= MAX_EVENT_STREAMS_PER_OPERATOR) {
      const message = `too many event streams for operator '${op.name}': ${MAX_EVENT_STREAMS_PER_OPERATOR} open; close one (another tab or client) and try again`;
      return c.json(
        {
          type: 'error',
          error: { type: 'rate_limit_error', message },
          chokepoint: { code: 'too_many_streams', open_streams: held, limit: MAX_EVENT_STREAMS_PER_OPERATOR },
        },
        429,
        { 'retry-after': '30' },
      );
    }
    streams.set(op.name, held + 1);
    const release = () => {
      const n = (streams.get(op.name) ?? 1) - 1;
      if (n > 0) streams.set(op.name, n);
      else streams.delete(op.name);
    };
    return streamSSE(c, async (stream) => {
      const queue: { event: string; data: string }[] = [];
      let wake: (() => void) | undefined;
      const push = (event: string, data: unknown) => {
        queue.push({ event, data: JSON.stringify(data) });
        wake?.();
      };
      const off = approvals().store.subscribe((change) => push('approval', change));
      const onRun = (r: RunRecord) => push('run', runEventView(r));
      const executor = rt.runs?.executor;
      executor?.views.on('run', onRun);
      let open = true;
      stream.onAbort(() => {
        open = false;
        wake?.();
      });
      try {
        await stream.writeSSE({ event: 'ready', data: JSON.stringify({ at: iso(rt.now()) }) });
        while (open) {
          while (queue.length && open) await stream.writeSSE(queue.shift()!);
          if (!open) break;
          // A comment line every 15 s keeps proxies from closing an idle stream.
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(r, 15_000).unref();
          });
          wake = undefined;
          if (!queue.length && open) await stream.write(': ping\n\n');
        }
      } finally {
        release();
        off();
        executor?.views.off('run', onRun);
      }
    });
  });
}
