import type { Drift } from './gateway/prefix.ts';
import type { Identity } from './identity.ts';
import { newId } from './ids.ts';
import type { Logger } from './log.ts';

export const ALARM_KINDS = [
  'prefix_drift',
  'cache_hit_rate',
  'reconciliation',
  'budget_near_ceiling',
  // Budget alerts (runtime/alerts): a budget refused a call, and a forecast crossing.
  'budget_exhausted',
  'budget_forecast',
] as const;
export type AlarmKind = (typeof ALARM_KINDS)[number];

export interface Alarm {
  id: string;
  at: number;
  kind: AlarmKind;
  /** What it is about: a stream, a workflow, a budget scope. */
  subject: string;
  message: string;
  details: Record<string, unknown>;
  identity?: Identity;
}

/** Where alarms are kept: the same backend as the money store (runtime/backends). */
export interface AlarmStore {
  append(a: Alarm): Promise<void>;
  list(filter: { kind?: AlarmKind; limit: number }): Promise<Alarm[]>;
  /**
   * Claims `key` once: true for the first caller, in any process sharing the backend, until
   * `expiresAt` (ms since epoch, compared with `now`); false for everyone else meanwhile. Budget
   * alerts claim "this threshold of this budget in this window" before they are sent, so a
   * restart or a second replica never sends one twice.
   */
  claim(key: string, at: { now: number; expiresAt: number }): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Alarms (prefix drift, cache hit rate well below what the prefix allows, and later
 * reconciliation and budgets near their ceiling): logged as they happen, stored in the backend
 * for /api/alarms and the inbox, and passed to live subscribers.
 */
export class EventLog {
  private readonly listeners = new Set<(a: Alarm) => void>();

  constructor(
    private readonly log: Logger,
    private readonly backend: AlarmStore,
  ) {}

  raise(
    kind: AlarmKind,
    subject: string,
    message: string,
    details: Record<string, unknown>,
    identity?: Identity,
  ): Alarm {
    const alarm: Alarm = { id: newId('alm'), at: Date.now(), kind, subject, message, details, identity };
    this.log.warn(message, { alarm: kind, subject, ...details });
    this.backend
      .append(alarm)
      .catch((err) => this.log.error('could not store an alarm', { error: err, alarm: alarm.id }));
    for (const l of this.listeners) l(alarm);
    return alarm;
  }

  prefixDrift(identity: Identity, stream: string, drift: Drift): Alarm {
    return this.raise(
      'prefix_drift',
      stream,
      `prefix drift on ${stream}: ${drift.description}`,
      { drift },
      identity,
    );
  }

  cacheAlarm(
    identity: Identity,
    stream: string,
    a: { expectedRead: number; actualRead: number; calls: number },
  ): Alarm {
    const pct = a.expectedRead ? Math.round((100 * a.actualRead) / a.expectedRead) : 0;
    return this.raise(
      'cache_hit_rate',
      stream,
      `cache health on ${stream}: read ${a.actualRead} cached tokens over ${a.calls} calls where the stable prefix allows ${a.expectedRead} (${pct}%)`,
      a,
      identity,
    );
  }

  list(filter: { kind?: AlarmKind; limit?: number } = {}): Promise<Alarm[]> {
    return this.backend.list({ kind: filter.kind, limit: filter.limit ?? 100 });
  }

  subscribe(fn: (a: Alarm) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close(): Promise<void> {
    return this.backend.close();
  }
}
