import { Hono } from 'hono';
import type { Services } from '../../compose.ts';
import { ALARM_KINDS, type AlarmKind } from '../../events.ts';
import { invalidRequest, Refusal } from '../../gateway/refusal.ts';
import { parseScope, SCOPE_KINDS, ScopeError, type ScopeKind } from '../../identity.ts';
import { type Outcome, SPEND_DIMENSIONS, type SpendDimension } from '../../store/port.ts';
import { alarmView } from '../views/alarms.ts';
import { auditView } from '../views/audit.ts';
import {
  type BudgetChangedResponse,
  type BudgetResponse,
  type BudgetsResponse,
  budgetDefaultsView,
  budgetView,
  type RateLimitView,
  rateLimitView,
  unsetBudgetView,
} from '../views/budgets.ts';
import { iso } from '../views/format.ts';
import { killSwitchView } from '../views/kill-switches.ts';
import { ledgerView } from '../views/ledger.ts';
import { cacheHealthView, type SpendResponse, spendRowView } from '../views/spend.ts';
import {
  amountField,
  type Env,
  jsonBody,
  limitParam,
  requireReason,
  requireRole,
  timeParam,
  typeOf,
} from './common.ts';

/**
 * A scope from the path (Hono has already decoded it) or the query: never decoded a second time,
 * so `%25` is the scope `%` (refused as a scope), and a value that did not decode is a 400.
 */
function scopeParam(raw: string, field = 'scope'): string {
  const scope = raw;
  if (/%(?![0-9A-Fa-f]{2})/.test(scope) || /%[0-9A-Fa-f]{2}/.test(scope)) {
    let decodes = true;
    try {
      decodeURIComponent(scope);
    } catch {
      decodes = false;
    }
    if (!decodes)
      throw invalidRequest(field, `bad percent-encoding in ${JSON.stringify(scope.slice(0, 140))}`);
  }
  try {
    parseScope(scope);
  } catch (err) {
    throw invalidRequest(field, err instanceof ScopeError ? err.message : String(err));
  }
  return scope;
}

const DIMENSIONS: readonly SpendDimension[] = SPEND_DIMENSIONS;
const OUTCOMES: Outcome[] = ['ok', 'refused', 'error', 'expired', 'corrected'];

/** Budgets, kill switches, ledger, spend, audit and alarms under /api. */
export function moneyApi(rt: Services): Hono<Env> {
  const api = new Hono<Env>();
  budgetRoutes(api, rt);
  killSwitchRoutes(api, rt);
  ledgerRoutes(api, rt);
  return api;
}

/** Budgets: list, read (never creating one), set a ceiling, freeze and unfreeze (admin). */
function budgetRoutes(api: Hono<Env>, rt: Services): void {
  api.get('/budgets', async (c) => {
    const kind = c.req.query('kind');
    if (kind !== undefined && !SCOPE_KINDS.includes(kind as ScopeKind)) {
      throw invalidRequest('kind', `expected one of ${SCOPE_KINDS.join(', ')}`);
    }
    const budgets = await rt.store.listBudgets(kind ? { kind: kind as ScopeKind } : undefined);
    // Rate limits (budgets of requests, tokens, calls in flight) beside the money, unfiltered only.
    const rates = kind ? undefined : await rt.store.listBudgets({ rates: true });
    const full = (b: RateLimitView) => (b.limit > 0 ? (b.used + b.in_flight) / b.limit : 1);
    return c.json({
      budgets: budgets.map(budgetView),
      defaults: budgetDefaultsView(rt.config.budgets.defaults),
      ...(rates
        ? {
            rate_limits: rates.map(rateLimitView).sort((a, b) => full(b) - full(a)),
            rate_limits_configured: rt.config.rateLimits.map(({ scope, unit, limit, window }) => ({
              scope,
              unit,
              limit,
              window,
            })),
          }
        : {}),
    } satisfies BudgetsResponse);
  });

  // A read never creates a budget: a scope without one answers the defaults that would apply to
  // it, with `created: false` and no id (the inbox shows it and lets an admin set a ceiling).
  api.get('/budgets/:ref', async (c) => {
    const ref = c.req.param('ref');
    if (ref.startsWith('bgt_')) {
      const b = await rt.store.getBudget(ref);
      if (!b) throw new Refusal('not_found', `no budget ${JSON.stringify(ref)}`);
      const audit = await rt.store.listAudit({ target: b.scope, limit: 50 });
      return c.json({ budget: { ...budgetView(b), created: true }, audit } satisfies BudgetResponse);
    }
    const scope = scopeParam(ref);
    const b = await rt.store.getBudget(scope);
    const audit = await rt.store.listAudit({ target: scope, limit: 50 });
    if (b) return c.json({ budget: { ...budgetView(b), created: true }, audit } satisfies BudgetResponse);
    const spec = rt.config.budgets.defaults[parseScope(scope).kind];
    return c.json({ budget: unsetBudgetView(scope, spec), audit } satisfies BudgetResponse);
  });

  api.post('/budgets/:scope/ceiling', async (c) => {
    const op = requireRole(c, 'admin');
    const body = await jsonBody(c);
    const amount = amountField(body, 'amount');
    const reason = requireReason(body);
    const scope = scopeParam(c.req.param('scope'));
    await rt.store.ensureBudget(scope);
    const b = await rt.store.setCeiling(scope, amount, { actor: op.name, reason });
    return c.json({ budget: budgetView(b) } satisfies BudgetChangedResponse);
  });

  for (const [path, frozen] of [
    ['freeze', true],
    ['unfreeze', false],
  ] as const) {
    api.post(`/budgets/:scope/${path}`, async (c) => {
      const op = requireRole(c, 'admin');
      const reason = requireReason(await jsonBody(c));
      const scope = scopeParam(c.req.param('scope'));
      await rt.store.ensureBudget(scope);
      const b = await rt.store.setFrozen(scope, frozen, { actor: op.name, reason });
      return c.json({ budget: budgetView(b) } satisfies BudgetChangedResponse);
    });
  }
}

function killSwitchRoutes(api: Hono<Env>, rt: Services): void {
  api.get('/kill-switches', async (c) => {
    const kills = await rt.store.listKills();
    return c.json({ kill_switches: kills.map(killSwitchView) });
  });

  api.post('/kill-switches', async (c) => {
    const op = requireRole(c, 'operator');
    const body = await jsonBody(c);
    if (body.scope === undefined || body.scope === null)
      throw invalidRequest('scope', 'required: global, team:<key>, env:<key>, ...');
    if (typeof body.scope !== 'string')
      throw invalidRequest('scope', `expected a string like global or team:<key>, got ${typeOf(body.scope)}`);
    const scope = scopeParam(body.scope);
    const k = await rt.store.setKill(scope, { actor: op.name, reason: requireReason(body) });
    return c.json({ kill_switch: killSwitchView(k) }, 201);
  });

  api.post('/kill-switches/:scope/lift', async (c) => {
    const op = requireRole(c, 'operator');
    const reason = requireReason(await jsonBody(c));
    const lifted = await rt.store.liftKill(scopeParam(c.req.param('scope')), { actor: op.name, reason });
    return c.json({ lifted });
  });
}

/** What was spent: the ledger, spend grouped by a dimension, cache health, the audit log, alarms. */
function ledgerRoutes(api: Hono<Env>, rt: Services): void {
  api.get('/ledger', async (c) => {
    const outcome = c.req.query('outcome');
    if (outcome !== undefined && !OUTCOMES.includes(outcome as Outcome)) {
      throw invalidRequest('outcome', `expected one of ${OUTCOMES.join(', ')}`);
    }
    const kind = c.req.query('kind');
    if (kind !== undefined && kind !== 'model' && kind !== 'tool')
      throw invalidRequest('kind', 'expected model or tool');
    const scope = c.req.query('scope');
    const entries = await rt.store.listLedger({
      scope: scope ? scopeParam(scope) : undefined,
      run: c.req.query('run'),
      kind: kind as 'model' | 'tool' | undefined,
      outcome: outcome as Outcome | undefined,
      since: timeParam(c, 'since'),
      until: timeParam(c, 'until'),
      limit: limitParam(c),
    });
    return c.json({ entries: entries.map(ledgerView) });
  });

  api.get('/spend', async (c) => {
    const by = (c.req.query('by') ?? 'team') as SpendDimension;
    if (!DIMENSIONS.includes(by)) throw invalidRequest('by', `expected one of ${DIMENSIONS.join(', ')}`);
    const until = timeParam(c, 'until', rt.now())!;
    const since = timeParam(c, 'since', until - 30 * 86_400_000)!;
    const scope = c.req.query('scope');
    const rows = await rt.store.spend({ by, since, until, scope: scope ? scopeParam(scope) : undefined });
    return c.json({
      by,
      since: iso(since),
      until: iso(until),
      rows: rows.map(spendRowView),
    } satisfies SpendResponse);
  });

  // Cache health per workflow, as this process saw it since it started (in memory).
  api.get('/cache-health', (c) => {
    return c.json({
      since: iso(rt.streams.since),
      workflows: rt.streams
        .cacheHealth()
        .sort((a, b) => b.inputTokens - a.inputTokens)
        .map(cacheHealthView),
    });
  });

  api.get('/audit', async (c) => {
    const entries = await rt.store.listAudit({
      target: c.req.query('target'),
      since: timeParam(c, 'since'),
      until: timeParam(c, 'until'),
      limit: limitParam(c),
    });
    return c.json({ entries: entries.map(auditView) });
  });

  api.get('/alarms', async (c) => {
    const kind = c.req.query('kind') as AlarmKind | undefined;
    if (kind !== undefined && !ALARM_KINDS.includes(kind)) {
      throw invalidRequest('kind', `expected one of ${ALARM_KINDS.join(', ')}`);
    }
    const alarms = await rt.events.list({ kind, limit: limitParam(c) });
    return c.json({ alarms: alarms.map(alarmView) });
  });
}
