import type Database from 'better-sqlite3';
import type { Alarm, AlarmKind, AlarmStore } from '../../events.ts';
import { openSqlite } from './sqlite.ts';

/** Alarms in the embedded file, one row each, listed newest first; claims in a table beside them. */
export class SqliteAlarms implements AlarmStore {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly takeClaim: Database.Statement;
  private readonly dropClaims: Database.Statement;
  constructor(path: string) {
    this.db = openSqlite(path);
    this.db.exec(`CREATE TABLE IF NOT EXISTS alarms (
      id TEXT PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, record TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS alarms_at ON alarms (at DESC);
      CREATE TABLE IF NOT EXISTS alarm_claims (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS alarm_claims_expiry ON alarm_claims (expires_at)`);
    this.insert = this.db.prepare('INSERT INTO alarms (id, at, kind, record) VALUES (?, ?, ?, ?)');
    // One statement: a live claim is left alone (no row changes), an expired one is taken over.
    this.takeClaim = this.db.prepare(
      `INSERT INTO alarm_claims (key, expires_at) VALUES (?, ?)
       ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE alarm_claims.expires_at <= ?`,
    );
    this.dropClaims = this.db.prepare('DELETE FROM alarm_claims WHERE expires_at <= ?');
  }
  async claim(key: string, { now, expiresAt }: { now: number; expiresAt: number }) {
    const taken = this.takeClaim.run(key, expiresAt, now).changes === 1;
    if (taken) this.dropClaims.run(now);
    return taken;
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
