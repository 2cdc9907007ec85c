import { Hono } from 'hono';
import { roleAtLeast } from '../../../auth/operators.ts';
import type { ApprovalsResponse, ApprovalView } from '../../views/approvals.ts';
import type { Web, WebEnv } from '../app.tsx';
import { ActionForm, ago, duration, Layout, type PageContext, ReasonField } from '../layout.tsx';

/** The inbox (home): what waits for a human, newest first, with the four decisions. */

const REASONS: Record<string, string> = {
  time_box: 'time box',
  spend_box: 'spend box',
  step_cap: 'step cap',
  budget_exhausted: 'budget exhausted',
  approval_required: 'approval gate',
  session_time_box: 'session time box',
};

const APPROVE_REASONS = ['looks right, carry on', 'within policy', 'checked with the requester'];
const DENY_REASONS = ['not within policy', 'looping without progress', 'needs a different approach'];
const KILL_REASONS = ['runaway', 'wrong input', 'no longer needed'];

function Item(props: { item: ApprovalView; page: PageContext }) {
  const { item, page } = props;
  const canDecide = roleAtLeast(page.operator.role, 'operator') && item.state === 'pending';
  const base = `/approvals/${encodeURIComponent(item.id)}`;
  return (
    <article class="card" id={`item-${item.id}`} data-approval={item.id}>
      <h2>
        <a href={`/runs/${encodeURIComponent(item.run)}`}>
          {item.workflow}
          {item.version ? `@${item.version}` : ''}
        </a>{' '}
        <small>
          {REASONS[item.reason] ?? item.reason} · started by {item.startedBy.seat} ({item.startedBy.team}/
          {item.startedBy.env}) · waiting {ago(Date.parse(item.createdAt))}
        </small>
      </h2>
      <p class="why">{item.summary}</p>
      <ul class="facts">
        <li>
          spent <strong>${item.spent.usd}</strong>
          {Object.keys(item.spendByModel).length
            ? ` (${Object.entries(item.spendByModel)
                .map(([m, v]) => `${m} $${v.usd}`)
                .join(', ')})`
            : ''}
        </li>
        <li>elapsed {duration(item.elapsedMs)}</li>
        <li>{item.steps} steps</li>
        {item.cacheHitRate === null ? null : <li>cache hit {Math.round(item.cacheHitRate * 100)}%</li>}
        <li class="muted">
          expires {new Date(item.expiresAt).toISOString().replace('T', ' ').slice(0, 16)} UTC
        </li>
      </ul>
      {item.lastMessages.length ? (
        <details>
          <summary>Last messages</summary>
          {item.lastMessages.map((m) => (
            <pre>
              <strong>{m.role}</strong>: {m.text}
            </pre>
          ))}
        </details>
      ) : null}
      {item.decision ? (
        <p class="muted">
          {item.state} by {item.decision.actor}: {item.decision.reason}
        </p>
      ) : null}
      {canDecide ? (
        <div class="actions">
          <ActionForm action={`${base}/approve`} page={page}>
            <ReasonField id={`a-${item.id}`} choices={APPROVE_REASONS} />
            <button type="submit" class="primary">
              Approve
            </button>
          </ActionForm>
          <details class="decide" data-keep={item.id}>
            <summary>Extend, deny or kill</summary>
            <ActionForm action={`${base}/extend`} page={page}>
              <label>
                <span>Add spend</span>
                <input name="spend" placeholder="+$1.00" inputmode="decimal" size={8} />
              </label>
              <label>
                <span>Add time</span>
                <input name="time" placeholder="+10m" size={6} />
              </label>
              <ReasonField id={`e-${item.id}`} choices={['worth a bit more', 'nearly done']} />
              <button type="submit">Extend</button>
            </ActionForm>
            <ActionForm action={`${base}/deny`} page={page}>
              <ReasonField id={`d-${item.id}`} choices={DENY_REASONS} />
              <button type="submit">Deny</button>
            </ActionForm>
            <ActionForm action={`${base}/kill`} page={page}>
              <ReasonField id={`k-${item.id}`} choices={KILL_REASONS} />
              <button type="submit" class="danger">
                Kill
              </button>
            </ActionForm>
          </details>
        </div>
      ) : null}
    </article>
  );
}

export function approvalPages(web: Web): Hono<WebEnv> {
  const app = new Hono<WebEnv>();

  app.get('/', async (c) => {
    const page = c.get('page');
    const q = new URLSearchParams({ state: 'pending', limit: '200' });
    const filters = {
      team: c.req.query('team') ?? '',
      workflow: c.req.query('workflow') ?? '',
      reason: c.req.query('reason') ?? '',
    };
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    const hosted = web.rt.approvals !== undefined;
    const items = hosted ? (await web.get<ApprovalsResponse>(c, `/api/approvals?${q}`)).approvals : [];
    return c.html(
      <Layout title="Inbox" active="/" page={page}>
        <form method="get" action="/" class="filters" aria-label="Filter the inbox">
          <label>
            <span>Team</span>
            <input name="team" value={filters.team} size={12} />
          </label>
          <label>
            <span>Workflow</span>
            <input name="workflow" value={filters.workflow} size={12} />
          </label>
          <label>
            <span>Why it stopped</span>
            <select name="reason">
              <option value="">any</option>
              {Object.entries(REASONS).map(([v, l]) => (
                <option value={v} selected={filters.reason === v}>
                  {l}
                </option>
              ))}
            </select>
          </label>
          <button type="submit">Filter</button>
        </form>
        <section data-live="approvals" aria-live="polite">
          {!hosted ? <p>This server does not host workflows or approvals.</p> : null}
          {hosted && items.length === 0 ? <p class="muted">Nothing waits for a human.</p> : null}
          <p class="muted" data-count={items.length}>
            {items.length} pending
          </p>
          {items.map((item) => (
            <Item item={item} page={page} />
          ))}
        </section>
      </Layout>,
    );
  });

  for (const action of ['approve', 'extend', 'deny', 'kill'] as const) {
    app.post(`/approvals/:id/${action}`, async (c) => {
      web.require(c, 'operator');
      const form = await c.req.parseBody();
      const body: Record<string, unknown> = { reason: String(form.reason ?? '') };
      if (action === 'extend') {
        if (typeof form.spend === 'string' && form.spend.trim()) body.spend = form.spend.trim();
        if (typeof form.time === 'string' && form.time.trim()) body.time = form.time.trim();
      }
      const id = c.req.param('id');
      const done = { approve: 'approved', extend: 'extended', deny: 'denied', kill: 'killed' }[action];
      return web.act(c, 'POST', `/api/approvals/${encodeURIComponent(id)}/${action}`, body, `${id} ${done}`);
    });
  }
  return app;
}
