import type Database from 'better-sqlite3';
import type { Reconciliation } from '../../reconcile/compare.ts';
import type { ReconStore } from '../../reconcile/store.ts';
import { openSqlite } from './sqlite.ts';

/** A table in the embedded store's database file. */
export class SqliteReconStore implements ReconStore {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly byId: Database.Statement;

  constructor(path: string) {
    this.db = openSqlite(path);
    this.db.exec(`CREATE TABLE IF NOT EXISTS reconciliations (
      id TEXT PRIMARY KEY, at INTEGER NOT NULL, day TEXT NOT NULL, trigger TEXT NOT NULL,
      verdict TEXT NOT NULL, record TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS reconciliations_at ON reconciliations (at DESC);
      CREATE INDEX IF NOT EXISTS reconciliations_day ON reconciliations (day, at DESC)`);
    this.insert = this.db.prepare(
      'INSERT INTO reconciliations (id, at, day, trigger, verdict, record) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.byId = this.db.prepare('SELECT record FROM reconciliations WHERE id = ?');
  }

  async save(r: Reconciliation) {
    this.insert.run(r.id, r.at, r.day, r.trigger, r.verdict, JSON.stringify(r));
  }

  async get(id: string) {
    const row = this.byId.get(id) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as Reconciliation) : undefined;
  }

  async list({ day, trigger, limit }: { day?: string; trigger?: string; limit: number }) {
    const where: string[] = [];
    const args: unknown[] = [];
    if (day) where.push('day = ?') && args.push(day);
    if (trigger) where.push('trigger = ?') && args.push(trigger);
    const sql = `SELECT record FROM reconciliations ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY at DESC, id DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, limit) as Array<{ record: string }>;
    return rows.map((r) => JSON.parse(r.record) as Reconciliation);
  }

  async close() {
    this.db.close();
  }
}
