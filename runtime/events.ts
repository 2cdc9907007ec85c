import type Database from 'better-sqlite3';
import type { Redis } from 'ioredis';
import type { Drift } from './gateway/prefix.ts';
import type { Identity } from './identity.ts';
import { newId } from './ids.ts';
import type { Logger } from './log.ts';
import { openSqlite } from './store/embedded/open.ts';

export const ALARM_KINDS = [
  'prefix_drift',
  'cache_hit_rate',
  'reconciliation',
  'budget_near_ceiling',
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

/** Where alarms are kept: the same backend as the money store. */
export interface AlarmBackend {
  append(a: Alarm): Promise<void>;
  list(filter: { kind?: AlarmKind; limit: number }): Promise<Alarm[]>;
  close(): Promise<void>;
}

export class SqliteAlarms implements AlarmBackend {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  constructor(path: string) {
    this.db = openSqlite(path);
    this.db.exec(`CREATE TABLE IF NOT EXISTS alarms (
      id TEXT PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, record TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS alarms_at ON alarms (at DESC)`);
    this.insert = this.db.prepare('INSERT INTO alarms (id, at, kind, record) VALUES (?, ?, ?, ?)');
  }
  async append(a: Alarm) {
    this.insert.run(a.id, a.at, a.kind, JSON.stringify(a));
  }
  async list({ kind, limit }: { kind?: AlarmKind; limit: number }) {
    const rows = (
      kind
        ? this.db
            .prepare('SELECT record FROM alarms WHERE kind = ? ORDER BY at DESC, id DESC LIMIT ?')
            .all(kind, limit)
        : this.db.prepare('SELECT record FROM alarms ORDER BY at DESC, id DESC LIMIT ?').all(limit)
    ) as Array<{ record: string }>;
    return rows.map((r) => JSON.parse(r.record) as Alarm);
  }
  async close() {
    this.db.close();
  }
}

/** Newest first in one list, trimmed to the last 10,000 alarms. */
export class RedisAlarms implements AlarmBackend {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}
  async append(a: Alarm) {
    const key = `${this.prefix}:alarms`;
    await this.redis.multi().lpush(key, JSON.stringify(a)).ltrim(key, 0, 9_999).exec();
  }
  async list({ kind, limit }: { kind?: AlarmKind; limit: number }) {
    const raw = await this.redis.lrange(`${this.prefix}:alarms`, 0, kind ? 9_999 : limit - 1);
    const all = raw.map((r) => JSON.parse(r) as Alarm);
    return (kind ? all.filter((a) => a.kind === kind) : all).slice(0, limit);
  }
  async close() {}
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
    private readonly backend: AlarmBackend,
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
