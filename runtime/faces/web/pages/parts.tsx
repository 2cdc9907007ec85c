import { ago, usd } from '../layout.tsx';

/** Small pieces the money pages share: times, state badges, form fields, audit values. */

export const enc = encodeURIComponent;
export const msOf = (at: number | string | null | undefined) =>
  at === null || at === undefined ? Number.NaN : typeof at === 'number' ? at : Date.parse(at);

/** `2026-11-24 15:24 UTC`: absolute, for audit trails and resets. */
export function when(at: number | string | null | undefined): string {
  const ms = msOf(at);
  return Number.isFinite(ms) ? `${new Date(ms).toISOString().replace('T', ' ').slice(0, 16)} UTC` : '—';
}

export function Time(props: { at: number | string | null | undefined; relative?: boolean }) {
  const ms = msOf(props.at);
  if (!Number.isFinite(ms)) return <span>—</span>;
  const iso = new Date(ms).toISOString();
  return (
    <time datetime={iso} title={when(ms)}>
      {props.relative ? ago(ms) : when(ms)}
    </time>
  );
}

export const pct = (rate: number) => `${Math.round(rate * 1000) / 10}%`;
export const str = (form: Record<string, unknown>, k: string) =>
  typeof form[k] === 'string' ? (form[k] as string).trim() : '';
export const errorText = (body: unknown) =>
  (body as { error?: { message?: string } })?.error?.message ?? 'the request failed';

export function StateBadge(props: { state: string }) {
  return <span class={`state ${props.state}`}>{props.state}</span>;
}

/** `{ ceiling: 50000000 }` → `ceiling $50.00`; kill records → their reason. */
export function change(v: unknown): string {
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
