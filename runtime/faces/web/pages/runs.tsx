import type { Context } from 'hono';
import { Hono } from 'hono';
import { roleAtLeast } from '../../../auth/operators.ts';
import { RUN_STATES } from '../../../workflows/run-store.ts';
import type { Web, WebEnv } from '../app.tsx';
import { ago, Bar, duration, Layout, type PageContext, ReasonField, usd } from '../layout.tsx';

/**
 * Runs: the list (newest first, filtered by workflow, state and team, paged with the API's
 * cursor) and one run's page: its limits as bars, a timeline of every model and tool call (the
 * journal merged with the ledger, refused and failed attempts included), the conversation, the
 * suspensions with their decisions and the audit log, and its output or error. Everything is read
 * through the operator API; a kill goes through `POST /api/runs/:id/kill` (operator role).
 */

interface RunView {
  id: string;
  workflow: string;
  version: string;
  identity: { team: string; env: string; seat: string };
  input?: unknown;
  state: string;
  reason?: string;
  detail?: Record<string, unknown>;
  limits: { spend_usd: string; spend_micros: number; time_ms: number; steps: number };
  steps: number;
  suspensions: number;
  output?: unknown;
  error?: string;
  spent_usd: string;
  spent_micros: number;
  startedAt: string;
  clockStart: string;
  updatedAt: string;
  endedAt: string | null;
}

interface JournalView {
  kind: 'model' | 'tool';
  name: string;
  at: string;
  ledgerId: string | null;
  key: string;
  result: unknown;
}

interface SpendView {
  spent_micros: number;
  reserved_micros: number;
  ceiling_micros: number | null;
}

interface Tokens {
  input: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  cacheRead: number;
  output: number;
}

interface LedgerView {
  id: string;
  at: string;
  kind: 'model' | 'tool';
  name: string;
  tokens: Tokens;
  cost: number;
  reserved: number;
  outcome: string;
  code?: string;
  latencyMs: number;
  cacheHitRate?: number;
}

interface ApprovalView {
  id: string;
  state: string;
  reason: string;
  summary: string;
  createdAt: string;
  expiresAt: string;
  decision: { action: string; actor: string; reason: string; at: string } | null;
}

interface AuditView {
  id: string;
  at: string;
  actor: string;
  action: string;
  reason: string;
  before?: unknown;
  after?: unknown;
}

/** Why a run is not running, in words. */
const REASONS: Record<string, string> = {
  spend_box: 'spend box',
  time_box: 'time box',
  step_cap: 'step cap',
  budget_exhausted: 'budget exhausted',
  approval_required: 'approval gate',
  session_time_box: 'session time box',
  killed: 'killed',
  kill_switch: 'kill switch',
  prefix_drift: 'prompt prefix drift',
  error: 'error',
};
const reasonText = (r: string | undefined) => (r ? (REASONS[r] ?? r.replace(/_/g, ' ')) : '');

const KILL_REASONS = ['runaway', 'looping without progress', 'wrong input', 'no longer needed'];
const LIVE_STATES = new Set(['running', 'suspended']);
const PAGE_SIZE = 50;
/** A value longer than this (characters or lines) is cut, with the rest behind a <details>. */
const CLIP_CHARS = 600;
const CLIP_LINES = 12;

const enc = encodeURIComponent;
const runHref = (id: string) => `/runs/${enc(id)}`;
const isOperator = (page: PageContext) => roleAtLeast(page.operator.role, 'operator');
const num = (n: number) => n.toLocaleString('en-US');
const utc = (iso: string) => `${iso.replace('T', ' ').slice(0, 19)} UTC`;

function pretty(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined) return '';
  return JSON.stringify(v, null, 2) ?? String(v);
}

/** `3m ago`, or `in 23h 59m` for a time still to come (an approval's expiry). */
function relative(ms: number, now: number): string {
  if (ms <= now) return ago(ms, now);
  return `in ${ago(now, ms).replace(/ ago$/, '')}`;
}

/** A time shown relative to now, with the exact time for hover and assistive tech. */
function When(props: { at: string | null | undefined; now: number }) {
  if (!props.at) return <span class="muted">—</span>;
  return (
    <time datetime={props.at} title={utc(props.at)}>
      {relative(Date.parse(props.at), props.now)}
    </time>
  );
}

/** Time since the run started: `+0.012s`, `+4.2s`, `+3m 10s`. */
function offset(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 0) return '−';
  if (ms < 10_000) return `+${(ms / 1000).toFixed(3)}s`;
  if (ms < 60_000) return `+${(ms / 1000).toFixed(1)}s`;
  return `+${duration(ms)}`;
}

function latency(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}

/** A long value cut to its start, with the whole of it behind a disclosure. */
function Clip(props: { text: string; class?: string }) {
  const { text } = props;
  const lines = text.split('\n');
  const long = text.length > CLIP_CHARS || lines.length > CLIP_LINES;
  if (!long) return <pre class={props.class}>{text}</pre>;
  const head = lines.slice(0, CLIP_LINES).join('\n').slice(0, CLIP_CHARS);
  return (
    <div class="clip">
      <pre class={props.class}>{head}…</pre>
      <details>
        <summary>Show all ({num(text.length)} characters)</summary>
        <pre class={props.class}>{text}</pre>
      </details>
    </div>
  );
}

function StateBadge(props: { state: string }) {
  return <span class={`state ${props.state}`}>{props.state}</span>;
}

/** The kill form: a required reason, a confirmation, and where to come back to. */
function KillForm(props: { run: RunView; page: PageContext; back: string; compact?: boolean }) {
  const { run, page } = props;
  return (
    <form
      method="post"
      action={`${runHref(run.id)}/kill`}
      class={`inline kill${props.compact ? ' compact' : ''}`}
      data-confirm={`Kill run ${run.id} (${run.workflow})? It stops at once and cannot be resumed.`}
    >
      <input type="hidden" name="_csrf" value={page.csrf} />
      <input type="hidden" name="back" value={props.back} />
      <ReasonField
        id={`kill-${run.id}`}
        choices={KILL_REASONS}
        label={props.compact ? `Reason to kill ${run.id}` : 'Reason to kill this run'}
      />
      <button type="submit" class="danger">
        Kill<span class="sr"> run {run.id}</span>
      </button>
    </form>
  );
}

/** Where a form may send the operator back to: one of the runs pages, nothing else. */
function safeBack(v: unknown): string | undefined {
  return typeof v === 'string' && /^\/runs(\/|\?|$)/.test(v) && !v.startsWith('//') ? v : undefined;
}

function pathOf(c: Context<WebEnv>): string {
  const u = new URL(c.req.url);
  u.searchParams.delete('ok');
  u.searchParams.delete('error');
  const q = u.searchParams.toString();
  return `${u.pathname}${q ? `?${q}` : ''}`;
}

/* ------------------------------------------------------------------------------------------ */
/* The list                                                                                    */

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

/* ------------------------------------------------------------------------------------------ */
/* The run page                                                                                */

interface TimelineRow {
  at: number;
  /** The step number (1-based journal position); none for an attempt that did not complete. */
  step?: number;
  kind: string;
  name: string;
  ledger?: LedgerView;
}

/** Every journal entry with its ledger entry, plus the run's ledger entries no step refers to
 * (refused, failed or expired attempts), in time order. */
function timeline(journal: JournalView[], ledger: LedgerView[]): TimelineRow[] {
  const byId = new Map(ledger.map((e) => [e.id, e]));
  const used = new Set<string>();
  const rows: TimelineRow[] = journal.map((j, i) => {
    const l = j.ledgerId ? byId.get(j.ledgerId) : undefined;
    if (l) used.add(l.id);
    // When the step completed (as the conversation shows it): after its ledger entry was written.
    return { at: Date.parse(j.at), step: i + 1, kind: j.kind, name: j.name, ledger: l };
  });
  for (const l of ledger) {
    if (!used.has(l.id)) rows.push({ at: Date.parse(l.at), kind: l.kind, name: l.name, ledger: l });
  }
  return rows.sort((a, b) => a.at - b.at || (a.step ?? Infinity) - (b.step ?? Infinity));
}

const cacheWrite = (t: Tokens) => t.cacheWrite5m + t.cacheWrite1h;

function Timeline(props: { rows: TimelineRow[]; start: number }) {
  const { rows, start } = props;
  if (rows.length === 0) return <p class="muted">No model or tool calls yet.</p>;
  const total = { input: 0, write: 0, read: 0, output: 0, cost: 0 };
  for (const r of rows) {
    if (!r.ledger) continue;
    total.input += r.ledger.tokens.input;
    total.write += cacheWrite(r.ledger.tokens);
    total.read += r.ledger.tokens.cacheRead;
    total.output += r.ledger.tokens.output;
    total.cost += r.ledger.cost;
  }
  return (
    <div class="scroll">
      <table class="timeline">
        <caption class="sr">Model and tool calls in time order, with tokens, cost and outcome</caption>
        <thead>
          <tr>
            <th scope="col" class="num">
              Step
            </th>
            <th scope="col">Time</th>
            <th scope="col" class="opt">
              Kind
            </th>
            <th scope="col">Model or tool</th>
            <th scope="col" class="opt num">
              Input
            </th>
            <th scope="col" class="opt num">
              Cache write
            </th>
            <th scope="col" class="opt num">
              Cache read
            </th>
            <th scope="col" class="opt num">
              Output
            </th>
            <th scope="col" class="num">
              Cost
            </th>
            <th scope="col" class="opt num">
              Cache hit
            </th>
            <th scope="col" class="opt num">
              Latency
            </th>
            <th scope="col">Outcome</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => {
            const l = r.ledger;
            const at = new Date(r.at).toISOString();
            return (
              <tr
                id={r.step ? `step-${r.step}` : undefined}
                class={r.step ? undefined : 'attempt'}
                data-ledger={l?.id}
                data-outcome={l?.outcome ?? 'ok'}
              >
                <td class="num">{r.step ? <a href={`#msg-${r.step}`}>{r.step}</a> : '—'}</td>
                <td>
                  <time datetime={at} title={utc(at)}>
                    {offset(r.at - start)}
                  </time>
                </td>
                <td class="opt">{r.kind}</td>
                <td>{r.name}</td>
                <td class="opt num">{l ? num(l.tokens.input) : '—'}</td>
                <td class="opt num">{l ? num(cacheWrite(l.tokens)) : '—'}</td>
                <td class="opt num">{l ? num(l.tokens.cacheRead) : '—'}</td>
                <td class="opt num">{l ? num(l.tokens.output) : '—'}</td>
                <td class="num">{l ? usd(l.cost) : '—'}</td>
                <td class="opt num">
                  {l?.cacheHitRate === undefined ? '—' : `${Math.round(l.cacheHitRate * 100)}%`}
                </td>
                <td class="opt num">{l ? latency(l.latencyMs) : '—'}</td>
                <td>
                  {l ? (
                    <span class={`outcome ${l.outcome}`}>
                      {l.outcome}
                      {l.code ? ` (${l.code})` : ''}
                    </span>
                  ) : (
                    <span class="muted">no ledger entry</span>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row" colspan={4}>
              Total ({rows.length} {rows.length === 1 ? 'call' : 'calls'})
            </th>
            <td class="opt num">{num(total.input)}</td>
            <td class="opt num">{num(total.write)}</td>
            <td class="opt num">{num(total.read)}</td>
            <td class="opt num">{num(total.output)}</td>
            <td class="num">{usd(total.cost)}</td>
            <td class="opt" colspan={3} />
          </tr>
        </tfoot>
      </table>
    </div>
  );
}

interface Block {
  type?: string;
  text?: string;
  thinking?: string;
  name?: string;
  input?: unknown;
}

function ModelTurn(props: { result: unknown }) {
  const r = props.result as { message?: { content?: unknown } } | null;
  const content = r?.message?.content;
  if (!Array.isArray(content)) return <Clip text={pretty(props.result)} />;
  if (content.length === 0) return <p class="muted">(no content)</p>;
  return (
    <>
      {(content as Block[]).map((b) => {
        if (b.type === 'text') return <Clip text={b.text ?? ''} />;
        if (b.type === 'tool_use')
          return <Clip class="call" text={`→ ${b.name ?? '?'}(${JSON.stringify(b.input ?? {})})`} />;
        if (b.type === 'thinking') return <Clip class="thinking" text={b.thinking ?? ''} />;
        return <Clip text={pretty(b)} />;
      })}
    </>
  );
}

function ToolTurn(props: { result: unknown }) {
  const r = props.result as { content?: unknown; isError?: boolean } | null;
  if (!r || typeof r !== 'object' || !('content' in r)) return <Clip text={pretty(props.result)} />;
  return (
    <>
      {r.isError ? <p class="outcome error">The tool answered with an error:</p> : null}
      <Clip text={pretty(r.content)} />
    </>
  );
}

function Conversation(props: { run: RunView; journal: JournalView[]; start: number }) {
  const { run, journal, start } = props;
  return (
    <ol class="conversation">
      {run.input === undefined ? null : (
        <li class="input">
          <p class="who">
            <strong>Input</strong>
          </p>
          <Clip text={pretty(run.input)} />
        </li>
      )}
      {journal.map((j, i) => (
        <li class={j.kind} id={`msg-${i + 1}`}>
          <p class="who">
            <strong>{j.kind === 'model' ? `Model ${j.name}` : `Tool ${j.name}`}</strong>{' '}
            <small>
              <a href={`#step-${i + 1}`}>step {i + 1}</a> · {offset(Date.parse(j.at) - start)}
            </small>
          </p>
          {j.kind === 'model' ? <ModelTurn result={j.result} /> : <ToolTurn result={j.result} />}
        </li>
      ))}
    </ol>
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

function Approvals(props: { items: ApprovalView[]; now: number }) {
  if (props.items.length === 0) return <p class="muted">This run has not waited for a human.</p>;
  return (
    <div class="scroll">
      <table class="approvals">
        <caption class="sr">The run's suspensions and what was decided</caption>
        <thead>
          <tr>
            <th scope="col">Suspension</th>
            <th scope="col">Summary</th>
            <th scope="col">State</th>
            <th scope="col">Decided by</th>
            <th scope="col" class="opt">
              Their reason
            </th>
            <th scope="col" class="opt">
              Opened
            </th>
            <th scope="col">Decided</th>
          </tr>
        </thead>
        <tbody>
          {props.items.map((a) => (
            <tr id={`approval-${a.id}`} data-approval={a.id}>
              <td class="id">
                {a.state === 'pending' ? <a href={`/#item-${a.id}`}>{a.id}</a> : <code>{a.id}</code>}
                <br />
                <small>{reasonText(a.reason)}</small>
              </td>
              <td>{a.summary}</td>
              <td>
                <StateBadge state={a.state} />
              </td>
              <td>{a.decision?.actor ?? <span class="muted">—</span>}</td>
              <td class="opt">{a.decision?.reason ?? <span class="muted">—</span>}</td>
              <td class="opt">
                <When at={a.createdAt} now={props.now} />
              </td>
              <td>
                {a.decision ? (
                  <When at={a.decision.at} now={props.now} />
                ) : (
                  <small>
                    expires <When at={a.expiresAt} now={props.now} />
                  </small>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** `suspended → killed` when an audit entry records a state change; nothing otherwise. */
function change(e: AuditView): string {
  const b = e.before as { state?: string } | undefined;
  const a = e.after as { state?: string } | undefined;
  if (b?.state && a?.state) return `${b.state} → ${a.state}`;
  if (a?.state) return `→ ${a.state}`;
  return '';
}

function Audit(props: { entries: AuditView[]; now: number }) {
  if (props.entries.length === 0) return <p class="muted">No audit entries for this run.</p>;
  return (
    <div class="scroll">
      <table class="audit">
        <caption class="sr">Audit entries for this run, oldest first</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Action</th>
            <th scope="col">Actor</th>
            <th scope="col">Reason</th>
            <th scope="col" class="opt">
              Change
            </th>
          </tr>
        </thead>
        <tbody>
          {props.entries.map((e) => (
            <tr data-audit={e.action}>
              <td>
                <When at={e.at} now={props.now} />
              </td>
              <td>
                <code>{e.action}</code>
              </td>
              <td>{e.actor}</td>
              <td>{e.reason}</td>
              <td class="opt">{change(e)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
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

function RunBody(props: {
  run: RunView;
  journal: JournalView[];
  spend: SpendView;
  ledger: LedgerView[];
  approvals: ApprovalView[] | undefined;
  audit: AuditView[];
  page: PageContext;
  now: number;
}) {
  const { run, journal, spend, ledger, page, now } = props;
  const start = Date.parse(run.startedAt);
  const clock = Date.parse(run.clockStart);
  const final = !LIVE_STATES.has(run.state);
  const until = final ? Date.parse(run.endedAt ?? run.updatedAt) : now;
  const elapsed = Math.max(0, until - clock);
  const pending = props.approvals?.find((a) => a.state === 'pending');
  const clockNote =
    clock !== start
      ? `counted from ${utc(run.clockStart)} (the clock restarted on a decision)`
      : run.state === 'suspended'
        ? 'the clock keeps running while the run waits'
        : undefined;
  const spent = spend.spent_micros ?? run.spent_micros;
  return (
    <>
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

      {isOperator(page) && LIVE_STATES.has(run.state) ? (
        <section class="card actions-card" aria-labelledby="h-act">
          <h2 id="h-act">Act on this run</h2>
          {pending ? (
            <p>
              Waiting for a human: <a href={`/#item-${pending.id}`}>decide in the inbox</a> ({pending.summary}
              )
            </p>
          ) : null}
          <KillForm run={run} page={page} back={runHref(run.id)} />
        </section>
      ) : null}

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

/* ------------------------------------------------------------------------------------------ */

export function runPages(web: Web): Hono<WebEnv> {
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
        web.get<{ runs: RunView[]; next?: string }>(c, `/api/runs?${q}`),
        web.get<{ workflows: { id: string }[] }>(c, '/api/workflows'),
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
    const filtered = Object.values(filters).some(Boolean);

    return c.html(
      <Layout title="Runs" active="/runs" page={page}>
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
              <RunsTable runs={runs} page={page} back={pathOf(c)} now={now} />
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
      </Layout>,
    );
  });

  app.get('/runs/:id', async (c) => {
    const page = c.get('page');
    const id = c.req.param('id');
    if (!web.rt.runs) return c.html(<NotHosted page={page} />, 503);
    const [detail, ledger, audit, approvals] = await Promise.all([
      web.get<{ run: RunView; journal: JournalView[]; spend: SpendView }>(c, `/api/runs/${enc(id)}`),
      web.get<{ entries: LedgerView[] }>(c, `/api/ledger?run=${enc(id)}&limit=1000`),
      web.get<{ entries: AuditView[] }>(c, `/api/audit?target=${enc(`run:${id}`)}&limit=1000`),
      web.rt.approvals
        ? web.get<{ approvals: ApprovalView[] }>(c, `/api/approvals?run=${enc(id)}&state=all&limit=1000`)
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
