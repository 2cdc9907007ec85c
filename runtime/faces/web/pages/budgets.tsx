import { Hono } from 'hono';
import { roleAtLeast } from '../../../auth/operators.ts';
import { SCOPE_KINDS } from '../../../identity.ts';
import type { AuditEntry } from '../../../store/port.ts';
import type { BudgetDefaultsView, BudgetResponse, BudgetsResponse, BudgetView } from '../../views/budgets.ts';
import type { Web, WebEnv } from '../app.tsx';
import { ActionForm, ago, Bar, Layout, type PageContext, ReasonField } from '../layout.tsx';
import { BudgetTable, budgetHref, RateLimitTable, used, utilisation, windowWord } from './budget-table.tsx';
import { change, enc, msOf, StateBadge, str, Time } from './parts.tsx';

/**
 * Budgets: the list (fullest first, with the default ceilings) and one budget's page (its
 * numbers, the admin's changes, its audit trail). Read through the operator API as the session's
 * operator; every change goes through it, so the roles, the checks and the audit are the API's.
 */

const CEILING_REASONS = ['planned increase', 'end of quarter', 'incident: cap spend', 'new team budget'];
const FREEZE_REASONS = ['runaway spend', 'investigating', 'paused by finance'];
const UNFREEZE_REASONS = ['resolved', 'false alarm', 'approved by finance'];

export function budgetPages(web: Web): Hono<WebEnv> {
  const app = new Hono<WebEnv>();
  app.get('/budgets', async (c) => {
    const kind = c.req.query('kind') ?? '';
    const valid = (SCOPE_KINDS as readonly string[]).includes(kind);
    const { budgets, defaults, rate_limits, rate_limits_configured } = await web.get<BudgetsResponse>(
      c,
      `/api/budgets${valid ? `?kind=${enc(kind)}` : ''}`,
    );
    budgets.sort((a, b) => utilisation(b) - utilisation(a) || (a.scope < b.scope ? -1 : 1));
    return c.html(
      <BudgetsPage
        page={c.get('page')}
        kind={kind}
        budgets={budgets}
        defaults={defaults}
        rates={rate_limits ?? []}
        configured={rate_limits_configured ?? []}
      />,
    );
  });

  app.get('/budgets/:scope', async (c) => {
    const { budget, audit } = await web.get<BudgetResponse>(c, `/api/budgets/${enc(c.req.param('scope'))}`);
    return c.html(<BudgetPage page={c.get('page')} b={budget} audit={audit} />);
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
  return app;
}

function BudgetsPage(props: {
  page: PageContext;
  kind: string;
  budgets: BudgetView[];
  defaults: BudgetDefaultsView;
  rates: NonNullable<BudgetsResponse['rate_limits']>;
  configured: NonNullable<BudgetsResponse['rate_limits_configured']>;
}) {
  const { page, kind, budgets, defaults, rates, configured } = props;
  return (
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
        {budgets.length} {budgets.length === 1 ? 'budget' : 'budgets'}, fullest first. A budget refuses a call
        that could take it over its ceiling; a frozen budget refuses every call.
      </p>
      {budgets.length ? (
        <BudgetTable budgets={budgets} caption="Budgets" />
      ) : (
        <p class="muted">No budgets yet: one is created the first time a scope makes a call.</p>
      )}
      {configured.length ? (
        <>
          <h2 id="rate-limits">Rate limits</h2>
          <p class="muted">
            Configured:{' '}
            {configured.map((r) => `${r.limit} ${r.unit} per ${r.window} on ${r.scope}`).join('; ')}. A call
            over one is refused with 429 rate_limited and a time to retry.
          </p>
          {rates.length ? <RateLimitTable limits={rates} /> : <p class="muted">Not in use yet.</p>}
        </>
      ) : null}
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
    </Layout>
  );
}

function BudgetPage(props: { page: PageContext; b: BudgetView; audit: AuditEntry[] }) {
  const { page, b, audit } = props;
  return (
    <Layout title={`Budget ${b.scope}`} active="/budgets" page={page}>
      <p>
        <a href="/budgets">← All budgets</a>
      </p>
      <BudgetCard page={page} b={b} />
      {roleAtLeast(page.operator.role, 'admin') ? (
        <BudgetChange page={page} b={b} />
      ) : (
        <p class="muted">Changing a ceiling or freezing a budget needs the admin role.</p>
      )}
      <h2 id="audit">Audit trail</h2>
      <AuditTrail audit={audit} />
    </Layout>
  );
}

function BudgetCard(props: { page: PageContext; b: BudgetView }) {
  const { b } = props;
  const killed = props.page.kills.find((k) => k.scope === b.scope);
  return (
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
              not created yet: these are the defaults for its kind; the first call in this scope (or a change
              below) creates it
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
  );
}

function BudgetChange(props: { page: PageContext; b: BudgetView }) {
  const { page, b } = props;
  const base = budgetHref(b.scope);
  return (
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
  );
}

function AuditTrail(props: { audit: AuditEntry[] }) {
  const { audit } = props;
  return audit.length ? (
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
  );
}
