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

export function SpendChart(props: {
  id: string;
  title: string;
  dim: string;
  days: string[];
  series: Series[];
}) {
  const { days, series } = props;
  const dayTotal = (i: number) => series.reduce((s, x) => s + (x.values[i] ?? 0), 0);
  return (
    <section class="chart-block" aria-labelledby={`h-${props.id}`}>
      <h3 id={`h-${props.id}`}>{props.title}</h3>
      <div class="chart" hidden data-chart={props.id}>
        <canvas
          id={`chart-${props.id}`}
          role="img"
          aria-label={`${props.title}: stacked bars per day; the table below has the numbers`}
        />
      </div>
      {series.length ? (
        <div class="scroll">
          <table class="spend" data-table={props.id}>
            <caption class="sr">{props.title}, in US dollars</caption>
            <thead>
              <tr>
                <th scope="col">Day</th>
                {series.map((s) => (
                  <th scope="col" class="num">
                    {label(props.dim, s.key)}
                  </th>
                ))}
                <th scope="col" class="num">
                  Total
                </th>
              </tr>
            </thead>
            <tbody>
              {days.map((d, i) => (
                <tr>
                  <th scope="row">{d}</th>
                  {series.map((s) => (
                    <td class="num">{s.values[i] ? usd(s.values[i]) : '—'}</td>
                  ))}
                  <td class="num">{usd(dayTotal(i))}</td>
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr>
                <th scope="row">All days</th>
                {series.map((s) => (
                  <td class="num">{usd(s.values.reduce((a, b) => a + b, 0))}</td>
                ))}
                <td class="num">{usd(days.reduce((a, _, i) => a + dayTotal(i), 0))}</td>
              </tr>
            </tfoot>
          </table>
        </div>
      ) : (
        <p class="muted">No spend in this period.</p>
      )}
    </section>
  );
}

export function TopTable(props: {
  id: string;
  title: string;
  dim: string;
  rows: SpendRowView[];
  total: number;
}) {
  const rows = props.rows.slice(0, 10);
  return (
    <section aria-labelledby={`h-${props.id}`}>
      <h3 id={`h-${props.id}`}>{props.title}</h3>
      {rows.length ? (
        <div class="scroll">
          <table class="top" data-table={props.id}>
            <thead>
              <tr>
                <th scope="col">{props.dim === 'seat' ? 'Seat' : 'Workflow'}</th>
                <th scope="col" class="num">
                  Spent
                </th>
                <th scope="col" class="num opt">
                  Calls
                </th>
                <th scope="col">Share</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr>
                  <th scope="row">
                    {props.dim === 'workflow' && r.key !== NO_WORKFLOW ? (
                      <a href={budgetHref(`workflow:${r.key}`)}>{r.key}</a>
                    ) : props.dim === 'seat' ? (
                      <a href={budgetHref(`seat:${r.key}`)}>{r.key}</a>
                    ) : (
                      label(props.dim, r.key)
                    )}
                  </th>
                  <td class="num">${r.cost_usd}</td>
                  <td class="num opt">{r.calls}</td>
                  <td>
                    <Bar value={r.cost_micros} max={props.total} label={`${r.key} share of spend`} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="muted">No spend in this period.</p>
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
        scales: { x: { stacked: true }, y: { stacked: true, ticks: { callback: (v) => money(v) } } },
        plugins: { tooltip: { callbacks: { label: (ctx) => ctx.dataset.label + ': ' + money(ctx.parsed.y) } } },
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

export function AlarmTable(props: { id: string; title: string; alarms: AlarmView[] }) {
  const rows = props.alarms.slice(0, 20);
  return (
    <section aria-labelledby={props.id}>
      <h3 id={props.id}>
        {props.title} <small>({props.alarms.length})</small>
      </h3>
      {rows.length ? (
        <div class="scroll">
          <table class="alarms" data-table={props.id}>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">About</th>
                <th scope="col">What</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((a) => (
                <tr>
                  <td>
                    <Time at={a.at} relative />
                  </td>
                  <td>
                    {a.identity?.workflow ? `workflow ${a.identity.workflow}` : a.subject}
                    {a.identity ? (
                      <small>
                        {' '}
                        ({a.identity.team}/{a.identity.env}/{a.identity.seat})
                      </small>
                    ) : null}
                  </td>
                  <td>{a.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="muted">None.</p>
      )}
    </section>
  );
}
