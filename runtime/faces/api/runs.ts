import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import type { Operator } from '../../auth/operators.ts';
import type { Services } from '../../compose.ts';
import { parseDuration } from '../../config/schema.ts';
import { invalidRequest, Refusal } from '../../gateway/refusal.ts';
import { isScopeKey } from '../../identity.ts';
import { tryParseUsd } from '../../money.ts';
import { RUN_STATES, type RunLimits, type RunRecord, type RunState } from '../../store/runs.ts';
import type { RunHost } from '../../workflows/host.ts';
import {
  journalView,
  type RunDetailResponse,
  type RunResponse,
  type RunsResponse,
  runSpendView,
  runView,
} from '../views/runs.ts';
import { type Env, jsonBody, limitParam, requireReason, requireRole } from './common.ts';

/**
 * Workflow runs under /api: list the workflows, start a run (optionally waiting for it), list,
 * inspect, kill and resume runs. Everything goes through `rt.runs` (the `RunHost`); a server that
 * does not host workflows answers 503 on every route here.
 *
 * Shapes (runtime/faces/views/runs.ts): a run; `GET /runs/:id` adds the journal (every completed
 * model and tool call with its ledger id and its result) and the run budget's numbers.
 */

const MAX_WAIT_S = 300;

const scopeKey = (what: string) =>
  z.string().refine(isScopeKey, `${what}: letters, digits, '.', '_', '@' or '-' (at most 128)`);

const startBody = z.strictObject({
  workflow: z.string({ error: 'required: the workflow id (see GET /api/workflows)' }).min(1, 'required'),
  version: z.union([z.string().min(1), z.number().int().nonnegative()]).optional(),
  input: z.record(z.string(), z.unknown(), { error: 'required: the run input, a JSON object' }),
  team: scopeKey('a team name').optional(),
  env: scopeKey('an env name').optional(),
  wait: z
    .number({ error: `expected seconds to wait, 0-${MAX_WAIT_S}` })
    .min(0, `expected seconds to wait, 0-${MAX_WAIT_S}`)
    .max(MAX_WAIT_S, `expected seconds to wait, 0-${MAX_WAIT_S}`)
    .optional(),
  reason: z.string().optional(),
});

const resumeBody = z.strictObject({
  reason: z.string(),
  spend: z.union([z.string(), z.number()]).optional(),
  time: z.string().optional(),
  gate: z.enum(['approve', 'deny'], { error: 'expected approve or deny' }).optional(),
  restartClock: z.boolean({ error: 'expected true or false' }).optional(),
});

/** Parses a body with a schema; the first problem is a 400 naming its field. */
function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    throw invalidRequest([...issue.path.map(String), key].join('.'), 'unknown field');
  }
  throw invalidRequest(issue.path.map(String).join('.') || 'body', issue.message);
}

/** A seat is a scope key; an operator name that is not one is made into one. */
function seatOf(name: string): string {
  const seat = name.replace(/[^A-Za-z0-9._@-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return (seat || 'operator').slice(0, 128);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The run once it stops running, or as it stands after `ms`. A run this process is running is
 * waited on directly; one running elsewhere (another replica) is polled in the store.
 */
async function settled(host: RunHost, id: string, ms: number): Promise<RunRecord> {
  if (ms <= 0) return host.mustGet(id);
  const deadline = Date.now() + ms;
  let r = await host.wait(id, ms);
  // Not live here: queued for a worker (here or elsewhere) or running on another replica. Poll,
  // quickly at first (a queued run is usually picked up within milliseconds), then every 500 ms;
  // once it is live here, wait for it directly.
  let pause = 10;
  while (r.state === 'running' && Date.now() < deadline - 5) {
    if (!host.executor.isLive(id)) {
      await sleep(Math.min(pause, deadline - Date.now()));
      pause = Math.min(500, pause * 2);
    }
    r = await host.wait(id, Math.max(1, deadline - Date.now()));
  }
  return r;
}

function waitParam(c: Context): number {
  const v = c.req.query('wait');
  if (v === undefined || v === '') return 0;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > MAX_WAIT_S)
    throw invalidRequest('wait', `expected seconds to wait, 0-${MAX_WAIT_S}`);
  return n;
}

/**
 * The teams an operator may start runs under: admins any; others those their `auth.operators`
 * entry lists under `teams`, or else only `workflows.runAs.team`. A new team name would otherwise
 * be a fresh team budget at its default ceiling, out from under a team ceiling set to $0.
 */
export function allowedTeams(rt: Services, op: Operator): string[] | 'any' {
  if (op.role === 'admin') return 'any';
  const entry = rt.config.operators.find((o) => o.name === op.name) as { teams?: unknown } | undefined;
  const teams = Array.isArray(entry?.teams)
    ? entry.teams.filter((t): t is string => typeof t === 'string')
    : [];
  return teams.length ? teams : [rt.config.workflows.runAs.team];
}

function checkTeam(rt: Services, op: Operator, team: string): void {
  const allowed = allowedTeams(rt, op);
  if (allowed === 'any' || allowed.includes(team)) return;
  throw new Refusal(
    'forbidden',
    `forbidden: operator '${op.name}' may start runs only under team ${allowed.map((t) => `'${t}'`).join(', ')}, not '${team}' (auth.operators[].teams; admins may use any team)`,
    { field: 'team', allowed_teams: allowed },
  );
}

export function runsApi(rt: Services): Hono<Env> {
  const api = new Hono<Env>();

  const hosted: MiddlewareHandler<Env> = async (c, next) => {
    if (rt.runs) return next();
    const message =
      'this server does not host workflows: start it with `chokepoint serve` (which loads the workflows folder) ' +
      'or point --url at one that does';
    return c.json(
      { type: 'error', error: { type: 'api_error', message }, chokepoint: { code: 'workflows_not_hosted' } },
      503,
      { 'x-should-retry': 'false' },
    );
  };
  api.use('/workflows', hosted);
  api.use('/runs', hosted);
  api.use('/runs/*', hosted);
  runRoutes(api, rt);
  runControlRoutes(api, rt);
  return api;
}

/** The workflows, starting a run (optionally waiting for it), the list, one run. */
function runRoutes(api: Hono<Env>, rt: Services): void {
  const host = () => rt.runs!;
  const budgetOf = (id: string) => rt.store.getBudget(`run:${id}`);

  api.get('/workflows', (c) => {
    requireRole(c, 'viewer');
    return c.json(host().workflows());
  });

  api.post('/runs', async (c) => {
    const op = requireRole(c, 'operator');
    const body = parse(startBody, await jsonBody(c));
    const version = body.version === undefined ? undefined : String(body.version);
    const team = body.team ?? rt.config.workflows.runAs.team;
    checkTeam(rt, op, team);
    const who = {
      team,
      env: body.env ?? rt.config.workflows.runAs.env,
      seat: seatOf(op.name),
    };
    let run = await host().start(body.workflow, body.input, who, { version });
    await rt.store.appendAudit({
      actor: op.name,
      action: 'run.start',
      target: `run:${run.id}`,
      after: { workflow: run.workflow, version: run.version, identity: run.identity, limits: run.limits },
      reason: body.reason?.trim() || `started ${run.workflow}@${run.version}`,
    });
    if (body.wait) run = await settled(host(), run.id, body.wait * 1000);
    return c.json({ run: runView(run, await budgetOf(run.id)) } satisfies RunResponse, 201);
  });

  api.get('/runs', async (c) => {
    requireRole(c, 'viewer');
    const state = c.req.query('state');
    if (state !== undefined && !RUN_STATES.includes(state as RunState)) {
      throw invalidRequest('state', `expected one of ${RUN_STATES.join(', ')}`);
    }
    const page = await host().list({
      workflow: c.req.query('workflow') || undefined,
      state: (state || undefined) as RunState | undefined,
      team: c.req.query('team') || undefined,
      limit: limitParam(c, 50, 1000),
      cursor: c.req.query('cursor') || undefined,
    });
    const budgets = await Promise.all(page.runs.map((r) => budgetOf(r.id)));
    return c.json({
      runs: page.runs.map((r, i) => runView(r, budgets[i])),
      ...(page.next ? { next: page.next } : {}),
    } satisfies RunsResponse);
  });

  api.get('/runs/:id', async (c) => {
    requireRole(c, 'viewer');
    const id = c.req.param('id');
    const run = await settled(host(), id, waitParam(c) * 1000);
    const [journal, budget] = await Promise.all([host().runs.journal(id), budgetOf(id)]);
    return c.json({
      run: runView(run, budget),
      journal: journal.map(journalView),
      spend: runSpendView(id, budget),
    } satisfies RunDetailResponse);
  });
}

/** Killing and resuming a run (operator role, audited). */
function runControlRoutes(api: Hono<Env>, rt: Services): void {
  const host = () => rt.runs!;
  const budgetOf = (id: string) => rt.store.getBudget(`run:${id}`);

  api.post('/runs/:id/kill', async (c) => {
    const op = requireRole(c, 'operator');
    const reason = requireReason(await jsonBody(c));
    const id = c.req.param('id');
    const before = await host().mustGet(id);
    const run = await host().kill(id, { actor: op.name, reason });
    await rt.store.appendAudit({
      actor: op.name,
      action: 'run.kill',
      target: `run:${id}`,
      before: { state: before.state, reason: before.reason },
      after: { state: run.state, reason: run.reason },
      reason,
    });
    return c.json({ run: runView(run, await budgetOf(id)) } satisfies RunResponse);
  });

  api.post('/runs/:id/resume', async (c) => {
    const op = requireRole(c, 'operator');
    const raw = await jsonBody(c);
    const reason = requireReason(raw);
    const body = parse(resumeBody, raw);
    const limits: Partial<RunLimits> = {};
    if (body.spend !== undefined) {
      const micros = tryParseUsd(body.spend);
      if (micros === undefined || micros <= 0 || !Number.isSafeInteger(micros))
        throw invalidRequest(
          'spend',
          `expected a dollar amount like "1.50", got ${JSON.stringify(body.spend)}`,
        );
      limits.spend = micros;
    }
    if (body.time !== undefined) {
      const ms = parseDuration(body.time);
      if (ms === undefined || ms <= 0)
        throw invalidRequest(
          'time',
          `expected a duration like "30s", "10m" or "2h", got ${JSON.stringify(body.time)}`,
        );
      limits.time = ms;
    }
    const id = c.req.param('id');
    const before = await host().mustGet(id);
    const run = await host().resume(id, {
      limits,
      gate: body.gate,
      restartClock: body.restartClock,
      by: { actor: op.name, reason },
    });
    await rt.store.appendAudit({
      actor: op.name,
      action: 'run.resume',
      target: `run:${id}`,
      before: { state: before.state, reason: before.reason, limits: before.limits },
      after: {
        state: run.state,
        limits: run.limits,
        ...(body.gate ? { gate: body.gate } : {}),
        ...(body.restartClock ? { restartClock: true } : {}),
      },
      reason,
    });
    return c.json({ run: runView(run, await budgetOf(id)) } satisfies RunResponse);
  });
}
