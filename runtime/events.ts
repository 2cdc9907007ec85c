import type { Drift } from './gateway/prefix.ts';
import type { Identity } from './identity.ts';
import { newId } from './ids.ts';
import type { Logger } from './log.ts';

export type AlarmKind = 'prefix_drift' | 'cache_hit_rate' | 'reconciliation' | 'budget_near_ceiling';

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

const KEEP = 1_000;

/**
 * Alarms and notable events (prefix drift, cache hit rate well below what the prefix allows).
 * Logged as they happen and kept (newest first, bounded) for /api/alarms.
 */
export class EventLog {
  private readonly alarms: Alarm[] = [];
  private readonly listeners = new Set<(a: Alarm) => void>();

  constructor(private readonly log: Logger) {}

  raise(
    kind: AlarmKind,
    subject: string,
    message: string,
    details: Record<string, unknown>,
    identity?: Identity,
  ): Alarm {
    const alarm: Alarm = { id: newId('alm'), at: Date.now(), kind, subject, message, details, identity };
    this.alarms.unshift(alarm);
    if (this.alarms.length > KEEP) this.alarms.pop();
    this.log.warn(message, { alarm: kind, subject, ...details });
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

  list(filter: { kind?: AlarmKind; limit?: number } = {}): Alarm[] {
    const out = filter.kind ? this.alarms.filter((a) => a.kind === filter.kind) : this.alarms;
    return out.slice(0, filter.limit ?? 100);
  }

  subscribe(fn: (a: Alarm) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
