import { describe, expect, it } from 'vitest';
import {
  claimOf,
  crossed,
  forecastAlert,
  forecastCrossing,
  thresholdsFor,
} from '../../../runtime/alerts/thresholds.ts';
import type { ConfigError } from '../../../runtime/config/error.ts';
import { resolveConfig } from '../../../runtime/config/load.ts';
import type { Budget } from '../../../runtime/store/port.ts';

const T0 = Date.parse('2026-12-02T10:00:00Z');
const budget = (over: Partial<Budget> = {}): Budget => ({
  id: 'bgt_1',
  scope: 'team:payments',
  owner: 'platform',
  ceiling: 50_000_000,
  window: 'day',
  state: 'active',
  spent: 0,
  reserved: 0,
  windowStart: Date.parse('2026-12-02T00:00:00Z'),
  resetsAt: Date.parse('2026-12-03T00:00:00Z'),
  createdAt: T0,
  updatedAt: T0,
  ...over,
});

describe('thresholds', () => {
  it('finds every threshold reached, exactly at the boundary included', () => {
    const list = [50, 80, 90, 100, 'refused' as const];
    expect(crossed(budget({ spent: 24_999_999 }), list)).toEqual([]);
    expect(crossed(budget({ spent: 25_000_000 }), list)).toEqual([50]);
    expect(crossed(budget({ spent: 45_000_000 }), list)).toEqual([50, 80, 90]);
    expect(crossed(budget({ spent: 50_000_000 }), list)).toEqual([50, 80, 90, 100]);
    expect(crossed(budget({ spent: 1, ceiling: 0 }), list)).toEqual([]);
  });

  it('takes a budget its own list, else its kind’s, else the default; runs are silent by default', () => {
    const { alerts } = resolveConfig(
      { alerts: { kinds: { seat: [100] }, budgets: { 'team:payments': [25, 'refused'] } } },
      { env: {} },
    );
    expect(thresholdsFor(alerts, 'team:payments')).toEqual([25, 'refused']);
    expect(thresholdsFor(alerts, 'team:search')).toEqual([50, 80, 90, 100, 'refused']);
    expect(thresholdsFor(alerts, 'seat:alice')).toEqual([100]);
    expect(thresholdsFor(alerts, 'global')).toEqual([50, 80, 90, 100, 'refused']);
    expect(thresholdsFor(alerts, 'run:r_1')).toEqual([]);
    expect(thresholdsFor(resolveConfig({}, { env: {} }).alerts, 'run:r_1')).toEqual([]);
  });

  it('claims once per threshold per window: a new day, a new ceiling or another threshold is a new key', () => {
    const b = budget();
    const today = claimOf(b, 80, T0);
    expect(today.key).toBe(claimOf(b, 80, T0 + 3_600_000).key);
    expect(today.expiresAt).toBe(Date.parse('2026-12-04T00:00:00Z'));
    const tomorrow = budget({ windowStart: b.resetsAt!, resetsAt: b.resetsAt! + 86_400_000 });
    expect(claimOf(tomorrow, 80, T0).key).not.toBe(today.key);
    expect(claimOf(budget({ ceiling: 60_000_000 }), 80, T0).key).not.toBe(today.key);
    expect(claimOf(b, 90, T0).key).not.toBe(today.key);
    expect(claimOf(b, 'refused', T0).key).not.toBe(claimOf(b, 'forecast', T0).key);
    // A rolling window's claim lasts one duration; a total one (never resets) 400 days.
    expect(claimOf(budget({ window: '24h' }), 80, T0).expiresAt).toBe(T0 + 86_400_000);
    expect(claimOf(budget({ window: 'total', resetsAt: null }), 80, T0).expiresAt).toBe(
      T0 + 400 * 86_400_000,
    );
  });
});

describe('forecast', () => {
  const history = [{ at: T0, spent: 10_000_000, windowStart: budget().windowStart }];

  it('projects the recent rate to the ceiling and says when, in the budgets’ zone', () => {
    // $10 an hour from $20 at 11:00: the $50 ceiling at 14:00.
    const b = budget({ spent: 20_000_000 });
    const f = forecastCrossing(b, history, T0 + 3_600_000, 300_000);
    expect(f).toEqual({ crossesAt: Date.parse('2026-12-02T14:00:00Z'), ratePerHour: 10_000_000 });
    expect(forecastAlert(b, f!, T0 + 3_600_000, 'UTC').message).toBe(
      'at this rate team payments passes its daily ceiling $50.00 at 14:00 UTC (spent $20.00, $10.00/h lately)',
    );
    expect(forecastAlert(b, f!, T0 + 3_600_000, 'Europe/Berlin').message).toContain('at 15:00 CET');
  });

  it('says nothing when the window ends first, without enough history, without spend, or once over', () => {
    // $1 an hour from $20: $30 to go takes past midnight.
    expect(forecastCrossing(budget({ spent: 11_000_000 }), history, T0 + 3_600_000, 300_000)).toBeUndefined();
    expect(forecastCrossing(budget({ spent: 20_000_000 }), history, T0 + 60_000, 300_000)).toBeUndefined();
    expect(forecastCrossing(budget({ spent: 10_000_000 }), history, T0 + 3_600_000, 300_000)).toBeUndefined();
    expect(forecastCrossing(budget({ spent: 50_000_000 }), history, T0 + 3_600_000, 300_000)).toBeUndefined();
    // History from yesterday's window does not count.
    const old = [{ ...history[0]!, windowStart: 0 }];
    expect(forecastCrossing(budget({ spent: 20_000_000 }), old, T0 + 3_600_000, 300_000)).toBeUndefined();
    // Rolling and total windows are not forecast.
    expect(
      forecastCrossing(budget({ spent: 20_000_000, window: '24h' }), history, T0 + 3_600_000, 300_000),
    ).toBeUndefined();
  });
});

describe('alerts config', () => {
  const problems = (alerts: unknown, env: Record<string, string> = {}) => {
    try {
      resolveConfig({ alerts }, { env });
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };

  it('names the field that is wrong', () => {
    expect(problems({ thresholds: [50, 'refuse'] })[0]).toMatch(/^alerts\.thresholds\.1: /);
    expect(problems({ webhooks: [{ url: 'hooks.example.com', secret: 'x'.repeat(16) }] })).toEqual([
      'alerts.webhooks.0.url: expected a URL or env:VAR, got "hooks.example.com"',
    ]);
    expect(problems({ webhooks: [{ url: 'https://h.example.com', secret: 'short' }] })).toEqual([
      'alerts.webhooks.0.secret: expected env:VAR or at least 16 characters',
    ]);
    expect(problems({ slack: [{ url: 'env:SLACK_URL' }] })).toEqual([
      'alerts.slack.0.url: SLACK_URL is not set in the environment',
    ]);
    expect(problems({ slack: [{ url: 'env:SLACK_URL' }] }, { SLACK_URL: 'nope' })).toEqual([
      'alerts.slack.0.url: expected an http(s) URL in SLACK_URL',
    ]);
    expect(problems({ budgets: { 'tem:payments': [50] } })).toEqual([
      'alerts.budgets.tem:payments: unknown scope "tem:payments": expected global, team:<key>, env:<key>, seat:<key>, workflow:<id>, run:<id> or provider:<name>',
    ]);
  });

  it('reads URLs and secrets from the environment', () => {
    const { alerts } = resolveConfig(
      { alerts: { webhooks: [{ url: 'env:HOOK', secret: 'env:HOOK_SECRET', name: 'pager' }] } },
      { env: { HOOK: 'https://hooks.example.com/x', HOOK_SECRET: 's'.repeat(32) } },
    );
    expect(alerts.webhooks).toEqual([
      { url: 'https://hooks.example.com/x', secret: 's'.repeat(32), name: 'pager' },
    ]);
  });
});
