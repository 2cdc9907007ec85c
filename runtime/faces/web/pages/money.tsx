import { Hono } from 'hono';
import { raw } from 'hono/html';
import { roleAtLeast } from '../../../auth/operators.ts';
import { daysBetween, dayWindow } from '../../../budgets/windows.ts';
import { SCOPE_KINDS } from '../../../identity.ts';
import { NO_WORKFLOW } from '../../../store/records.ts';
import type { Web, WebEnv } from '../app.tsx';
import { ActionForm, ago, Bar, duration, Layout, type PageContext, ReasonField, usd } from '../layout.tsx';

/**
 * Budgets, kill switches, spend and keys: the money side of the control room. Every number comes
 * from the operator API (read as the session's operator) and every change goes through it, so
 * the roles, the checks and the audit entries are the API's own.
 */

// ---- what the API answers -------------------------------------------------------------------

interface BudgetView {
  /** null (with `created: false`) for a scope with no budget yet: the defaults that would apply. */
  id: string | null;
  created?: boolean;
  scope: string;
  owner: string;
  window: string;
  state: 'active' | 'exhausted' | 'frozen';
  ceiling_usd: string;
  spent_usd: string;
  reserved_usd: string;
  ceiling_micros: number;
  spent_micros: number;
  reserved_micros: number;
  window_start: string | null;
  resets_at: string | null;
  created_at: string | null;
  updated_at: string | null;
}

interface AuditView {
  id: string;
  /** ms since epoch from /api/budgets/:scope, ISO from /api/audit. */
  at: number | string;
  actor: string;
  action: string;
  target: string;
  before?: unknown;
  after?: unknown;
  reason: string;
}

interface KillView {
  scope: string;
  reason: string;
  actor: string;
  at: string;
}

interface SpendRowView {
  key: string;
  cost_micros: number;
  cost_usd: string;
  calls: number;
  tokens: { input: number; cacheWrite5m: number; cacheWrite1h: number; cacheRead: number; output: number };
  cache_hit_rate: number;
}

interface AlarmView {
  id: string;
  at: string;
  kind: string;
  subject: string;
  message: string;
  details: Record<string, unknown>;
  identity?: { team: string; env: string; seat: string; workflow?: string; run?: string };
}

interface KeyView {
  id: string;
  team: string;
  env: string;
  seat: string;
  workflow?: string;
  label?: string;
  driftPolicy?: string;
  sessionTimeBox?: number;
  sessionGap?: number;
  createdAt: string;
  revokedAt: string | null;
}

// ---- small helpers --------------------------------------------------------------------------

const enc = encodeURIComponent;
const budgetHref = (scope: string) => `/budgets/${enc(scope)}`;
const msOf = (at: number | string | null | undefined) =>
  at === null || at === undefined ? Number.NaN : typeof at === 'number' ? at : Date.parse(at);

/** `2026-11-24 15:24 UTC`: absolute, for audit trails and resets. */
function when(at: number | string | null | undefined): string {
  const ms = msOf(at);
  return Number.isFinite(ms) ? `${new Date(ms).toISOString().replace('T', ' ').slice(0, 16)} UTC` : '—';
}

function Time(props: { at: number | string | null | undefined; relative?: boolean }) {
  const ms = msOf(props.at);
  if (!Number.isFinite(ms)) return <span>—</span>;
  const iso = new Date(ms).toISOString();
  return (
    <time datetime={iso} title={when(ms)}>
      {props.relative ? ago(ms) : when(ms)}
    </time>
  );
}

const pct = (rate: number) => `${Math.round(rate * 1000) / 10}%`;
const used = (b: BudgetView) => b.spent_micros + b.reserved_micros;
/** Share of the ceiling spent or held; a zero ceiling counts as full. */
const utilisation = (b: BudgetView) => (b.ceiling_micros > 0 ? used(b) / b.ceiling_micros : 1);
const windowWord = (w: string) =>
  ({ day: 'daily', month: 'monthly', total: 'total (never resets)' })[w] ?? `rolling ${w}`;
const str = (form: Record<string, unknown>, k: string) =>
  typeof form[k] === 'string' ? (form[k] as string).trim() : '';
const errorText = (body: unknown) =>
  (body as { error?: { message?: string } })?.error?.message ?? 'the request failed';

function StateBadge(props: { state: string }) {
  return <span class={`state ${props.state}`}>{props.state}</span>;
}

/** `{ ceiling: 50000000 }` → `ceiling $50.00`; kill records → their reason. */
function change(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v !== 'object') return String(v);
  const parts = Object.entries(v as Record<string, unknown>)
    .filter(([k]) => !['at', 'scope'].includes(k))
    .map(([k, x]) => {
      if (k === 'ceiling' && typeof x === 'number') return `ceiling ${usd(x)}`;
      if (typeof x === 'object' && x !== null) return `${k} ${JSON.stringify(x)}`;
      return `${k} ${String(x)}`;
    });
  return parts.length ? parts.join(', ') : '—';
}

// ---- budgets --------------------------------------------------------------------------------

const CEILING_REASONS = ['planned increase', 'end of quarter', 'incident: cap spend', 'new team budget'];
const FREEZE_REASONS = ['runaway spend', 'investigating', 'paused by finance'];
const UNFREEZE_REASONS = ['resolved', 'false alarm', 'approved by finance'];

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

function BudgetTable(props: { budgets: BudgetView[]; caption: string }) {
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

function budgetPages(web: Web, app: Hono<WebEnv>) {
  app.get('/budgets', async (c) => {
    const page = c.get('page');
    const kind = c.req.query('kind') ?? '';
    const valid = (SCOPE_KINDS as readonly string[]).includes(kind);
    const { budgets, defaults } = await web.get<{
      budgets: BudgetView[];
      defaults: Record<string, { ceiling_usd: string; window: string }>;
    }>(c, `/api/budgets${valid ? `?kind=${enc(kind)}` : ''}`);
    budgets.sort((a, b) => utilisation(b) - utilisation(a) || (a.scope < b.scope ? -1 : 1));
    return c.html(
      <Layout title="Budgets" active="/budgets" page={page}>
        <form method="get" action="/budgets" class="filters" aria-label="Filter budgets">
          <label>
            <span>Scope kind</span>
            <select name="kind">
              <option value="">all</option>
              {SCOPE_KINDS.map((k) => (
                <option value={k} selected={kind === k}>
                  {k}
                </option>
              ))}
            </select>
          </label>
          <button type="submit">Filter</button>
        </form>
        <p class="muted" data-count={budgets.length}>
          {budgets.length} {budgets.length === 1 ? 'budget' : 'budgets'}, fullest first. A budget refuses a
          call that could take it over its ceiling; a frozen budget refuses every call.
        </p>
        {budgets.length ? (
          <BudgetTable budgets={budgets} caption="Budgets" />
        ) : (
          <p class="muted">No budgets yet: one is created the first time a scope makes a call.</p>
        )}
        <h2 id="defaults">Default ceilings</h2>
        <p class="muted">What a new scope of each kind starts with (from the configuration).</p>
        <div class="scroll">
          <table aria-labelledby="defaults" class="defaults">
            <thead>
              <tr>
                <th scope="col">Scope kind</th>
                <th scope="col" class="num">
                  Ceiling
                </th>
                <th scope="col">Window</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(defaults).map(([k, d]) => (
                <tr>
                  <th scope="row">{k}</th>
                  <td class="num">${d.ceiling_usd}</td>
                  <td>{windowWord(d.window)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Layout>,
    );
  });

  app.get('/budgets/:scope', async (c) => {
    const page = c.get('page');
    const scope = c.req.param('scope');
    const { budget: b, audit } = await web.get<{ budget: BudgetView; audit: AuditView[] }>(
      c,
      `/api/budgets/${enc(scope)}`,
    );
    const admin = roleAtLeast(page.operator.role, 'admin');
    const base = budgetHref(b.scope);
    const killed = page.kills.find((k) => k.scope === b.scope);
    return c.html(
      <Layout title={`Budget ${b.scope}`} active="/budgets" page={page}>
        <p>
          <a href="/budgets">← All budgets</a>
        </p>
        <section class="card budget" aria-labelledby="budget-now">
          <h2 id="budget-now">
            {b.scope} <StateBadge state={b.state} />
          </h2>
          <Bar value={used(b)} max={b.ceiling_micros} label={`${b.scope} used`} />
          <dl class="facts-grid">
            <dt>Spent</dt>
            <dd>${b.spent_usd}</dd>
            <dt>Reserved (calls in flight)</dt>
            <dd>${b.reserved_usd}</dd>
            <dt>Ceiling</dt>
            <dd>${b.ceiling_usd}</dd>
            <dt>Window</dt>
            <dd>{windowWord(b.window)}</dd>
            <dt>Window started</dt>
            <dd>{b.window_start ? <Time at={b.window_start} /> : '—'}</dd>
            <dt>Resets</dt>
            <dd>
              {b.resets_at ? (
                <>
                  <Time at={b.resets_at} /> ({ago(msOf(b.resets_at))})
                </>
              ) : (
                'never'
              )}
            </dd>
            <dt>Owner</dt>
            <dd>{b.owner || '—'}</dd>
            <dt>Budget id</dt>
            <dd>
              {b.id ? (
                <code>{b.id}</code>
              ) : (
                <span class="muted">
                  not created yet: these are the defaults for its kind; the first call in this scope (or a
                  change below) creates it
                </span>
              )}
            </dd>
          </dl>
          {killed ? (
            <p class="flash error">
              A kill switch is on for this scope ({killed.reason}, by {killed.actor}).{' '}
              <a href="/kill-switches">Kill switches</a>
            </p>
          ) : null}
        </section>
        {admin ? (
          <section aria-labelledby="change" class="actions-block">
            <h2 id="change">Change</h2>
            <div class="actions">
              <ActionForm action={`${base}/ceiling`} page={page}>
                <label>
                  <span>New ceiling (USD)</span>
                  <input
                    name="amount"
                    required
                    inputmode="decimal"
                    value={b.ceiling_usd}
                    size={10}
                    autocomplete="off"
                  />
                </label>
                <ReasonField id="ceiling" choices={CEILING_REASONS} />
                <button type="submit" class="primary">
                  Set ceiling
                </button>
              </ActionForm>
              {b.state === 'frozen' ? (
                <ActionForm action={`${base}/unfreeze`} page={page}>
                  <ReasonField id="unfreeze" choices={UNFREEZE_REASONS} />
                  <button type="submit">Unfreeze</button>
                </ActionForm>
              ) : (
                <ActionForm
                  action={`${base}/freeze`}
                  page={page}
                  confirm={`Freeze ${b.scope}? Every call in this scope is refused until it is unfrozen.`}
                >
                  <ReasonField id="freeze" choices={FREEZE_REASONS} />
                  <button type="submit" class="danger">
                    Freeze
                  </button>
                </ActionForm>
              )}
            </div>
          </section>
        ) : (
          <p class="muted">Changing a ceiling or freezing a budget needs the admin role.</p>
        )}
        <h2 id="audit">Audit trail</h2>
        {audit.length ? (
          <div class="scroll">
            <table aria-labelledby="audit" class="audit">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Who</th>
                  <th scope="col">What</th>
                  <th scope="col">Before → after</th>
                  <th scope="col">Reason</th>
                </tr>
              </thead>
              <tbody>
                {audit.map((e) => (
                  <tr>
                    <td>
                      <Time at={e.at} />
                    </td>
                    <td>{e.actor}</td>
                    <td>{e.action}</td>
                    <td>
                      {change(e.before)} → {change(e.after)}
                    </td>
                    <td>{e.reason}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p class="muted">No changes recorded for this budget.</p>
        )}
      </Layout>,
    );
  });

  app.post('/budgets/:scope/ceiling', async (c) => {
    web.require(c, 'admin');
    const form = await c.req.parseBody();
    const scope = c.req.param('scope');
    const amount = str(form, 'amount').replace(/^\$\s*/, '');
    return web.act(
      c,
      'POST',
      `/api/budgets/${enc(scope)}/ceiling`,
      { amount, reason: str(form, 'reason') },
      `Ceiling of ${scope} set to $${amount}`,
      budgetHref(scope),
    );
  });

  for (const action of ['freeze', 'unfreeze'] as const) {
    app.post(`/budgets/:scope/${action}`, async (c) => {
      web.require(c, 'admin');
      const form = await c.req.parseBody();
      const scope = c.req.param('scope');
      return web.act(
        c,
        'POST',
        `/api/budgets/${enc(scope)}/${action}`,
        { reason: str(form, 'reason') },
        `${scope} ${action === 'freeze' ? 'frozen' : 'unfrozen'}`,
        budgetHref(scope),
      );
    });
  }
}

// ---- kill switches --------------------------------------------------------------------------

const KILL_REASONS = ['runaway spend', 'provider incident', 'security incident', 'wrong prompt shipped'];
const LIFT_REASONS = ['resolved', 'false alarm', 'fix deployed'];
const KILL_KINDS = SCOPE_KINDS.filter((k) => k !== 'global');

function killPages(web: Web, app: Hono<WebEnv>) {
  app.get('/kill-switches', async (c) => {
    const page = c.get('page');
    const { kill_switches: kills } = await web.get<{ kill_switches: KillView[] }>(c, '/api/kill-switches');
    const canFlip = roleAtLeast(page.operator.role, 'operator');
    const global = kills.find((k) => k.scope === 'global');
    return c.html(
      <Layout title="Kill switches" active="/kill-switches" page={page}>
        <p>
          A kill switch refuses every model and tool call in its scope, on every replica, from the next
          request on. Running calls finish; their runs stop at their next call.
        </p>
        <section class={`global-switch${global ? ' on' : ''}`} aria-labelledby="global">
          <h2 id="global">Global</h2>
          {global ? (
            <p class="state-line" role="status">
              <strong>GLOBAL kill switch is ON</strong>: every call is refused. Flipped by {global.actor}{' '}
              <Time at={global.at} relative /> — {global.reason}
            </p>
          ) : (
            <p class="state-line">Off: calls are admitted by their budgets.</p>
          )}
          {canFlip && !global ? (
            <ActionForm
              action="/kill-switches"
              page={page}
              confirm="Refuse every model call on every replica?"
              class="inline"
            >
              <input type="hidden" name="scope" value="global" />
              <ReasonField id="global-kill" choices={KILL_REASONS} />
              <button type="submit" class="big-red">
                Stop everything
              </button>
            </ActionForm>
          ) : null}
          {canFlip && global ? (
            <ActionForm
              action="/kill-switches/global/lift"
              page={page}
              confirm="Lift the GLOBAL kill switch? Calls are admitted again."
              class="inline"
            >
              <ReasonField id="global-lift" choices={LIFT_REASONS} />
              <button type="submit" class="primary">
                Lift the global switch
              </button>
            </ActionForm>
          ) : null}
        </section>

        {canFlip ? (
          <section aria-labelledby="kill-scope">
            <h2 id="kill-scope">Kill one scope</h2>
            <ActionForm
              action="/kill-switches"
              page={page}
              confirm="Refuse every model call in this scope on every replica?"
              class="inline"
            >
              <label>
                <span>Kind</span>
                <select name="kind" required>
                  {KILL_KINDS.map((k) => (
                    <option value={k}>{k}</option>
                  ))}
                </select>
              </label>
              <label>
                <span>Key (team name, seat, workflow or run id)</span>
                <input
                  name="key"
                  required
                  pattern="[A-Za-z0-9][A-Za-z0-9._@\-]{0,127}"
                  autocomplete="off"
                  size={16}
                />
              </label>
              <ReasonField id="scope-kill" choices={KILL_REASONS} />
              <button type="submit" class="danger">
                Kill scope
              </button>
            </ActionForm>
          </section>
        ) : (
          <p class="muted">Flipping or lifting a kill switch needs the operator role.</p>
        )}

        <h2 id="on">Switches on</h2>
        {kills.length ? (
          <div class="scroll">
            <table aria-labelledby="on" class="kills">
              <thead>
                <tr>
                  <th scope="col">Scope</th>
                  <th scope="col">Flipped by</th>
                  <th scope="col">When</th>
                  <th scope="col">Why</th>
                  {canFlip ? <th scope="col">Lift</th> : null}
                </tr>
              </thead>
              <tbody>
                {kills.map((k) => (
                  <tr data-scope={k.scope}>
                    <th scope="row">{k.scope}</th>
                    <td>{k.actor}</td>
                    <td>
                      <Time at={k.at} relative />
                    </td>
                    <td>{k.reason}</td>
                    {canFlip ? (
                      <td>
                        <ActionForm
                          action={`/kill-switches/${enc(k.scope)}/lift`}
                          page={page}
                          confirm={`Lift the kill switch on ${k.scope}? Calls are admitted again.`}
                          class="inline"
                        >
                          <ReasonField
                            id={`lift-${k.scope.replace(/[^A-Za-z0-9_-]/g, '-')}`}
                            choices={LIFT_REASONS}
                          />
                          <button type="submit">Lift</button>
                        </ActionForm>
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p class="muted">No kill switch is on.</p>
        )}
      </Layout>,
    );
  });

  app.post('/kill-switches', async (c) => {
    web.require(c, 'operator');
    const form = await c.req.parseBody();
    const scope = str(form, 'scope') || `${str(form, 'kind')}:${str(form, 'key')}`;
    return web.act(
      c,
      'POST',
      '/api/kill-switches',
      { scope, reason: str(form, 'reason') },
      `Kill switch on ${scope} is ON: calls there are refused`,
      '/kill-switches',
    );
  });

  app.post('/kill-switches/:scope/lift', async (c) => {
    web.require(c, 'operator');
    const form = await c.req.parseBody();
    const scope = c.req.param('scope');
    return web.act(
      c,
      'POST',
      `/api/kill-switches/${enc(scope)}/lift`,
      { reason: str(form, 'reason') },
      `Kill switch on ${scope} lifted`,
      '/kill-switches',
    );
  });
}

// ---- spend ----------------------------------------------------------------------------------

const DAY_CHOICES = [1, 7, 14, 30, 90];
const MAX_DAYS = 90;
const TOP_SERIES = 7;

interface Series {
  key: string;
  /** µ$ per day, in the order of the days. */
  values: number[];
}

/** The top keys over the range as their own series, the rest summed as `other`. */
function seriesOf(perDay: SpendRowView[][]): Series[] {
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

const label = (dim: string, key: string) =>
  dim === 'workflow' && key === NO_WORKFLOW ? '(no workflow)' : key;

function SpendChart(props: { id: string; title: string; dim: string; days: string[]; series: Series[] }) {
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

function TopTable(props: { id: string; title: string; dim: string; rows: SpendRowView[]; total: number }) {
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
const scriptJson = (v: unknown) =>
  JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

function spendPages(web: Web, app: Hono<WebEnv>) {
  app.get('/spend', async (c) => {
    const page = c.get('page');
    const asked = Number(c.req.query('days') ?? 30);
    const days = Number.isInteger(asked) && asked >= 1 ? Math.min(asked, MAX_DAYS) : 30;
    const tz = web.rt.config.budgets.timeZone;
    const now = web.rt.now();
    // Whole local days in the store's time zone (the same days the spend rollups use).
    const windows = daysBetween(dayWindow(now - (days - 1) * 86_400_000, tz).start, now + 1, tz);
    const since = windows[0]!.start;
    const until = windows[windows.length - 1]!.resetsAt ?? now + 1;
    const spend = (by: string, from: number, to: number) =>
      web
        .get<{ rows: SpendRowView[] }>(c, `/api/spend?by=${by}&since=${from}&until=${to}`)
        .then((r) => r.rows);
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
        web.get<{ alarms: AlarmView[] }>(c, '/api/alarms?limit=200'),
        web.get<{ budgets: BudgetView[] }>(c, '/api/budgets'),
        web.rt.runs
          ? web.get<{ workflows: { id: string; latest: boolean; description: string }[] }>(
              c,
              '/api/workflows',
            )
          : Promise.resolve({ workflows: [] }),
      ]);
    const health = await web.get<{
      since: string;
      workflows: { workflow: string; expected_hit_rate: number | null; actual_hit_rate: number | null }[];
    }>(c, '/api/cache-health');
    const expectedOf = (wf: string) => health.workflows.find((h) => h.workflow === wf);

    const dayKeys = windows.map((w) => w.key);
    const charts = [
      { id: 'team', dim: 'team', title: 'Spend per day by team', series: seriesOf(byTeam) },
      { id: 'workflow', dim: 'workflow', title: 'Spend per day by workflow', series: seriesOf(byWorkflow) },
      { id: 'model', dim: 'model', title: 'Spend per day by model', series: seriesOf(byModel) },
    ];
    const total = seats.reduce((s, r) => s + r.cost_micros, 0);
    const calls = seats.reduce((s, r) => s + r.calls, 0);
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
    const otherAlarms = alarms.filter((a) => a.kind !== 'cache_hit_rate' && a.kind !== 'prefix_drift');
    const workflowIds = new Set(workflowsAnswer.workflows.map((w) => w.id));
    const cacheRows = [
      ...workflowsRange,
      ...[...workflowIds]
        .filter((id) => !workflowsRange.some((r) => r.key === id))
        .map(
          (id) =>
            ({ key: id, calls: 0, cost_micros: 0, cost_usd: '0.00', cache_hit_rate: 0 }) as SpendRowView,
        ),
    ];
    const lastCacheAlarm = (wf: string) =>
      cacheAlarms.find((a) => (a.identity?.workflow ?? NO_WORKFLOW) === wf && msOf(a.at) >= since);
    const nearCeiling = budgetsAnswer.budgets
      .filter((b) => utilisation(b) >= 0.8)
      .sort((a, b) => utilisation(b) - utilisation(a));

    return c.html(
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
          <strong>{usd(total)}</strong> over {calls} calls, {dayKeys[0]} to {dayKeys[dayKeys.length - 1]} (
          {tz}).
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
          input each call's stable prefix allowed the cache to read, against what it read, as this server saw
          it since it started ({health.since.slice(0, 16).replace('T', ' ')} UTC). A cache alarm is raised
          when a stream reads far less than its prefix allows; the last one is shown.
        </p>
        {cacheRows.length ? (
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
        )}

        <h2 id="alarms">Alarms</h2>
        <AlarmTable id="alarms-cache" title="Cache" alarms={cacheAlarms} />
        <AlarmTable id="alarms-drift" title="Prefix drift" alarms={driftAlarms} />
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
      </Layout>,
    );
  });
}

function AlarmTable(props: { id: string; title: string; alarms: AlarmView[] }) {
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

// ---- keys -----------------------------------------------------------------------------------

const REVOKE_REASONS = ['leaked', 'no longer used', 'rotated', 'person left the team'];

interface KeyForm {
  team: string;
  env: string;
  seat: string;
  workflow: string;
  label: string;
  sessionTimeBox: string;
  reason: string;
}

const EMPTY_FORM: KeyForm = {
  team: '',
  env: '',
  seat: '',
  workflow: '',
  label: '',
  sessionTimeBox: '',
  reason: '',
};

function KeysPage(props: {
  page: PageContext;
  keys: KeyView[];
  form: KeyForm;
  created?: { key: string; record: KeyView };
}) {
  const { page, keys, form, created } = props;
  const active = keys.filter((k) => !k.revokedAt).length;
  return (
    <Layout title="API keys" active="/keys" page={page}>
      {created ? (
        <section class="new-key" aria-labelledby="new-key-h">
          <h2 id="new-key-h">New key for {created.record.seat}: shown once</h2>
          <p>
            <strong>Copy it now.</strong> This is the only time the key is shown: only its hash is kept, and
            this page is not cached. If it is lost, revoke it and create another.
          </p>
          <label>
            <span>API key ({created.record.id})</span>
            <input
              id="new-key"
              readonly
              value={created.key}
              autocomplete="off"
              spellcheck={false}
              autofocus
              class="key"
            />
          </label>
          <p class="muted">
            Use it as the Anthropic API key with Chokepoint as the base URL: <code>ANTHROPIC_BASE_URL</code> =
            this server, <code>ANTHROPIC_API_KEY</code> = the key above.
          </p>
        </section>
      ) : null}

      <section aria-labelledby="create">
        <h2 id="create">Create a key</h2>
        <ActionForm action="/keys" page={page} class="inline key-form">
          <label>
            <span>Team</span>
            <input name="team" required value={form.team} size={12} autocomplete="off" />
          </label>
          <label>
            <span>Env</span>
            <input name="env" required value={form.env} size={8} autocomplete="off" />
          </label>
          <label>
            <span>Seat</span>
            <input name="seat" required value={form.seat} size={12} autocomplete="off" />
          </label>
          <label>
            <span>Workflow (optional)</span>
            <input name="workflow" value={form.workflow} size={12} autocomplete="off" />
          </label>
          <label>
            <span>Label (optional)</span>
            <input name="label" value={form.label} size={16} autocomplete="off" />
          </label>
          <label>
            <span>Session time box (optional)</span>
            <input
              name="sessionTimeBox"
              value={form.sessionTimeBox}
              placeholder="30m"
              size={6}
              autocomplete="off"
            />
          </label>
          <label>
            <span>Reason (optional)</span>
            <input name="reason" value={form.reason} size={16} placeholder="goes to the audit log" />
          </label>
          <button type="submit" class="primary">
            Create key
          </button>
        </ActionForm>
      </section>

      <h2 id="keys">Keys</h2>
      <p class="muted" data-count={keys.length}>
        {keys.length} keys, {active} active, newest first.
      </p>
      {keys.length ? (
        <div class="scroll">
          <table aria-labelledby="keys" class="keys">
            <thead>
              <tr>
                <th scope="col">Id</th>
                <th scope="col">Identity (team/env/seat)</th>
                <th scope="col" class="opt">
                  Label
                </th>
                <th scope="col" class="opt">
                  Session time box
                </th>
                <th scope="col" class="opt">
                  Created
                </th>
                <th scope="col">Revoked</th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr data-key={k.id} class={k.revokedAt ? 'revoked' : undefined}>
                  <th scope="row">
                    <code>{k.id}</code>
                  </th>
                  <td>
                    {k.team}/{k.env}/{k.seat}
                    {k.workflow ? <small> workflow {k.workflow}</small> : null}
                  </td>
                  <td class="opt">{k.label ?? '—'}</td>
                  <td class="opt">{k.sessionTimeBox ? duration(k.sessionTimeBox) : '—'}</td>
                  <td class="opt">
                    <Time at={k.createdAt} />
                  </td>
                  <td>
                    {k.revokedAt ? (
                      <span>
                        <span class="state revoked">revoked</span> <Time at={k.revokedAt} />
                      </span>
                    ) : (
                      <details class="decide">
                        <summary>
                          Revoke<span class="sr"> {k.id}</span>…
                        </summary>
                        <ActionForm
                          action={`/keys/${enc(k.id)}/revoke`}
                          page={page}
                          confirm={`Revoke ${k.id} (${k.seat})? Calls with it are refused at once.`}
                          class="inline"
                        >
                          <ReasonField id={`revoke-${k.id}`} choices={REVOKE_REASONS} />
                          <button type="submit" class="danger">
                            Revoke
                          </button>
                        </ActionForm>
                      </details>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="muted">No keys yet.</p>
      )}
    </Layout>
  );
}

function keyPages(web: Web, app: Hono<WebEnv>) {
  app.get('/keys', async (c) => {
    web.require(c, 'admin');
    const { keys } = await web.get<{ keys: KeyView[] }>(c, '/api/keys');
    c.header('Cache-Control', 'no-store');
    return c.html(<KeysPage page={c.get('page')} keys={keys} form={EMPTY_FORM} />);
  });

  // The answer holds the key, once: rendered straight from the POST (never a redirect, so the
  // key is in no URL, history entry or Referer) and never cached.
  app.post('/keys', async (c) => {
    web.require(c, 'admin');
    const input = await c.req.parseBody();
    const form: KeyForm = {
      team: str(input, 'team'),
      env: str(input, 'env'),
      seat: str(input, 'seat'),
      workflow: str(input, 'workflow'),
      label: str(input, 'label'),
      sessionTimeBox: str(input, 'sessionTimeBox'),
      reason: str(input, 'reason'),
    };
    const body: Record<string, unknown> = { team: form.team, env: form.env, seat: form.seat };
    if (form.workflow) body.workflow = form.workflow;
    if (form.label) body.label = form.label;
    if (form.sessionTimeBox) body.sessionTimeBox = form.sessionTimeBox;
    if (form.reason) body.reason = form.reason;
    const operator = c.get('session').operator;
    const r = await web.call<{ key: string; record: KeyView }>(operator, 'POST', '/api/keys', body);
    const { keys } = await web.get<{ keys: KeyView[] }>(c, '/api/keys');
    c.header('Cache-Control', 'no-store');
    const page = c.get('page');
    if (r.status >= 300) {
      return c.html(
        <KeysPage
          page={{ ...page, flash: { kind: 'error', text: errorText(r.body) } }}
          keys={keys}
          form={form}
        />,
        r.status === 403 ? 403 : 400,
      );
    }
    return c.html(
      <KeysPage
        page={{ ...page, flash: { kind: 'ok', text: `Key ${r.body.record.id} created` } }}
        keys={keys}
        form={EMPTY_FORM}
        created={r.body}
      />,
    );
  });

  app.post('/keys/:id/revoke', async (c) => {
    web.require(c, 'admin');
    const form = await c.req.parseBody();
    const id = c.req.param('id');
    return web.act(
      c,
      'POST',
      `/api/keys/${enc(id)}/revoke`,
      { reason: str(form, 'reason') },
      `Key ${id} revoked: calls with it are refused`,
      '/keys',
    );
  });
}

/** Budgets, kill switches, spend and keys. */
export function moneyPages(web: Web): Hono<WebEnv> {
  const app = new Hono<WebEnv>();
  budgetPages(web, app);
  killPages(web, app);
  spendPages(web, app);
  keyPages(web, app);
  return app;
}
