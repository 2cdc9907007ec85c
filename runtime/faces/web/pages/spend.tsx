import type { Context } from 'hono';
import { Hono } from 'hono';
import { raw } from 'hono/html';
import { NO_WORKFLOW } from '../../../store/records.ts';
import { daysBetween, dayWindow } from '../../../store/windows.ts';
import type { AlarmsResponse } from '../../views/alarms.ts';
import type { BudgetsResponse } from '../../views/budgets.ts';
import type { CacheHealthResponse, SpendResponse, SpendRowView } from '../../views/spend.ts';
import type { WorkflowsResponse } from '../../views/workflows.ts';
import type { Web, WebEnv } from '../app.tsx';
import { Layout, type PageContext, usd } from '../layout.tsx';
import { BudgetTable, utilisation } from './budget-table.tsx';
import { msOf, pct, Time } from './parts.tsx';
import { AlarmTable, label, SpendChart, scriptJson, seriesOf, TopTable } from './spend-charts.tsx';

/**
 * Spend: per day by team, workflow, model and provider (the ledger's provider: anthropic, bedrock,
 * vertex, openai by config name) over a period, the top seats and workflows, the
 * cache hit rate per workflow against what its prefixes allow, the alarms, and the budgets near
 * their ceiling. Every number is read through the operator API.
 */

const DAY_CHOICES = [1, 7, 14, 30, 90];
const MAX_DAYS = 90;

export function spendPages(web: Web): Hono<WebEnv> {
  const app = new Hono<WebEnv>();
  app.get('/spend', async (c) => {
    const asked = Number(c.req.query('days') ?? 30);
    const days = Number.isInteger(asked) && asked >= 1 ? Math.min(asked, MAX_DAYS) : 30;
    return c.html(<SpendPage page={c.get('page')} days={days} s={await loadSpend(web, c, days)} />);
  });
  return app;
}

type Spend = Awaited<ReturnType<typeof loadSpend>>;

/** Everything the page shows, read through the API: one query per day and dimension with spend. */
async function loadSpend(web: Web, c: Context<WebEnv>, days: number) {
  const tz = web.rt.config.budgets.timeZone;
  const now = web.rt.now();
  // Whole local days in the store's time zone (the same days the spend rollups use).
  const windows = daysBetween(dayWindow(now - (days - 1) * 86_400_000, tz).start, now + 1, tz);
  const since = windows[0]!.start;
  const until = windows[windows.length - 1]!.resetsAt ?? now + 1;
  const spend = (by: string, from: number, to: number) =>
    web.get<SpendResponse>(c, `/api/spend?by=${by}&since=${from}&until=${to}`).then((r) => r.rows);
  // One query per day and dimension, only for the days that had any spend (one query finds them).
  const spentOn = new Set(
    (await spend('day', since, until)).filter((r) => r.calls > 0 || r.cost_micros > 0).map((r) => r.key),
  );
  const perDay = (by: string) =>
    Promise.all(
      windows.map((w) =>
        spentOn.has(w.key) ? spend(by, w.start, w.resetsAt ?? until) : Promise.resolve([]),
      ),
    );

  const [byTeam, byWorkflow, byModel, seats, workflowsRange, alarmsAnswer, budgetsAnswer, workflowsAnswer] =
    await Promise.all([
      perDay('team'),
      perDay('workflow'),
      perDay('model'),
      spend('seat', since, until),
      spend('workflow', since, until),
      web.get<AlarmsResponse>(c, '/api/alarms?limit=200'),
      web.get<BudgetsResponse>(c, '/api/budgets'),
      web.rt.runs
        ? web.get<WorkflowsResponse>(c, '/api/workflows')
        : Promise.resolve({ workflows: [] as WorkflowsResponse['workflows'] }),
    ]);
  const [health, byProvider] = await Promise.all([
    web.get<CacheHealthResponse>(c, '/api/cache-health'),
    perDay('provider'),
  ]);
  const expectedOf = (wf: string) => health.workflows.find((h) => h.workflow === wf);

  const dayKeys = windows.map((w) => w.key);
  const charts = [
    { id: 'team', dim: 'team', title: 'Spend per day by team', series: seriesOf(byTeam) },
    { id: 'workflow', dim: 'workflow', title: 'Spend per day by workflow', series: seriesOf(byWorkflow) },
    { id: 'model', dim: 'model', title: 'Spend per day by model', series: seriesOf(byModel) },
    { id: 'provider', dim: 'provider', title: 'Spend per day by provider', series: seriesOf(byProvider) },
  ];
  const total = seats.reduce((s, r) => s + r.cost_micros, 0);
  const calls = seats.reduce((s, r) => s + r.calls, 0);
  const corrections = seats.reduce((s, r) => s + (r.corrections ?? 0), 0);
  const corrected = seats.reduce((s, r) => s + (r.correctedCost ?? 0), 0);
  const data = {
    days: dayKeys,
    since: new Date(since).toISOString(),
    until: new Date(until).toISOString(),
    timeZone: tz,
    charts: charts.map((ch) => ({
      id: ch.id,
      title: ch.title,
      series: ch.series.map((s) => ({ key: s.key, label: label(ch.dim, s.key), values: s.values })),
    })),
  };

  // Cache health per workflow: the observed rate, and the latest cache alarm for it.
  const alarms = alarmsAnswer.alarms;
  const cacheAlarms = alarms.filter((a) => a.kind === 'cache_hit_rate');
  const driftAlarms = alarms.filter((a) => a.kind === 'prefix_drift');
  const budgetAlarms = alarms.filter((a) => a.kind.startsWith('budget_'));
  const otherAlarms = alarms.filter(
    (a) => a.kind !== 'cache_hit_rate' && a.kind !== 'prefix_drift' && !a.kind.startsWith('budget_'),
  );
  const workflowIds = new Set(workflowsAnswer.workflows.map((w) => w.id));
  const cacheRows = [
    ...workflowsRange,
    ...[...workflowIds]
      .filter((id) => !workflowsRange.some((r) => r.key === id))
      .map(
        (id) => ({ key: id, calls: 0, cost_micros: 0, cost_usd: '0.00', cache_hit_rate: 0 }) as SpendRowView,
      ),
  ];
  const lastCacheAlarm = (wf: string) =>
    cacheAlarms.find((a) => (a.identity?.workflow ?? NO_WORKFLOW) === wf && msOf(a.at) >= since);
  const nearCeiling = budgetsAnswer.budgets
    .filter((b) => utilisation(b) >= 0.8)
    .sort((a, b) => utilisation(b) - utilisation(a));
  return {
    tz,
    since,
    dayKeys,
    charts,
    data,
    total,
    calls,
    corrections,
    corrected,
    seats,
    workflowsRange,
    health,
    expectedOf,
    cacheRows,
    lastCacheAlarm,
    cacheAlarms,
    driftAlarms,
    budgetAlarms,
    otherAlarms,
    nearCeiling,
  };
}

function SpendPage(props: { page: PageContext; days: number; s: Spend }) {
  const { page, days } = props;
  const { tz, dayKeys, charts, data, total, calls, seats, workflowsRange, health, cacheRows } = props.s;
  const { corrections, corrected } = props.s;
  const { cacheAlarms, driftAlarms, budgetAlarms, otherAlarms, nearCeiling } = props.s;
  return (
    <Layout title="Spend" active="/spend" page={page}>
      <form method="get" action="/spend" class="filters" aria-label="Choose the period">
        <label>
          <span>Period</span>
          <select name="days">
            {[...new Set([...DAY_CHOICES, days])]
              .sort((a, b) => a - b)
              .map((d) => (
                <option value={String(d)} selected={d === days}>
                  {d === 1 ? 'today' : `last ${d} days`}
                </option>
              ))}
          </select>
        </label>
        <button type="submit">Show</button>
      </form>
      <p class="summary">
        <strong>{usd(total)}</strong> over {calls} calls, {dayKeys[0]} to {dayKeys[dayKeys.length - 1]} ({tz}
        ).
        {corrections > 0 ? (
          <span class="muted" id="corrections">
            {' '}
            Includes {corrections} expired worst-case charge{corrections === 1 ? '' : 's'} corrected by
            reconciliation to the provider's bill ({corrected < 0 ? '-' : '+'}
            {usd(Math.abs(corrected))}).
          </span>
        ) : null}
      </p>

      <h2 id="per-day">Spend per day</h2>
      {raw(`<script type="application/json" id="spend-data">${scriptJson(data)}</script>`)}
      <div class="charts">
        {charts.map((ch) => (
          <SpendChart id={ch.id} title={ch.title} dim={ch.dim} days={dayKeys} series={ch.series} />
        ))}
      </div>

      <h2 id="top">Top spenders</h2>
      <div class="charts">
        <TopTable id="top-seats" title="Seats" dim="seat" rows={seats} total={total} />
        <TopTable id="top-workflows" title="Workflows" dim="workflow" rows={workflowsRange} total={total} />
      </div>

      <h2 id="cache">Cache hit rate per workflow</h2>
      <p class="muted">
        Observed: cached input tokens read ÷ all input tokens over the period. Expected: the share of the
        input each call's stable prefix allowed the cache to read, against what it read, as this server saw it
        since it started ({health.since.slice(0, 16).replace('T', ' ')} UTC). A cache alarm is raised when a
        stream reads far less than its prefix allows; the last one is shown.
      </p>
      <CacheTable rows={cacheRows} s={props.s} />

      <h2 id="alarms">Alarms</h2>
      <AlarmTable id="alarms-cache" title="Cache" alarms={cacheAlarms} />
      <AlarmTable id="alarms-drift" title="Prefix drift" alarms={driftAlarms} />
      {budgetAlarms.length ? (
        <AlarmTable id="alarms-budget" title="Budget alerts" alarms={budgetAlarms} />
      ) : null}
      {otherAlarms.length ? <AlarmTable id="alarms-other" title="Other" alarms={otherAlarms} /> : null}
      <section aria-labelledby="near-ceiling">
        <h3 id="near-ceiling">Budgets over 80% of their ceiling</h3>
        {nearCeiling.length ? (
          <BudgetTable budgets={nearCeiling} caption="Budgets over 80% of their ceiling" />
        ) : (
          <p class="muted">None: every budget is under 80% of its ceiling.</p>
        )}
      </section>
      <script src="/assets/chart.js" />
      <script src="/assets/spend.js" />
    </Layout>
  );
}

function CacheTable(props: { rows: SpendRowView[]; s: Pick<Spend, 'expectedOf' | 'lastCacheAlarm'> }) {
  const { rows: cacheRows } = props;
  const { expectedOf, lastCacheAlarm } = props.s;
  return cacheRows.length ? (
    <div class="scroll">
      <table class="cache" aria-labelledby="cache">
        <thead>
          <tr>
            <th scope="col">Workflow</th>
            <th scope="col" class="num">
              Calls
            </th>
            <th scope="col" class="num">
              Observed hit rate
            </th>
            <th scope="col" class="num">
              Expected / seen (since start)
            </th>
            <th scope="col">Against the prefix</th>
          </tr>
        </thead>
        <tbody>
          {cacheRows.map((r) => {
            const a = lastCacheAlarm(r.key);
            const d = a?.details as { expectedRead?: number; actualRead?: number } | undefined;
            return (
              <tr data-workflow={r.key}>
                <th scope="row">{label('workflow', r.key)}</th>
                <td class="num">{r.calls}</td>
                <td class="num">{r.calls ? pct(r.cache_hit_rate) : '—'}</td>
                <td class="num" data-expected>
                  {(() => {
                    const h = expectedOf(r.key);
                    return h && h.expected_hit_rate !== null
                      ? `${pct(h.expected_hit_rate)} / ${pct(h.actual_hit_rate ?? 0)}`
                      : '—';
                  })()}
                </td>
                <td>
                  {a ? (
                    <span class="alarm">
                      <span class="state alarmed">alarm</span> <Time at={a.at} relative />: read{' '}
                      {d?.actualRead ?? '?'} of {d?.expectedRead ?? '?'} cacheable tokens
                      {d?.expectedRead ? ` (${pct((d.actualRead ?? 0) / d.expectedRead)})` : ''}
                    </span>
                  ) : r.calls ? (
                    <span class="state ok">no alarm</span>
                  ) : (
                    <span class="muted">no calls</span>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  ) : (
    <p class="muted">No workflow calls in this period.</p>
  );
}
