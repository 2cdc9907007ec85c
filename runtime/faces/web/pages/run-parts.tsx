import type { Context } from 'hono';
import { roleAtLeast } from '../../../auth/operators.ts';
import type { RunView } from '../../views/runs.ts';
import type { WebEnv } from '../app.tsx';
import { ago, duration, type PageContext, ReasonField } from '../layout.tsx';
import { enc } from './parts.tsx';

/** What the runs pages share: why a run stopped in words, times, long values cut, the kill form. */

/** Why a run is not running, in words. */
export const REASONS: Record<string, string> = {
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
export const reasonText = (r: string | undefined) => (r ? (REASONS[r] ?? r.replace(/_/g, ' ')) : '');

export const KILL_REASONS = ['runaway', 'looping without progress', 'wrong input', 'no longer needed'];
export const LIVE_STATES = new Set(['running', 'suspended']);
/** A value longer than this (characters or lines) is cut, with the rest behind a <details>. */
const CLIP_CHARS = 600;
const CLIP_LINES = 12;

export const runHref = (id: string) => `/runs/${enc(id)}`;
export const isOperator = (page: PageContext) => roleAtLeast(page.operator.role, 'operator');
export const num = (n: number) => n.toLocaleString('en-US');
export const utc = (iso: string) => `${iso.replace('T', ' ').slice(0, 19)} UTC`;

export function pretty(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined) return '';
  return JSON.stringify(v, null, 2) ?? String(v);
}

/** `3m ago`, or `in 23h 59m` for a time still to come (an approval's expiry). */
export function relative(ms: number, now: number): string {
  if (ms <= now) return ago(ms, now);
  return `in ${ago(now, ms).replace(/ ago$/, '')}`;
}

/** A time shown relative to now, with the exact time for hover and assistive tech. */
export function When(props: { at: string | null | undefined; now: number }) {
  if (!props.at) return <span class="muted">—</span>;
  return (
    <time datetime={props.at} title={utc(props.at)}>
      {relative(Date.parse(props.at), props.now)}
    </time>
  );
}

/** Time since the run started: `+0.012s`, `+4.2s`, `+3m 10s`. */
export function offset(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 0) return '−';
  if (ms < 10_000) return `+${(ms / 1000).toFixed(3)}s`;
  if (ms < 60_000) return `+${(ms / 1000).toFixed(1)}s`;
  return `+${duration(ms)}`;
}

export function latency(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}

/** A long value cut to its start, with the whole of it behind a disclosure. */
export function Clip(props: { text: string; class?: string }) {
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

/** The kill form: a required reason, a confirmation, and where to come back to. */
export function KillForm(props: { run: RunView; page: PageContext; back: string; compact?: boolean }) {
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
        placeholder={props.compact ? 'why (audited)' : undefined}
      />
      <button type="submit" class="danger">
        Kill<span class="sr"> run {run.id}</span>
      </button>
    </form>
  );
}

/** Where a form may send the operator back to: one of the runs pages, nothing else. */
export function safeBack(v: unknown): string | undefined {
  return typeof v === 'string' && /^\/runs(\/|\?|$)/.test(v) && !v.startsWith('//') ? v : undefined;
}

export function pathOf(c: Context<WebEnv>): string {
  const u = new URL(c.req.url);
  u.searchParams.delete('ok');
  u.searchParams.delete('error');
  const q = u.searchParams.toString();
  return `${u.pathname}${q ? `?${q}` : ''}`;
}
