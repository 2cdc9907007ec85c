import type { BudgetView, RateLimitView } from '../../views/budgets.ts';
import { Bar } from '../layout.tsx';
import { enc, StateBadge, Time } from './parts.tsx';

/** The budgets table (the budgets page, and the spend page's budgets near their ceiling). */

export const budgetHref = (scope: string) => `/budgets/${enc(scope)}`;
export const used = (b: BudgetView) => b.spent_micros + b.reserved_micros;
/** Share of the ceiling spent or held; a zero ceiling counts as full. */
export const utilisation = (b: BudgetView) => (b.ceiling_micros > 0 ? used(b) / b.ceiling_micros : 1);
export const windowWord = (w: string) =>
  ({ day: 'daily', month: 'monthly', total: 'total (never resets)' })[w] ?? `rolling ${w}`;

function BudgetRow(props: { b: BudgetView }) {
  const { b } = props;
  return (
    <tr data-scope={b.scope}>
      <th scope="row">
        <a href={budgetHref(b.scope)}>{b.scope}</a>
      </th>
      <td>
        <StateBadge state={b.state} />
      </td>
      <td>
        <Bar value={used(b)} max={b.ceiling_micros} label={`${b.scope} used`} />
      </td>
      <td class="num opt">${b.spent_usd}</td>
      <td class="num opt">${b.reserved_usd}</td>
      <td class="num">${b.ceiling_usd}</td>
      <td class="opt">{windowWord(b.window)}</td>
      <td class="opt">{b.resets_at ? <Time at={b.resets_at} relative /> : 'never'}</td>
    </tr>
  );
}

export function BudgetTable(props: { budgets: BudgetView[]; caption: string }) {
  return (
    <div class="scroll">
      <table>
        <caption class="sr">{props.caption}</caption>
        <thead>
          <tr>
            <th scope="col">Scope</th>
            <th scope="col">State</th>
            <th scope="col">Used (spent + reserved)</th>
            <th scope="col" class="num opt">
              Spent
            </th>
            <th scope="col" class="num opt">
              Reserved
            </th>
            <th scope="col" class="num">
              Ceiling
            </th>
            <th scope="col" class="opt">
              Window
            </th>
            <th scope="col" class="opt">
              Resets
            </th>
          </tr>
        </thead>
        <tbody>
          {props.budgets.map((b) => (
            <BudgetRow b={b} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

const UNIT_WORD: Record<string, string> = {
  requests: 'requests',
  input_tokens: 'input tokens',
  output_tokens: 'output tokens',
  concurrent: 'calls in flight',
};

/** Rate limits in use: budgets of requests, tokens or calls in flight per rolling window. */
export function RateLimitTable(props: { limits: RateLimitView[] }) {
  return (
    <div class="scroll">
      <table aria-labelledby="rate-limits">
        <thead>
          <tr>
            <th scope="col">Scope</th>
            <th scope="col">Unit</th>
            <th scope="col">Used (in window + in flight)</th>
            <th scope="col" class="num">
              Limit
            </th>
            <th scope="col" class="opt">
              Window
            </th>
          </tr>
        </thead>
        <tbody>
          {props.limits.map((r) => (
            <tr data-rate={`${r.scope} ${r.unit}`}>
              <th scope="row">{r.scope}</th>
              <td>{UNIT_WORD[r.unit] ?? r.unit}</td>
              <td>
                <Bar value={r.used + r.in_flight} max={r.limit} label={`${r.scope} ${r.unit} used`} />{' '}
                {r.used} + {r.in_flight}
              </td>
              <td class="num">{r.limit}</td>
              <td class="opt">{r.unit === 'concurrent' ? 'at once' : `rolling ${r.window}`}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
