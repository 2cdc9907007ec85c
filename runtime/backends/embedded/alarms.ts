import type Database from 'better-sqlite3';
import type { Alarm, AlarmKind, AlarmStore } from '../../events.ts';
import { openSqlite } from './sqlite.ts';

/** Alarms in the embedded file, one row each, listed newest first. */
export class SqliteAlarms implements AlarmStore {
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
