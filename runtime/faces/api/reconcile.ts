import { Hono } from 'hono';
import { AdminReportError } from '../../../adapters/admin-reports.ts';
import type { Services } from '../../compose.ts';
import { invalidRequest, Refusal } from '../../gateway/refusal.ts';
import type { Reconciliation } from '../../reconcile/compare.ts';
import { REPORT_FORMATS, ReportError, type ReportFormat } from '../../reconcile/report.ts';
import { RequestBillError } from '../../reconciler/corrections.ts';
import { ReconcileInputError } from '../../reconciler/service.ts';
import { iso } from '../views/format.ts';
import { type ReconciliationsResponse, reconciliationView } from '../views/reconciliations.ts';
import { type Env, jsonBody, limitParam, requireRole, typeOf } from './common.ts';

const TRIGGERS = ['cli', 'api', 'schedule'] as const;

/**
 * Reconciliations under /api: list and read them (viewer), run one (operator) from a report in
 * the body or, without one, from the provider's Admin API.
 */
export function reconcileApi(rt: Services): Hono<Env> {
  const api = new Hono<Env>();
  const reconciler = () => {
    if (!rt.reconcile) throw new Refusal('not_found', 'reconciliation is not open in this process');
    return rt.reconcile;
  };

  api.get('/reconciliations', async (c) => {
    const r = reconciler();
    const day = c.req.query('day');
    if (day !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(day))
      throw invalidRequest('day', 'expected a date like 2026-01-31');
    const trigger = c.req.query('trigger') as Reconciliation['trigger'] | undefined;
    if (trigger !== undefined && !TRIGGERS.includes(trigger))
      throw invalidRequest('trigger', `expected one of ${TRIGGERS.join(', ')}`);
    const list = await r.reconciler.list({ day, trigger, limit: limitParam(c, 50, 1000) });
    const next = await r.schedule?.next().catch(() => undefined);
    return c.json({
      reconciliations: list.map(reconciliationView),
      schedule: r.schedule ? { kind: r.schedule.kind, next_at: iso(next) } : { kind: 'off', next_at: null },
    } satisfies ReconciliationsResponse);
  });

  api.get('/reconciliations/:id', async (c) => {
    const found = await reconciler().reconciler.get(c.req.param('id'));
    if (!found) throw new Refusal('not_found', `no reconciliation ${c.req.param('id')}`);
    return c.json(reconciliationView(found));
  });

  api.post('/reconciliations', async (c) => {
    const op = requireRole(c, 'operator');
    const r = reconciler();
    const body = await jsonBody(c);
    if (body.day === undefined || body.day === null)
      throw invalidRequest('day', 'required: a UTC date like 2026-01-31');
    if (typeof body.day !== 'string')
      throw invalidRequest('day', `expected a UTC date like 2026-01-31, got ${typeOf(body.day)}`);
    if (body.format !== undefined && !REPORT_FORMATS.includes(body.format as ReportFormat)) {
      throw invalidRequest('format', `expected one of ${REPORT_FORMATS.join(', ')}`);
    }
    if (body.provider !== undefined && body.provider !== null && typeof body.provider !== 'string') {
      throw invalidRequest('provider', `expected a provider's name (anthropic, bedrock, vertex, openai, …)`);
    }
    if (body.requests !== undefined && body.requests !== null && typeof body.requests !== 'string') {
      throw invalidRequest(
        'requests',
        'expected the per-request bill as CSV text (request_id,cost_usd[,at])',
      );
    }
    let report: string | undefined;
    if (typeof body.report === 'string') report = body.report;
    else if (body.report !== undefined && body.report !== null && typeof body.report === 'object')
      report = JSON.stringify(body.report);
    else if (body.report !== undefined && body.report !== null) {
      throw invalidRequest('report', 'expected the report as text (CSV or JSON) or as a JSON object');
    }
    try {
      const result = await r.reconciler.run({
        day: body.day,
        report,
        format: body.format as ReportFormat | undefined,
        ...(typeof body.requests === 'string' ? { requests: body.requests } : {}),
        ...(typeof body.provider === 'string' ? { provider: body.provider } : {}),
        trigger: body.trigger === 'cli' ? 'cli' : 'api',
        actor: op.name,
      });
      return c.json(reconciliationView(result), 201);
    } catch (err) {
      if (err instanceof ReportError) {
        throw new Refusal('invalid_request', `report: ${err.message}`, { field: 'report', at: err.where });
      }
      if (err instanceof ReconcileInputError)
        throw invalidRequest(err.field, err.message.slice(err.field.length + 2));
      if (err instanceof AdminReportError || err instanceof RequestBillError) {
        return c.json(
          {
            type: 'error',
            error: { type: 'api_error', message: `provider report unavailable: ${err.message}` },
            chokepoint: {
              code: 'provider_report_unavailable',
              ...(err instanceof AdminReportError && err.status ? { provider_status: err.status } : {}),
            },
          },
          502,
        );
      }
      throw err;
    }
  });

  return api;
}
