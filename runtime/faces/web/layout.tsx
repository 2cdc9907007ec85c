import { raw } from 'hono/html';
import type { Child } from 'hono/jsx';
import type { Operator } from '../../auth/operators.ts';
import { roleAtLeast } from '../../auth/operators.ts';
import type { KillSwitch } from '../../store/port.ts';

/** What every page knows: who is looking, the CSRF token for its forms, and the banners. */
export interface PageContext {
  operator: Operator;
  csrf: string;
  emulator: boolean;
  kills: KillSwitch[];
  /** A one-line result of the last action (`?ok=` / `?error=` after a redirect). */
  flash?: { kind: 'ok' | 'error'; text: string };
}

const NAV: { href: string; label: string; admin?: boolean }[] = [
  { href: '/', label: 'Inbox' },
  { href: '/runs', label: 'Runs' },
  { href: '/budgets', label: 'Budgets' },
  { href: '/kill-switches', label: 'Kill switches' },
  { href: '/spend', label: 'Spend' },
  { href: '/keys', label: 'Keys', admin: true },
];

export function Layout(props: { title: string; active: string; page: PageContext; children?: Child }) {
  const { page } = props;
  return (
    <>
      {raw('<!doctype html>')}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>{`${props.title} · Chokepoint`}</title>
          <link rel="stylesheet" href="/assets/app.css" />
          <script src="/assets/app.js" defer />
        </head>
        <body>
          <a class="skip" href="#main">
            Skip to content
          </a>
          <header class="top">
            <strong class="brand">Chokepoint</strong>
            <nav aria-label="Main">
              {NAV.filter((n) => !n.admin || roleAtLeast(page.operator.role, 'admin')).map((n) => (
                <a href={n.href} aria-current={n.href === props.active ? 'page' : undefined}>
                  {n.label}
                </a>
              ))}
            </nav>
            <form method="post" action="/logout" class="who">
              <span>
                {page.operator.name} <small>({page.operator.role})</small>
              </span>
              <input type="hidden" name="_csrf" value={page.csrf} />
              <button type="submit" class="link">
                Log out
              </button>
            </form>
          </header>
          {page.emulator ? (
            <p class="banner emulator" role="status">
              Emulator: no real model is called and no real money is spent.
            </p>
          ) : null}
          {page.kills.length ? (
            <p class="banner killed" role="alert">
              Kill switch on: {page.kills.map((k) => k.scope).join(', ')}. Calls in these scopes are refused.{' '}
              <a href="/kill-switches">Kill switches</a>
            </p>
          ) : null}
          {page.flash ? (
            <p class={`flash ${page.flash.kind}`} role={page.flash.kind === 'error' ? 'alert' : 'status'}>
              {page.flash.text}
            </p>
          ) : null}
          <main id="main">
            <h1>{props.title}</h1>
            {props.children}
          </main>
        </body>
      </html>
    </>
  );
}

/** A form that changes state: POST, with the CSRF token. */
export function ActionForm(props: {
  action: string;
  page: PageContext;
  class?: string;
  /** Asks the browser to confirm before submitting (with the script; the server checks anyway). */
  confirm?: string;
  children?: Child;
}) {
  return (
    <form method="post" action={props.action} class={props.class} data-confirm={props.confirm}>
      <input type="hidden" name="_csrf" value={props.page.csrf} />
      {props.children}
    </form>
  );
}

/** Reason field with prefilled choices (a datalist) and free text; required. */
export function ReasonField(props: { id: string; choices: string[]; label?: string; placeholder?: string }) {
  return (
    <label class="reason">
      <span>{props.label ?? 'Reason'}</span>
      <input
        name="reason"
        required
        list={`${props.id}-reasons`}
        placeholder={props.placeholder ?? 'why (goes to the audit log)'}
      />
      <datalist id={`${props.id}-reasons`}>
        {props.choices.map((c) => (
          <option value={c} />
        ))}
      </datalist>
    </label>
  );
}

/** A bar of `value` out of `max`; `share` (a part of a whole) is never coloured as a warning. */
export function Bar(props: { value: number; max: number; label: string; share?: boolean }) {
  const pct = props.max > 0 ? Math.min(100, Math.round((100 * props.value) / props.max)) : 0;
  return (
    <div class="bar" title={`${props.label}: ${pct}%`}>
      {/* The width comes from the stylesheet (data-pct): the CSP allows no inline style. */}
      <span
        data-pct={String(pct)}
        class={props.share ? 'share' : pct >= 90 ? 'hot' : pct >= 70 ? 'warm' : ''}
        aria-hidden="true"
      />
      <em>
        <span class="sr">{props.label}: </span>
        {pct}%
      </em>
    </div>
  );
}

export const usd = (micros: number | null | undefined) =>
  micros === null || micros === undefined ? '—' : `$${(micros / 1e6).toFixed(micros % 10_000 === 0 ? 2 : 6)}`;

export function ago(ms: number, now = Date.now()): string {
  if (ms > now + 1000) return `in ${ago(now, ms).replace(/ ago$/, '')}`;
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m ${s % 60}s` : `${m}m`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}
