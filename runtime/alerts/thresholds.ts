import type { AlertSettings, AlertThreshold } from '../config/settings.ts';
import type { Scope, ScopeKind } from '../identity.ts';
import { type Micros, usd } from '../money.ts';
import type { Budget } from '../store/port.ts';
import { parseWindow } from '../store/windows.ts';

/**
 * What an alert is about, decided from a budget alone: which thresholds it has passed, the claim
 * that makes each alert once per budget window, and the forecast from the recent spend rate. Pure
 * functions; the service (service.ts) reads budgets and sends.
 */

export type AlertKind = 'threshold' | 'refused' | 'forecast' | 'test';

export interface BudgetAlert {
  kind: AlertKind;
  at: number;
  budget: Budget;
  /** `threshold`: the percentage passed. */
  threshold?: number;
  /** `forecast`: when the ceiling is passed at the recent rate, and the rate (µ$ per hour). */
  crossesAt?: number;
  ratePerHour?: Micros;
  message: string;
}

/** The thresholds of a budget: its own (`alerts.budgets`), its kind's, or the default list. */
export function thresholdsFor(settings: AlertSettings, scope: Scope): AlertThreshold[] {
  return (
    settings.budgets[scope] ??
    settings.kinds[(scope === 'global' ? 'global' : scope.slice(0, scope.indexOf(':'))) as ScopeKind] ??
    settings.thresholds
  );
}

/** The percentages of `list` the budget's spend has reached (integers: no float rounding). */
export function crossed(b: Budget, list: AlertThreshold[]): number[] {
  if (b.ceiling <= 0) return [];
  return list.filter((t): t is number => t !== 'refused' && b.spent * 100 >= t * b.ceiling);
}

const DAY = 86_400_000;

/**
 * The key an alert is claimed under and how long the claim lives: once per threshold per budget
 * window. Calendar windows are keyed by their start (the claim outlives the window by a day, for
 * replicas whose clocks differ); a rolling window has no fixed start, so its claim simply lasts
 * one duration; `total` never resets (the claim lasts 400 days). The ceiling is part of the key: a
 * changed ceiling is a new budget to alert on.
 */
export function claimOf(b: Budget, what: number | 'refused' | 'forecast', now: number) {
  const w = parseWindow(b.window);
  const window =
    w.kind === 'rolling' ? `rolling:${b.window}` : w.kind === 'total' ? 'total' : String(b.windowStart);
  const expiresAt =
    w.kind === 'rolling'
      ? now + w.durationMs
      : w.kind === 'total' || b.resetsAt === null
        ? now + 400 * DAY
        : Math.max(b.resetsAt, now) + DAY;
  return { key: `budget-alert:${b.id}:${b.ceiling}:${window}:${what}`, expiresAt };
}

export interface SpendSample {
  at: number;
  spent: Micros;
  windowStart: number;
}

/**
 * When the budget passes its ceiling at the rate of `samples` (its spend over the recent past,
 * oldest first), if that is before its window ends: a calendar window only (a rolling window's
 * spend also leaves it, a total one never ends). Undefined without enough history, without
 * spend, when already over, or when the window ends first.
 */
export function forecastCrossing(
  b: Budget,
  samples: SpendSample[],
  now: number,
  minHistoryMs: number,
): { crossesAt: number; ratePerHour: Micros } | undefined {
  const kind = parseWindow(b.window).kind;
  if ((kind !== 'day' && kind !== 'month') || b.resetsAt === null) return undefined;
  if (b.spent >= b.ceiling) return undefined;
  const inWindow = samples.filter((s) => s.windowStart === b.windowStart);
  const first = inWindow[0];
  if (!first || now - first.at < minHistoryMs) return undefined;
  const rise = b.spent - first.spent;
  if (rise <= 0) return undefined;
  const perMs = rise / (now - first.at);
  const crossesAt = Math.ceil(now + (b.ceiling - b.spent) / perMs);
  if (crossesAt >= b.resetsAt) return undefined;
  return { crossesAt, ratePerHour: Math.round(perMs * 3_600_000) };
}

const WINDOW_WORD: Record<string, string> = { day: 'daily', month: 'monthly', total: 'total' };

/** `team 'payments' daily budget`, as the refusals say it. */
export function budgetName(b: Budget): string {
  const [kind, key] = b.scope.includes(':') ? b.scope.split(/:(.*)/s) : [b.scope, ''];
  const who = key ? `${kind} '${key}'` : kind;
  return `${who} ${WINDOW_WORD[b.window] ?? `rolling ${b.window}`} budget`;
}

/** Percent of the ceiling spent, one decimal. */
export function percentOf(b: Budget): number {
  return b.ceiling > 0 ? Math.floor((b.spent * 1000) / b.ceiling) / 10 : 0;
}

/** A time as people in the budgets' zone read it: `15:40 UTC`, or with the date when not today. */
export function clock(at: number, timeZone: string, now: number): string {
  const day = (t: number) => new Intl.DateTimeFormat('en-CA', { timeZone, dateStyle: 'short' }).format(t);
  const time = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    hour: '2-digit',
    minute: '2-digit',
    timeZoneName: 'short',
  }).format(at);
  return day(at) === day(now) ? time : `${day(at)} ${time}`;
}

export function thresholdAlert(b: Budget, threshold: number, now: number, timeZone: string): BudgetAlert {
  const resets = b.resetsAt === null ? '' : `; resets ${clock(b.resetsAt, timeZone, now)}`;
  return {
    kind: 'threshold',
    at: now,
    budget: b,
    threshold,
    message: `${budgetName(b)} passed ${threshold}%: spent ${usd(b.spent)} of ${usd(b.ceiling)} (${percentOf(b)}%)${resets}`,
  };
}

export function refusedAlert(b: Budget, now: number, timeZone: string): BudgetAlert {
  const resets = b.resetsAt === null ? 'it does not reset' : `it resets ${clock(b.resetsAt, timeZone, now)}`;
  return {
    kind: 'refused',
    at: now,
    budget: b,
    message: `${budgetName(b)} is refusing calls: spent ${usd(b.spent)} of ${usd(b.ceiling)}; ${resets}`,
  };
}

export function forecastAlert(
  b: Budget,
  f: { crossesAt: number; ratePerHour: Micros },
  now: number,
  timeZone: string,
): BudgetAlert {
  const [kind, key] = b.scope.includes(':') ? b.scope.split(/:(.*)/s) : [b.scope, ''];
  const ceiling = `${WINDOW_WORD[b.window] ?? b.window} ceiling`;
  return {
    kind: 'forecast',
    at: now,
    budget: b,
    crossesAt: f.crossesAt,
    ratePerHour: f.ratePerHour,
    message: `at this rate ${key ? `${kind} ${key}` : kind} passes its ${ceiling} ${usd(b.ceiling)} at ${clock(
      f.crossesAt,
      timeZone,
      now,
    )} (spent ${usd(b.spent)}, ${usd(f.ratePerHour)}/h lately)`,
  };
}

/** The sample `chokepoint alerts test` sends: an example team at 80% of $50.00 today. */
export function testAlert(now: number, timeZone: string): BudgetAlert {
  const b: Budget = {
    id: 'bgt_test',
    scope: 'team:example',
    owner: 'platform',
    ceiling: 50_000_000,
    window: 'day',
    state: 'active',
    spent: 40_000_000,
    reserved: 0,
    windowStart: now - (now % DAY),
    resetsAt: now - (now % DAY) + DAY,
    createdAt: now,
    updatedAt: now,
  };
  return {
    kind: 'test',
    at: now,
    budget: b,
    threshold: 80,
    message: `test alert from Chokepoint (${clock(now, timeZone, now)}): if you read this, budget alerts reach you. Example: ${thresholdAlert(b, 80, now, timeZone).message}`,
  };
}
