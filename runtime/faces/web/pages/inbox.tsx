import { Hono } from 'hono';
import type { ApprovalsResponse, ApprovalView } from '../../views/approvals.ts';
import type { Web, WebEnv } from '../app.tsx';
import { ago, duration, Layout, type PageContext } from '../layout.tsx';
import { canDecide, DecisionForms, RunRequest, ViewerHint } from './decide.tsx';
import { safeBack } from './run-parts.tsx';

/** The inbox (home): what waits for a human, newest first, with the four decisions. */

const REASONS: Record<string, string> = {
  time_box: 'time box',
  spend_box: 'spend box',
  step_cap: 'step cap',
  budget_exhausted: 'budget exhausted',
  approval_required: 'approval gate',
  session_time_box: 'session time box',
};

function Item(props: { item: ApprovalView; page: PageContext }) {
  const { item, page } = props;
  const decidable = canDecide(page) && item.state === 'pending';
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
        <li>
          {item.steps} step{item.steps === 1 ? '' : 's'}
        </li>
        {item.cacheHitRate === null ? null : <li>cache hit {Math.round(item.cacheHitRate * 100)}%</li>}
        <li class="muted">
          expires {new Date(item.expiresAt).toISOString().replace('T', ' ').slice(0, 16)} UTC
        </li>
      </ul>
      <RunRequest item={item} />
      {item.lastMessages.length ? (
        <details class="recent">
          <summary>
            Last {item.lastMessages.length} message{item.lastMessages.length === 1 ? '' : 's'}
          </summary>
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
      {decidable ? <DecisionForms item={item} page={page} /> : null}
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
          {items.length > 0 && !canDecide(page) ? (
            <ViewerHint page={page} what="what waits for a human" />
          ) : null}
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
      return web.act(
        c,
        'POST',
        `/api/approvals/${encodeURIComponent(id)}/${action}`,
        body,
        `${id} ${done}`,
        // From a run's page, back to it; from the inbox, the Referer (or the inbox).
        safeBack(form.back),
      );
    });
  }
  return app;
}
