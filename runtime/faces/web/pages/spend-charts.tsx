import { NO_WORKFLOW } from '../../../store/records.ts';
import type { AlarmView } from '../../views/alarms.ts';
import type { SpendRowView } from '../../views/spend.ts';
import { Bar, usd } from '../layout.tsx';
import { budgetHref } from './budget-table.tsx';
import { Time } from './parts.tsx';

/**
 * The spend page's parts: a stacked chart per dimension (drawn by CHART_INIT from the page's
 * JSON, with a table of the same numbers for everyone else), the top spenders and the alarms.
 */

const TOP_SERIES = 7;

export interface Series {
  key: string;
  /** µ$ per day, in the order of the days. */
  values: number[];
}

/** The top keys over the range as their own series, the rest summed as `other`. */
export function seriesOf(perDay: SpendRowView[][]): Series[] {
  const totals = new Map<string, number>();
  for (const rows of perDay)
    for (const r of rows) totals.set(r.key, (totals.get(r.key) ?? 0) + r.cost_micros);
  const keys = [...totals].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([k]) => k);
  const shown = keys.length > TOP_SERIES + 1 ? keys.slice(0, TOP_SERIES) : keys;
  const out = shown.map((key) => ({
    key,
    values: perDay.map((rows) => rows.find((r) => r.key === key)?.cost_micros ?? 0),
  }));
  if (shown.length < keys.length) {
    const set = new Set(shown);
    out.push({
      key: 'other',
      values: perDay.map((rows) =>
        rows.filter((r) => !set.has(r.key)).reduce((s, r) => s + r.cost_micros, 0),
      ),
    });
  }
  return out;
}

export const label = (dim: string, key: string) =>
  dim === 'workflow' && key === NO_WORKFLOW ? '(no workflow)' : key;

/** How many rows a top table shows: the page fits a laptop screen whatever the data. */
export const TOP_ROWS = 5;

/**
 * A stacked chart of spend per day (drawn by CHART_INIT from the page's JSON) and, behind a
 * disclosure, the same series as one row each: its total over the period and its share. No row
 * per day: the chart shows the days, the tooltips the numbers.
 */
export function SpendChart(props: { id: string; title: string; dim: string; series: Series[] }) {
  const { series } = props;
  const totals = series.map((s) => ({ s, total: s.values.reduce((a, b) => a + b, 0) }));
  const all = totals.reduce((a, t) => a + t.total, 0);
  return (
    <section class="chart-block" aria-labelledby={`h-${props.id}`}>
      <h3 id={`h-${props.id}`}>{props.title}</h3>
      {series.length ? (
        <>
          <div class="chart" hidden data-chart={props.id}>
            <canvas
              id={`chart-${props.id}`}
              role="img"
              aria-label={`${props.title}: stacked bars per day; the numbers are listed below the chart`}
            />
          </div>
          <details class="numbers">
            <summary>Numbers</summary>
            <table class="spend" data-table={props.id}>
              <caption class="sr">{props.title}: each series over the period, in US dollars</caption>
              <thead>
                <tr>
                  <th scope="col">
                    {props.dim === 'model' ? 'Model' : props.dim[0]!.toUpperCase() + props.dim.slice(1)}
                  </th>
                  <th scope="col" class="num">
                    Spent
                  </th>
                  <th scope="col" class="num">
                    Share
                  </th>
                  <th scope="col" class="num">
                    Days with spend
                  </th>
                </tr>
              </thead>
              <tbody>
                {totals.map(({ s, total }) => (
                  <tr data-series={s.key}>
                    <th scope="row">{label(props.dim, s.key)}</th>
                    <td class="num">{usd(total)}</td>
                    <td class="num">{all > 0 ? `${Math.round((100 * total) / all)}%` : ''}</td>
                    <td class="num">{s.values.filter((v) => v > 0).length}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        </>
      ) : (
        <p class="muted">No spend in this period.</p>
      )}
    </section>
  );
}

const TOP_HEAD: Record<string, string> = { seat: 'Seat', workflow: 'Workflow', model: 'Model', tool: 'Tool' };

function TopName(props: { dim: string; k: string }) {
  const { dim, k } = props;
  if (dim === 'workflow' && k !== NO_WORKFLOW) return <a href={budgetHref(`workflow:${k}`)}>{k}</a>;
  if (dim === 'seat') return <a href={budgetHref(`seat:${k}`)}>{k}</a>;
  if (dim === 'tool') return <>{k.replace(/^tool:/, '')}</>;
  return <>{label(dim, k)}</>;
}

/** The top rows of one dimension over the period (most spent first), and a line for the rest. */
export function TopTable(props: {
  id: string;
  title: string;
  dim: 'seat' | 'workflow' | 'model' | 'tool';
  rows: SpendRowView[];
  total: number;
  /** What to say when there are no rows. */
  empty?: string;
}) {
  const rows = props.rows.slice(0, TOP_ROWS);
  const rest = props.rows.slice(TOP_ROWS);
  const restCost = rest.reduce((a, r) => a + r.cost_micros, 0);
  return (
    <section aria-labelledby={`h-${props.id}`}>
      <h3 id={`h-${props.id}`}>
        {props.title} <small>({props.rows.length})</small>
      </h3>
      {rows.length ? (
        <table class="top" data-table={props.id}>
          <thead>
            <tr>
              <th scope="col">{TOP_HEAD[props.dim]}</th>
              <th scope="col" class="num">
                Spent
              </th>
              <th scope="col" class="num">
                Calls
              </th>
              <th scope="col">Share</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr data-key={r.key}>
                <th scope="row">
                  <TopName dim={props.dim} k={r.key} />
                </th>
                <td class="num">{r.cost_micros ? `$${r.cost_usd}` : 'free'}</td>
                <td class="num">{r.calls}</td>
                <td>
                  <Bar value={r.cost_micros} max={props.total} label={`${r.key} share of spend`} share />
                </td>
              </tr>
            ))}
          </tbody>
          {rest.length ? (
            <tfoot>
              <tr>
                <th scope="row" colspan={4} class="muted">
                  and {rest.length} more ({usd(restCost)})
                </th>
              </tr>
            </tfoot>
          ) : null}
        </table>
      ) : (
        <p class="muted">{props.empty ?? 'No spend in this period.'}</p>
      )}
    </section>
  );
}

/** Draws the charts from #spend-data with window.Chart; the tables stay for the numbers. */
export const CHART_INIT = `
(() => {
  const el = document.getElementById('spend-data');
  if (!el || !window.Chart) return;
  const data = JSON.parse(el.textContent);
  const colours = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#8B6F00', '#1b1f24'];
  const money = (v) => '$' + (v >= 1 || v === 0 ? v.toFixed(2) : v.toPrecision(2));
  for (const c of data.charts) {
    const box = document.querySelector('[data-chart="' + c.id + '"]');
    const canvas = document.getElementById('chart-' + c.id);
    if (!box || !canvas || !c.series.length) continue;
    box.hidden = false;
    new window.Chart(canvas, {
      type: 'bar',
      data: {
        labels: data.days,
        datasets: c.series.map((s, i) => ({
          label: s.label,
          data: s.values.map((m) => m / 1e6),
          backgroundColor: s.key === 'other' ? '#8c959f' : colours[i % colours.length],
        })),
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          // Month-day, level: rotated full dates made each chart a third taller.
          x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true, callback: (v) => String(data.days[v] ?? v).slice(5) } },
          y: { stacked: true, ticks: { callback: (v) => money(v) } },
        },
        plugins: {
          legend: { position: 'bottom', labels: { boxWidth: 12, font: { size: 11 } } },
          tooltip: { callbacks: { label: (ctx) => ctx.dataset.label + ': ' + money(ctx.parsed.y) } },
        },
      },
    });
  }
})();
`;

/** JSON inside a <script> element: nothing in it may close the element. */
export const scriptJson = (v: unknown) =>
  JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

const ALARM_KIND: Record<string, string> = {
  cache_hit_rate: 'cache',
  prefix_drift: 'prefix drift',
  reconciliation: 'reconciliation',
  budget_near_ceiling: 'budget',
};

/** The latest alarms of every kind in one short table; the heading counts them by kind. */
export function AlarmTable(props: { alarms: AlarmView[]; since: number }) {
  const recent = props.alarms.filter((a) => Date.parse(a.at) >= props.since);
  const rows = recent.slice(0, TOP_ROWS);
  const counts = new Map<string, number>();
  for (const a of recent) counts.set(a.kind, (counts.get(a.kind) ?? 0) + 1);
  return (
    <section aria-labelledby="alarms">
      <h2 id="alarms">
        Alarms{' '}
        <small data-alarm-counts>
          {recent.length
            ? `(${[...counts].map(([k, n]) => `${n} ${ALARM_KIND[k] ?? k.replace(/_/g, ' ')}`).join(', ')})`
            : '(none in this period)'}
        </small>
      </h2>
      {rows.length ? (
        <div class="scroll">
          <table class="alarms" data-table="alarms">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Kind</th>
                <th scope="col">About</th>
                <th scope="col">What</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((a) => (
                <tr data-kind={a.kind}>
                  <td>
                    <Time at={a.at} relative />
                  </td>
                  <td>{ALARM_KIND[a.kind] ?? a.kind.replace(/_/g, ' ')}</td>
                  <td>
                    {a.identity?.workflow ? `workflow ${a.identity.workflow}` : a.subject}
                    {a.identity ? (
                      <small>
                        {' '}
                        ({a.identity.team}/{a.identity.env}/{a.identity.seat})
                      </small>
                    ) : null}
                  </td>
                  <td class="what">{a.message}</td>
                </tr>
              ))}
            </tbody>
            {recent.length > rows.length ? (
              <tfoot>
                <tr>
                  <th scope="row" colspan={4} class="muted">
                    and {recent.length - rows.length} older in this period
                  </th>
                </tr>
              </tfoot>
            ) : null}
          </table>
        </div>
      ) : null}
    </section>
  );
}
