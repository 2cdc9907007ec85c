import type Database from 'better-sqlite3';
import type { SessionState, SessionStore } from '../../store/approvals.ts';
import { openSqlite } from './sqlite.ts';

/** Session time boxes of outside agents, one row per session. */
export class SqliteSessionStore implements SessionStore {
  private readonly db: Database.Database;
  private readonly getStmt: Database.Statement;
  private readonly putStmt: Database.Statement;
  constructor(path: string) {
    this.db = openSqlite(path);
    this.db.exec('CREATE TABLE IF NOT EXISTS agent_sessions (id TEXT PRIMARY KEY, body TEXT NOT NULL)');
    this.getStmt = this.db.prepare('SELECT body FROM agent_sessions WHERE id = ?');
    this.putStmt = this.db.prepare(
      'INSERT INTO agent_sessions (id, body) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body',
    );
  }
  async get(id: string) {
    const row = this.getStmt.get(id) as { body: string } | undefined;
    return row ? (JSON.parse(row.body) as SessionState) : undefined;
  }
  async put(s: SessionState) {
    this.putStmt.run(s.id, JSON.stringify(s));
  }
  async close() {
    this.db.close();
  }
}
