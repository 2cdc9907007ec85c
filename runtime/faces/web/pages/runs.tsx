import { Hono } from 'hono';
import { RUN_STATES } from '../../../store/runs.ts';
import type { RunsResponse, RunView } from '../../views/runs.ts';
import type { WorkflowsResponse } from '../../views/workflows.ts';
import type { Web, WebEnv } from '../app.tsx';
import { Bar, Layout, type PageContext, usd } from '../layout.tsx';
import { StateBadge } from './parts.tsx';
import { isOperator, KillForm, LIVE_STATES, pathOf, reasonText, runHref, When } from './run-parts.tsx';

/**
 * Runs: the list, newest first, filtered by workflow, state and team, paged with the API's
 * cursor, with a kill form on every live run (operator role). Read through the operator API.
 */

const PAGE_SIZE = 50;

interface Filters {
  workflow: string;
  state: string;
  team: string;
}

export function runListPages(web: Web): Hono<WebEnv> {
  const app = new Hono<WebEnv>();

  app.get('/runs', async (c) => {
    const page = c.get('page');
    const now = Date.now();
    const state = c.req.query('state') ?? '';
    const filters = {
      workflow: c.req.query('workflow') ?? '',
      state: (RUN_STATES as readonly string[]).includes(state) ? state : '',
      team: c.req.query('team') ?? '',
    };
    const cursor = c.req.query('cursor') ?? '';
    const asked = Number(c.req.query('limit'));
    const limit = Number.isInteger(asked) && asked >= 1 && asked <= 200 ? asked : PAGE_SIZE;
    const hosted = web.rt.runs !== undefined;

    let runs: RunView[] = [];
    let next: string | undefined;
    let workflows: string[] = [];
    if (hosted) {
      const q = new URLSearchParams({ limit: String(limit) });
      for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
      if (cursor) q.set('cursor', cursor);
      const [list, wfs] = await Promise.all([
        web.get<RunsResponse>(c, `/api/runs?${q}`),
        web.get<WorkflowsResponse>(c, '/api/workflows'),
      ]);
      runs = list.runs;
      next = list.next;
      workflows = [...new Set(wfs.workflows.map((w) => w.id))].sort();
    }
    if (filters.workflow && !workflows.includes(filters.workflow)) workflows.push(filters.workflow);

    const keep = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v) keep.set(k, v);
    if (limit !== PAGE_SIZE) keep.set('limit', String(limit));
    const pageHref = (cur?: string) => {
      const q = new URLSearchParams(keep);
      if (cur) q.set('cursor', cur);
      const s = q.toString();
      return `/runs${s ? `?${s}` : ''}`;
    };
    return c.html(
      <RunsPage
        page={page}
        filters={filters}
        workflows={workflows}
        hosted={hosted}
        runs={runs}
        next={next}
        cursor={cursor}
        pageHref={pageHref}
        back={pathOf(c)}
        now={now}
      />,
    );
  });

  return app;
}

function RunsPage(props: {
  page: PageContext;
  filters: Filters;
  workflows: string[];
  hosted: boolean;
  runs: RunView[];
  next: string | undefined;
  cursor: string;
  pageHref: (cursor?: string) => string;
  back: string;
  now: number;
}) {
  const { page, filters, hosted, runs, next, cursor, pageHref, now } = props;
  const filtered = Object.values(filters).some(Boolean);
  return (
    <Layout title="Runs" active="/runs" page={page}>
      <RunFilters filters={filters} workflows={props.workflows} filtered={filtered} />
      <section data-live="runs" aria-label="Runs">
        {!hosted ? <p>This server does not host workflows.</p> : null}
        {hosted && runs.length === 0 ? (
          <p class="muted">{filtered ? 'No runs match these filters.' : 'No runs yet.'}</p>
        ) : null}
        {runs.length ? (
          <>
            <p class="muted" data-count={runs.length}>
              {runs.length} {runs.length === 1 ? 'run' : 'runs'}
              {cursor ? ' (older page)' : ''}, newest first
            </p>
            <RunsTable runs={runs} page={page} back={props.back} now={now} />
          </>
        ) : null}
        {next || cursor ? (
          <nav class="pager" aria-label="Pages">
            {cursor ? <a href={pageHref()}>Newest runs</a> : null}
            {next ? (
              <a href={pageHref(next)} rel="next">
                Older runs →
              </a>
            ) : null}
          </nav>
        ) : null}
      </section>
    </Layout>
  );
}

function RunFilters(props: { filters: Filters; workflows: string[]; filtered: boolean }) {
  const { filters, workflows, filtered } = props;
  return (
    <form method="get" action="/runs" class="filters" aria-label="Filter the runs">
      <label>
        <span>Workflow</span>
        <select name="workflow">
          <option value="">any</option>
          {workflows.map((w) => (
            <option value={w} selected={filters.workflow === w}>
              {w}
            </option>
          ))}
        </select>
      </label>
      <label>
        <span>State</span>
        <select name="state">
          <option value="">any</option>
          {RUN_STATES.map((s) => (
            <option value={s} selected={filters.state === s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      <label>
        <span>Team</span>
        <input name="team" value={filters.team} size={12} />
      </label>
      <button type="submit">Filter</button>
      {filtered ? <a href="/runs">Clear filters</a> : null}
    </form>
  );
}

function RunsTable(props: { runs: RunView[]; page: PageContext; back: string; now: number }) {
  const { runs, page, now } = props;
  const canKill = isOperator(page);
  return (
    <div class="scroll">
      <table class="runs">
        <caption class="sr">Runs, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Run</th>
            <th scope="col">State</th>
            <th scope="col">Workflow</th>
            <th scope="col" class="opt">
              Started by
            </th>
            <th scope="col">Spend / spend box</th>
            <th scope="col" class="opt num">
              Steps
            </th>
            <th scope="col" class="opt">
              Started
            </th>
            <th scope="col" class="opt">
              Updated
            </th>
            {canKill ? <th scope="col">Actions</th> : null}
          </tr>
        </thead>
        <tbody>
          {runs.map((r) => (
            <tr id={`run-${r.id}`} data-run={r.id} data-state={r.state}>
              <td class="id">
                <a href={runHref(r.id)}>
                  <code>{r.id}</code>
                </a>
              </td>
              <td>
                <StateBadge state={r.state} />
                {r.reason ? (
                  <>
                    <br />
                    <small>{reasonText(r.reason)}</small>
                  </>
                ) : null}
              </td>
              <td>
                {r.workflow}@{r.version}
              </td>
              <td class="opt">
                {r.identity.seat}{' '}
                <small>
                  ({r.identity.team}/{r.identity.env})
                </small>
              </td>
              <td class="spend">
                <Bar value={r.spent_micros} max={r.limits.spend_micros} label="spend of the spend box" />
                <small>
                  {usd(r.spent_micros)} of {usd(r.limits.spend_micros)}
                </small>
              </td>
              <td class="opt num">
                {r.steps} / {r.limits.steps}
              </td>
              <td class="opt">
                <When at={r.startedAt} now={now} />
              </td>
              <td class="opt">
                <When at={r.updatedAt} now={now} />
              </td>
              {canKill ? (
                <td>
                  {LIVE_STATES.has(r.state) ? (
                    <KillForm run={r} page={page} back={props.back} compact />
                  ) : null}
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
