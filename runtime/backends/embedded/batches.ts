import type Database from 'better-sqlite3';
import type { BatchStore, OpenBatch } from '../../store/batches.ts';
import { openSqlite } from './sqlite.ts';

/** Open Message Batches, one row per batch, in the backend's one file. */
export class SqliteBatchStore implements BatchStore {
  private readonly db: Database.Database;
  private readonly s: Record<'put' | 'get' | 'all' | 'del', Database.Statement>;

  constructor(path: string) {
    this.db = openSqlite(path);
    this.db.exec('CREATE TABLE IF NOT EXISTS open_batches (id TEXT PRIMARY KEY, body TEXT NOT NULL)');
    this.s = {
      put: this.db.prepare(
        'INSERT INTO open_batches (id, body) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body',
      ),
      get: this.db.prepare('SELECT body FROM open_batches WHERE id = ?'),
      all: this.db.prepare('SELECT body FROM open_batches ORDER BY id'),
      del: this.db.prepare('DELETE FROM open_batches WHERE id = ?'),
    };
  }

  async put(b: OpenBatch): Promise<void> {
    this.s.put.run(b.id, JSON.stringify(b));
  }

  async get(id: string): Promise<OpenBatch | undefined> {
    const row = this.s.get.get(id) as { body: string } | undefined;
    return row ? (JSON.parse(row.body) as OpenBatch) : undefined;
  }

  async list(): Promise<OpenBatch[]> {
    return (this.s.all.all() as { body: string }[]).map((r) => JSON.parse(r.body) as OpenBatch);
  }

  async delete(id: string): Promise<void> {
    this.s.del.run(id);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
