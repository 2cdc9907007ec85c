/**
 * Tiny formatting helpers for human CLI output: aligned tables, key/value blocks, money and
 * times. Everything returns lines (no trailing whitespace) so commands stay easy to test.
 */

export type Align = 'left' | 'right';

export interface Column {
  header: string;
  align?: Align;
}

const GAP = '  ';

/** Pads cells into aligned columns under upper-case headers; the last column is never padded. */
export function table(
  columns: (string | Column)[],
  rows: (string | number | null | undefined)[][],
): string[] {
  const cols: Column[] = columns.map((c) => (typeof c === 'string' ? { header: c } : c));
  const cells = rows.map((r) => cols.map((_, i) => cellText(r[i])));
  const widths = cols.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => {
        const last = i === values.length - 1;
        if (cols[i]!.align === 'right') return v.padStart(widths[i]!);
        return last ? v : v.padEnd(widths[i]!);
      })
      .join(GAP)
      .trimEnd();
  return [line(cols.map((c) => c.header)), ...cells.map(line)];
}

/** `label  value` lines with the labels aligned; undefined values are left out. */
export function keyValues(pairs: [string, string | number | null | undefined][]): string[] {
  const shown = pairs.filter(([, v]) => v !== undefined);
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${k.padEnd(width)}${GAP}${cellText(v)}`.trimEnd());
}

function cellText(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === '') return '-';
  // One line per row: a reason with a newline must not break the table.
  return String(v).replace(/\s*\n\s*/g, ' ');
}

/** `"12.34"` (an API `*_usd` field) → `$12.34`. */
export function dollars(usd: string | null | undefined): string {
  if (usd === null || usd === undefined) return '-';
  return usd.startsWith('-') ? `-$${usd.slice(1)}` : `$${usd}`;
}

/** An ISO time or epoch ms → `2025-06-01 14:03Z` (UTC, minutes). */
export function shortTime(t: string | number | null | undefined): string {
  if (t === null || t === undefined || t === '') return '-';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return `${d.toISOString().slice(0, 16).replace('T', ' ')}Z`;
}

/** How long until `t`, compactly: `in 5h 12m`, `in 3d 4h`, `now`. */
export function until(t: string | number | null | undefined, now = Date.now()): string {
  if (t === null || t === undefined || t === '') return '-';
  const ms = new Date(t).getTime() - now;
  if (Number.isNaN(ms)) return String(t);
  if (ms <= 0) return 'now';
  const m = Math.ceil(ms / 60_000);
  const [d, h, min] = [Math.floor(m / 1440), Math.floor((m % 1440) / 60), m % 60];
  if (d > 0) return `in ${d}d ${h}h`;
  if (h > 0) return `in ${h}h ${min}m`;
  return `in ${min}m`;
}
