import { describe, expect, it } from 'vitest';
import {
  currentWindow,
  dayKey,
  daysBetween,
  isWindowSpec,
  parseWindow,
  ROLLING_BUCKETS,
  rollingWindow,
  startOfLocalDay,
  WindowError,
} from '../../../runtime/store/windows.ts';

const iso = (s: string) => Date.parse(s);
const HOUR = 3_600_000;

describe('parseWindow', () => {
  it('reads calendar windows, total and rolling durations', () => {
    expect(parseWindow('day')).toEqual({ kind: 'day' });
    expect(parseWindow('month')).toEqual({ kind: 'month' });
    expect(parseWindow('total')).toEqual({ kind: 'total' });
    expect(parseWindow('24h')).toEqual({ kind: 'rolling', durationMs: 24 * HOUR, bucketMs: HOUR });
    expect(parseWindow('90m')).toEqual({ kind: 'rolling', durationMs: 90 * 60_000, bucketMs: 225_000 });
    expect(parseWindow('7d')).toEqual({ kind: 'rolling', durationMs: 7 * 24 * HOUR, bucketMs: 7 * HOUR });
  });

  it('rejects anything else, naming the accepted forms', () => {
    for (const bad of ['week', '0h', '-5m', '1.5h', '24', 'h', '', 42, null]) {
      expect(() => parseWindow(bad)).toThrow(WindowError);
      expect(isWindowSpec(bad)).toBe(false);
    }
    expect(() => parseWindow('week')).toThrow(/day, month, total or a duration/);
  });
});

describe('calendar day windows', () => {
  it('turns over at local midnight, not UTC midnight', () => {
    const before = currentWindow('day', iso('2024-06-10T21:59:59.999Z'), 'Europe/Berlin');
    const after = currentWindow('day', iso('2024-06-10T22:00:00Z'), 'Europe/Berlin');
    expect(before).toEqual({
      key: '2024-06-10',
      start: iso('2024-06-09T22:00:00Z'),
      resetsAt: iso('2024-06-10T22:00:00Z'),
    });
    expect(after.key).toBe('2024-06-11');
    expect(after.start).toBe(before.resetsAt);
  });

  it('lasts 23 hours on the spring-forward day in Europe/Berlin', () => {
    const w = currentWindow('day', iso('2024-03-31T12:00:00Z'), 'Europe/Berlin');
    expect(w.key).toBe('2024-03-31');
    expect(w.start).toBe(iso('2024-03-30T23:00:00Z'));
    expect(w.resetsAt).toBe(iso('2024-03-31T22:00:00Z'));
    expect((w.resetsAt ?? 0) - w.start).toBe(23 * HOUR);
  });

  it('lasts 25 hours on the fall-back day in America/New_York', () => {
    const w = currentWindow('day', iso('2024-11-03T12:00:00Z'), 'America/New_York');
    expect(w.key).toBe('2024-11-03');
    expect(w.start).toBe(iso('2024-11-03T04:00:00Z'));
    expect(w.resetsAt).toBe(iso('2024-11-04T05:00:00Z'));
    expect((w.resetsAt ?? 0) - w.start).toBe(25 * HOUR);
  });

  it('keeps the same day across the repeated 1 a.m. hour in New York', () => {
    const first = currentWindow('day', iso('2024-11-03T05:30:00Z'), 'America/New_York');
    const second = currentWindow('day', iso('2024-11-03T06:30:00Z'), 'America/New_York');
    expect(first).toEqual(second);
  });

  it('starts the day at 01:00 in a zone whose clocks skip midnight (America/Santiago)', () => {
    // 2022-09-11: clocks in Santiago jumped from 00:00 -04 to 01:00 -03.
    const start = startOfLocalDay(2022, 9, 11, 'America/Santiago');
    expect(start).toBe(iso('2022-09-11T04:00:00Z'));
    expect(dayKey(start - 1, 'America/Santiago')).toBe('2022-09-10');
  });

  it('works in UTC and in zones east of it', () => {
    expect(currentWindow('day', iso('2024-01-01T00:00:00Z'), 'UTC').start).toBe(iso('2024-01-01T00:00:00Z'));
    expect(currentWindow('day', iso('2024-01-01T00:00:00Z'), 'Asia/Tokyo')).toEqual({
      key: '2024-01-01',
      start: iso('2023-12-31T15:00:00Z'),
      resetsAt: iso('2024-01-01T15:00:00Z'),
    });
  });
});

describe('calendar month windows', () => {
  it('ends February on the 29th in a leap year and on the 28th otherwise', () => {
    const leap = currentWindow('month', iso('2024-02-29T12:00:00Z'), 'UTC');
    expect(leap).toEqual({
      key: '2024-02',
      start: iso('2024-02-01T00:00:00Z'),
      resetsAt: iso('2024-03-01T00:00:00Z'),
    });
    const common = currentWindow('month', iso('2023-02-28T23:59:59.999Z'), 'UTC');
    expect(common.resetsAt).toBe(iso('2023-03-01T00:00:00Z'));
    expect(currentWindow('month', iso('2023-03-01T00:00:00Z'), 'UTC').key).toBe('2023-03');
  });

  it('rolls over the year at local midnight on December 31st', () => {
    const dec = currentWindow('month', iso('2024-12-31T22:59:59Z'), 'Europe/Berlin');
    expect(dec.key).toBe('2024-12');
    expect(dec.resetsAt).toBe(iso('2024-12-31T23:00:00Z'));
    expect(currentWindow('month', iso('2024-12-31T23:00:00Z'), 'Europe/Berlin').key).toBe('2025-01');
  });

  it('spans a DST change with the right length (March in Berlin is one hour short)', () => {
    const march = currentWindow('month', iso('2024-03-15T00:00:00Z'), 'Europe/Berlin');
    expect(march.start).toBe(iso('2024-02-29T23:00:00Z'));
    expect(march.resetsAt).toBe(iso('2024-03-31T22:00:00Z'));
    expect((march.resetsAt ?? 0) - march.start).toBe(31 * 24 * HOUR - HOUR);
  });
});

describe('total windows', () => {
  it('never reset', () => {
    expect(currentWindow('total', iso('2030-01-01T00:00:00Z'), 'UTC')).toEqual({
      key: 'total',
      start: 0,
      resetsAt: null,
    });
  });
});

describe('rolling windows', () => {
  it('keep 24 whole buckets behind the current one', () => {
    const now = iso('2024-05-01T10:20:00Z');
    const r = rollingWindow(HOUR, now);
    expect(r.bucket - r.first).toBe(24);
    expect(r.start).toBe(iso('2024-04-30T10:00:00Z'));
    expect(r.resetsAt).toBe(iso('2024-05-01T11:00:00Z'));
    expect(currentWindow('24h', now, 'UTC')).toEqual({
      key: String(r.bucket),
      start: r.start,
      resetsAt: r.resetsAt,
    });
  });

  it('let a cost leave at most one bucket late and never early', () => {
    const bucketMs = 225_000; // 90m / 24
    for (const chargedAt of [0, 1, 112_500, 224_999, 225_000, 1_000_000_007]) {
      const bucket = Math.floor(chargedAt / bucketMs);
      const inWindow = (now: number) => {
        const r = rollingWindow(bucketMs, now);
        return bucket >= r.first && bucket <= r.bucket;
      };
      const duration = 24 * bucketMs;
      expect(inWindow(chargedAt + duration - 1)).toBe(true);
      expect(inWindow(chargedAt + duration + bucketMs)).toBe(false);
      // It leaves exactly when its bucket falls off, within one bucket after `duration`.
      const leaves = (bucket + ROLLING_BUCKETS + 1) * bucketMs;
      expect(inWindow(leaves - 1)).toBe(true);
      expect(inWindow(leaves)).toBe(false);
      expect(leaves - chargedAt).toBeGreaterThanOrEqual(duration);
      expect(leaves - chargedAt).toBeLessThanOrEqual(duration + bucketMs);
    }
  });
});

describe('daysBetween', () => {
  it('lists each local day touching a range, DST days included', () => {
    const days = daysBetween(iso('2024-03-30T12:00:00Z'), iso('2024-04-01T12:00:00Z'), 'Europe/Berlin');
    expect(days.map((d) => d.key)).toEqual(['2024-03-30', '2024-03-31', '2024-04-01']);
    expect(days[1]?.start).toBe(iso('2024-03-30T23:00:00Z'));
  });
});
