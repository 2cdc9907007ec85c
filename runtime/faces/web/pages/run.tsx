import { Hono } from 'hono';
import type { ApprovalsResponse, ApprovalView } from '../../views/approvals.ts';
import type { AuditResponse, AuditView } from '../../views/audit.ts';
import type { LedgerResponse, LedgerView } from '../../views/ledger.ts';
import type { JournalView, RunDetailResponse, RunSpendView, RunView } from '../../views/runs.ts';
import type { Web, WebEnv } from '../app.tsx';
import { Bar, duration, Layout, type PageContext, usd } from '../layout.tsx';
import { DecisionForms, RunRequest, ViewerHint } from './decide.tsx';
import { enc, StateBadge } from './parts.tsx';
import { Conversation } from './run-conversation.tsx';
import { Approvals, Audit } from './run-decisions.tsx';
import {
  Clip,
  isOperator,
  KillForm,
  LIVE_STATES,
  pretty,
  reasonText,
  runHref,
  safeBack,
  utc,
  When,
} from './run-parts.tsx';
import { Timeline, timeline } from './run-timeline.tsx';

/**
 * One run's page: its limits as bars, a timeline of every model and tool call (the journal merged
 * with the ledger, refused and failed attempts included), the conversation, the suspensions with
 * their decisions and the audit log, and its output or error. Everything is read through the
 * operator API; a kill goes through `POST /api/runs/:id/kill` (operator role).
 */

export function runPages(web: Web): Hono<WebEnv> {
  const app = new Hono<WebEnv>();

  app.get('/runs/:id', async (c) => {
    const page = c.get('page');
    const id = c.req.param('id');
    if (!web.rt.runs) return c.html(<NotHosted page={page} />, 503);
    const [detail, ledger, audit, approvals] = await Promise.all([
      web.get<RunDetailResponse>(c, `/api/runs/${enc(id)}`),
      web.get<LedgerResponse>(c, `/api/ledger?run=${enc(id)}&limit=1000`),
      web.get<AuditResponse>(c, `/api/audit?target=${enc(`run:${id}`)}&limit=1000`),
      web.rt.approvals
        ? web.get<ApprovalsResponse>(c, `/api/approvals?run=${enc(id)}&state=all&limit=1000`)
        : undefined,
    ]);
    const { run } = detail;
    return c.html(
      <Layout title={`Run ${run.id}`} active="/runs" page={page}>
        <p class="crumbs">
          <a href="/runs">← All runs</a>
        </p>
        <div data-live={`run:${run.id}`}>
          <RunBody
            run={run}
            journal={detail.journal}
            spend={detail.spend}
            ledger={ledger.entries}
            approvals={approvals?.approvals}
            audit={[...audit.entries].reverse()}
            page={page}
            now={Date.now()}
          />
        </div>
      </Layout>,
    );
  });

  app.post('/runs/:id/kill', async (c) => {
    web.require(c, 'operator');
    const form = await c.req.parseBody();
    const id = c.req.param('id');
    return web.act(
      c,
      'POST',
      `/api/runs/${enc(id)}/kill`,
      { reason: String(form.reason ?? '') },
      `${id} killed`,
      // Back where the form was; without a (valid) one and a Referer, to the run's page.
      safeBack(form.back) ?? (c.req.header('referer') ? undefined : runHref(id)),
    );
  });

  return app;
}

function NotHosted(props: { page: PageContext }) {
  return (
    <Layout title="Run" active="/runs" page={props.page}>
      <p>This server does not host workflows.</p>
    </Layout>
  );
}

function RunBody(props: {
  run: RunView;
  journal: JournalView[];
  spend: RunSpendView;
  ledger: LedgerView[];
  approvals: ApprovalView[] | undefined;
  audit: AuditView[];
  page: PageContext;
  now: number;
}) {
  const { run, journal, spend, ledger, page, now } = props;
  const start = Date.parse(run.startedAt);
  const pending = props.approvals?.find((a) => a.state === 'pending');
  return (
    <>
      <RunSummary run={run} now={now} />

      {isOperator(page) && LIVE_STATES.has(run.state) ? (
        <section class="card actions-card" aria-labelledby="h-act">
          <h2 id="h-act">Act on this run</h2>
          {pending ? <PendingDecision item={pending} page={page} back={runHref(run.id)} /> : null}
          <KillForm run={run} page={page} back={runHref(run.id)} />
        </section>
      ) : LIVE_STATES.has(run.state) ? (
        <ViewerHint page={page} what="this run" />
      ) : null}

      <RunLimits run={run} spend={spend} now={now} />

      <section aria-labelledby="h-timeline">
        <h2 id="h-timeline">Timeline</h2>
        <Timeline rows={timeline(journal, ledger)} start={start} />
      </section>

      {run.error || run.output !== undefined ? (
        <section aria-labelledby="h-result">
          <h2 id="h-result">{run.error ? 'Error' : 'Output'}</h2>
          {run.error ? <Clip class="error" text={run.error} /> : null}
          {run.output !== undefined ? <Clip text={pretty(run.output)} /> : null}
        </section>
      ) : null}

      <section aria-labelledby="h-conversation">
        <h2 id="h-conversation">Conversation</h2>
        {journal.length === 0 && run.input === undefined ? (
          <p class="muted">Nothing said yet.</p>
        ) : (
          <Conversation run={run} journal={journal} start={start} />
        )}
      </section>

      <section aria-labelledby="h-decisions">
        <h2 id="h-decisions">Suspensions and decisions</h2>
        {props.approvals ? (
          <Approvals items={props.approvals} now={now} />
        ) : (
          <p class="muted">This server does not host approvals.</p>
        )}
        <h3>Audit log</h3>
        <Audit entries={props.audit} now={now} />
      </section>
    </>
  );
}

/** A pending suspension decided here, as in the inbox: why it waits, the request, the forms. */
function PendingDecision(props: { item: ApprovalView; page: PageContext; back: string }) {
  const { item } = props;
  return (
    <div class="pending" id={`decide-${item.id}`} data-decide={item.id}>
      <p>
        <strong>Waiting for a human</strong> ({item.id}): <span class="why">{item.summary}</span>
      </p>
      <RunRequest item={item} />
      <DecisionForms item={item} page={props.page} back={props.back} kill={false} />
    </div>
  );
}

function RunSummary(props: { run: RunView; now: number }) {
  const { run, now } = props;
  return (
    <section aria-labelledby="h-summary">
      <h2 id="h-summary" class="sr">
        Summary
      </h2>
      <p class="status">
        <StateBadge state={run.state} />{' '}
        {run.reason ? <strong class="why">{reasonText(run.reason)}</strong> : null}
      </p>
      <ul class="facts">
        <li>
          workflow{' '}
          <a href={`/runs?workflow=${enc(run.workflow)}`}>
            {run.workflow}@{run.version}
          </a>
        </li>
        <li>
          started by <strong>{run.identity.seat}</strong> (team {run.identity.team}, env {run.identity.env})
        </li>
        <li>
          started <When at={run.startedAt} now={now} />
        </li>
        {run.endedAt ? (
          <li>
            ended <When at={run.endedAt} now={now} />
          </li>
        ) : (
          <li>
            updated <When at={run.updatedAt} now={now} />
          </li>
        )}
        {run.suspensions ? <li>suspended {run.suspensions}×</li> : null}
      </ul>
      {run.detail && run.reason ? (
        <details class="why-detail">
          <summary>Why it stopped: the numbers</summary>
          <Detail detail={run.detail} />
        </details>
      ) : null}
    </section>
  );
}

/** What the run used of its spend box, time box and step cap. */
function RunLimits(props: { run: RunView; spend: RunSpendView; now: number }) {
  const { run, spend, now } = props;
  const start = Date.parse(run.startedAt);
  const clock = Date.parse(run.clockStart);
  const final = !LIVE_STATES.has(run.state);
  const until = final ? Date.parse(run.endedAt ?? run.updatedAt) : now;
  const elapsed = Math.max(0, until - clock);
  const clockNote =
    clock !== start
      ? `counted from ${utc(run.clockStart)} (the clock restarted on a decision)`
      : run.state === 'suspended'
        ? 'the clock keeps running while the run waits'
        : undefined;
  const spent = spend.spent_micros ?? run.spent_micros;
  return (
    <section aria-labelledby="h-limits">
      <h2 id="h-limits">Limits</h2>
      <table class="limits">
        <caption class="sr">What the run used of its spend box, time box and step cap</caption>
        <thead>
          <tr>
            <th scope="col">Limit</th>
            <th scope="col">Used</th>
            <th scope="col">Numbers</th>
          </tr>
        </thead>
        <tbody>
          <LimitRow
            label="Spend"
            value={spent}
            max={run.limits.spend_micros}
            text={`${usd(spent)} of ${usd(run.limits.spend_micros)}`}
            note={spend.reserved_micros ? `${usd(spend.reserved_micros)} reserved in flight` : undefined}
          />
          <LimitRow
            label="Time"
            value={elapsed}
            max={run.limits.time_ms}
            text={`${duration(elapsed)} of ${duration(run.limits.time_ms)}`}
            note={clockNote}
          />
          <LimitRow
            label="Steps"
            value={run.steps}
            max={run.limits.steps}
            text={`${run.steps} of ${run.limits.steps}`}
          />
        </tbody>
      </table>
    </section>
  );
}

function LimitRow(props: { label: string; value: number; max: number; text: string; note?: string }) {
  return (
    <tr>
      <th scope="row">{props.label}</th>
      <td class="bar-cell">
        <Bar value={props.value} max={props.max} label={`${props.label} used`} />
      </td>
      <td>
        {props.text}
        {props.note ? (
          <>
            <br />
            <small>{props.note}</small>
          </>
        ) : null}
      </td>
    </tr>
  );
}

const DETAIL_LABELS: Record<string, string> = {
  spent: 'spent',
  spendBox: 'spend box',
  nextCallMax: 'next call up to',
  steps: 'steps',
  stepCap: 'step cap',
  elapsedMs: 'elapsed',
  timeBox: 'time box',
  tool: 'tool',
  input: 'input',
  budget: 'budget',
  message: 'message',
  by: 'by',
  why: 'why',
  code: 'code',
  scope: 'scope',
};
const MONEY_KEYS = new Set(['spent', 'spendBox', 'nextCallMax']);
const TIME_KEYS = new Set(['elapsedMs', 'timeBox']);

function detailValue(k: string, v: unknown): string {
  if (typeof v === 'number' && MONEY_KEYS.has(k)) return usd(v);
  if (typeof v === 'number' && TIME_KEYS.has(k)) return duration(v);
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function Detail(props: { detail: Record<string, unknown> | undefined }) {
  const entries = Object.entries(props.detail ?? {}).filter(([k]) => k !== 'key');
  if (entries.length === 0) return null;
  return (
    <dl class="detail">
      {entries.map(([k, v]) => (
        <>
          <dt>{DETAIL_LABELS[k] ?? k}</dt>
          <dd>{detailValue(k, v)}</dd>
        </>
      ))}
    </dl>
  );
}
