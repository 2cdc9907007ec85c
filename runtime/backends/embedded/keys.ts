import type Database from 'better-sqlite3';
import type { KeysStore, StoredKey } from '../../auth/keys.ts';
import { openSqlite } from './sqlite.ts';

/** API keys in the embedded file: one row per key, looked up by hash or id. */
export class SqliteKeys implements KeysStore {
  private readonly db: Database.Database;
  constructor(path: string) {
    this.db = openSqlite(path);
    this.db.exec(`CREATE TABLE IF NOT EXISTS api_keys (
      id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, record TEXT NOT NULL, created_at INTEGER NOT NULL)`);
  }
  async put(k: StoredKey) {
    this.db
      .prepare(
        'INSERT INTO api_keys (id, hash, record, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET record = excluded.record',
      )
      .run(k.id, k.hash, JSON.stringify(k), k.createdAt);
  }
  async byHash(hash: string) {
    const row = this.db.prepare('SELECT record FROM api_keys WHERE hash = ?').get(hash) as
      | { record: string }
      | undefined;
    return row ? (JSON.parse(row.record) as StoredKey) : undefined;
  }
  async byId(id: string) {
    const row = this.db.prepare('SELECT record FROM api_keys WHERE id = ?').get(id) as
      | { record: string }
      | undefined;
    return row ? (JSON.parse(row.record) as StoredKey) : undefined;
  }
  async list() {
    const rows = this.db.prepare('SELECT record FROM api_keys ORDER BY created_at DESC').all() as Array<{
      record: string;
    }>;
    return rows.map((r) => JSON.parse(r.record) as StoredKey);
  }
  /** One process: the ring that revoked a key has already forgotten it. */
  async announceRevoked(_id: string) {}
  async onRevoked(_fn: (id: string) => void) {}
  async close() {
    this.db.close();
  }
}
