import type { WindowSpec } from './port.ts';

/**
 * Budget windows, derived from the time alone: no reset job ever runs. Both store backends ask
 * these functions which window `now` falls in; the Redis scripts receive the calendar bounds as
 * arguments and repeat the (integer-only) rolling arithmetic below.
 *
 * - `day` / `month`: calendar windows in an IANA time zone. A day starts at the first instant whose
 *   local date is that day, so a DST day lasts 23 or 25 hours and a zone that skips midnight starts
 *   its day at 01:00.
 * - `total`: one window that never ends.
 * - a rolling duration (`90m`, `24h`, `7d`): spend is kept in buckets of duration/24, aligned to the
 *   epoch. The window is the current bucket plus the 24 before it, so a cost leaves the window
 *   between `duration` and `duration + duration/24` after it was charged: at most one bucket late,
 *   never early (leaving early would let a caller spend the ceiling twice within one duration).
 */

export const ROLLING_BUCKETS = 24;

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const ROLLING = /^([1-9]\d{0,5})([mhd])$/;

export type ParsedWindow =
  | { kind: 'day' }
  | { kind: 'month' }
  | { kind: 'total' }
  | { kind: 'rolling'; durationMs: number; bucketMs: number };

export interface WindowBounds {
  /** Identifies the window: `2024-03-31`, `2024-03`, `total`, or the rolling bucket number. */
  key: string;
  /** First instant inside the window (ms); 0 for `total`. */
  start: number;
  /** First instant after the window, when spend starts leaving it (ms); null for `total`. */
  resetsAt: number | null;
}

export class WindowError extends Error {
  constructor(readonly input: unknown) {
    super(
      `unknown budget window ${JSON.stringify(input)}: expected day, month, total or a duration like 90m, 24h, 7d`,
    );
    this.name = 'WindowError';
  }
}

/** Reads a window spec; throws `WindowError` for anything else. */
export function parseWindow(spec: unknown): ParsedWindow {
  if (spec === 'day' || spec === 'month' || spec === 'total') return { kind: spec };
  const m = typeof spec === 'string' ? ROLLING.exec(spec) : null;
  if (!m) throw new WindowError(spec);
  const durationMs = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  // Every m/h/d duration divides by 24 into whole milliseconds (60_000 / 24 = 2_500).
  return { kind: 'rolling', durationMs, bucketMs: durationMs / ROLLING_BUCKETS };
}

export function isWindowSpec(spec: unknown): spec is WindowSpec {
  try {
    parseWindow(spec);
    return true;
  } catch {
    return false;
  }
}

/** Throws a RangeError for a zone Intl does not know. */
export function assertTimeZone(timeZone: string): void {
  formatter(timeZone);
}

/** The window `now` falls in. */
export function currentWindow(spec: WindowSpec, now: number, timeZone: string): WindowBounds {
  const w = parseWindow(spec);
  switch (w.kind) {
    case 'day':
      return dayWindow(now, timeZone);
    case 'month':
      return monthWindow(now, timeZone);
    case 'total':
      return { key: 'total', start: 0, resetsAt: null };
    case 'rolling': {
      const r = rollingWindow(w.bucketMs, now);
      return { key: String(r.bucket), start: r.start, resetsAt: r.resetsAt };
    }
  }
}

/**
 * The rolling window at `now`: buckets `first..bucket` are inside it. `resetsAt` is when the
 * oldest bucket leaves.
 */
export function rollingWindow(
  bucketMs: number,
  now: number,
): { bucket: number; first: number; start: number; resetsAt: number } {
  const bucket = Math.floor(now / bucketMs);
  const first = bucket - ROLLING_BUCKETS;
  return { bucket, first, start: first * bucketMs, resetsAt: (bucket + 1) * bucketMs };
}

/** The local calendar date of `at` in the zone, as `YYYY-MM-DD` (cheap for the current day). */
export function dayKey(at: number, timeZone: string): string {
  return dayWindow(at, timeZone).key;
}

function localDateKey(at: number, timeZone: string): string {
  const { y, m, d } = localParts(at, timeZone);
  return `${y}-${pad(m)}-${pad(d)}`;
}

/** The calendar day containing `at` in the zone. */
export function dayWindow(at: number, timeZone: string): WindowBounds {
  const cached = cache.get(`d|${timeZone}`);
  if (cached && cached.start <= at && at < (cached.resetsAt ?? 0)) return cached;
  const { y, m, d } = localParts(at, timeZone);
  const next = new Date(Date.UTC(y, m - 1, d + 1));
  const w = {
    key: `${y}-${pad(m)}-${pad(d)}`,
    start: startOfLocalDay(y, m, d, timeZone),
    resetsAt: startOfLocalDay(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), timeZone),
  };
  cache.set(`d|${timeZone}`, w);
  return w;
}

/** The calendar month containing `at` in the zone. */
export function monthWindow(at: number, timeZone: string): WindowBounds {
  const cached = cache.get(`m|${timeZone}`);
  if (cached && cached.start <= at && at < (cached.resetsAt ?? 0)) return cached;
  const { y, m } = localParts(at, timeZone);
  const w = {
    key: `${y}-${pad(m)}`,
    start: startOfLocalDay(y, m, 1, timeZone),
    resetsAt: startOfLocalDay(m === 12 ? y + 1 : y, m === 12 ? 1 : m + 1, 1, timeZone),
  };
  cache.set(`m|${timeZone}`, w);
  return w;
}

/** Every local day touching [since, until), with its bounds: spend queries walk these. */
export function daysBetween(since: number, until: number, timeZone: string): WindowBounds[] {
  const out: WindowBounds[] = [];
  let t = since;
  while (t < until) {
    const w = dayWindow(t, timeZone);
    out.push(w);
    t = w.resetsAt ?? until;
  }
  return out;
}

/** The first instant whose local date in the zone is y-m-d (DST- and gap-correct). */
export function startOfLocalDay(y: number, m: number, d: number, timeZone: string): number {
  const wall = Date.UTC(y, m - 1, d);
  const target = `${y}-${pad(m)}-${pad(d)}`;
  let t = wall - offsetMs(wall, timeZone);
  t = wall - offsetMs(t, timeZone);
  if (localDateKey(t, timeZone) === target && localDateKey(t - 1, timeZone) < target) return t;
  // Midnight falls in a DST gap or overlap: search the boundary within three hours either side.
  let lo = t - 3 * 3_600_000;
  let hi = t + 3 * 3_600_000;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (localDateKey(mid, timeZone) >= target) hi = mid;
    else lo = mid;
  }
  return hi;
}

const cache = new Map<string, WindowBounds>();
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

function localParts(at: number, timeZone: string) {
  const p = { y: 0, m: 0, d: 0, h: 0, min: 0, s: 0 };
  for (const part of formatter(timeZone).formatToParts(at)) {
    const v = Number(part.value);
    if (part.type === 'year') p.y = v;
    else if (part.type === 'month') p.m = v;
    else if (part.type === 'day') p.d = v;
    else if (part.type === 'hour') p.h = v;
    else if (part.type === 'minute') p.min = v;
    else if (part.type === 'second') p.s = v;
  }
  return p;
}

/** Local wall-clock time minus UTC at `at`, in ms (whole seconds). */
function offsetMs(at: number, timeZone: string): number {
  const p = localParts(at, timeZone);
  const wall = Date.UTC(p.y, p.m - 1, p.d, p.h, p.min, p.s);
  return wall - (at - (((at % 1000) + 1000) % 1000));
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
