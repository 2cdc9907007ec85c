import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { privateDir } from '../../store/data-dir.ts';
import type { LoginFailures, SessionRecord, WebSessionStore } from '../ports.ts';
import { openSqlite } from './sqlite.ts';

/** Inbox sessions and failed-login counts: two tables in the embedded file. */
export class SqliteWebSessions implements WebSessionStore {
  private readonly db: Database.Database;
  private readonly stmts: Record<string, Database.Statement>;
  /** `dataDir` holds the session secret's file (`session-secret`, 0600). */
  constructor(
    path: string,
    private readonly dataDir: string,
  ) {
    this.db = openSqlite(path);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS web_sessions (
        id TEXT PRIMARY KEY, token_hash TEXT NOT NULL, created_at INTEGER NOT NULL,
        last_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, idle_until INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS web_login_failures (
        address TEXT PRIMARY KEY, count INTEGER NOT NULL, first_at INTEGER NOT NULL,
        last_at INTEGER NOT NULL, keep_until INTEGER NOT NULL);`);
    this.stmts = {
      put: this.db.prepare(
        `INSERT INTO web_sessions (id, token_hash, created_at, last_at, expires_at, idle_until)
         VALUES (@id, @tokenHash, @createdAt, @lastAt, @expiresAt, @idleUntil)
         ON CONFLICT(id) DO UPDATE SET last_at = excluded.last_at`,
      ),
      get: this.db.prepare(
        `SELECT id, token_hash AS tokenHash, created_at AS createdAt, last_at AS lastAt,
                expires_at AS expiresAt FROM web_sessions WHERE id = ?`,
      ),
      touch: this.db.prepare('UPDATE web_sessions SET last_at = ?, idle_until = ? WHERE id = ?'),
      del: this.db.prepare('DELETE FROM web_sessions WHERE id = ?'),
      sweep: this.db.prepare('DELETE FROM web_sessions WHERE expires_at < ? OR idle_until < ?'),
      failures: this.db.prepare(
        `SELECT count, first_at AS firstAt, last_at AS lastAt FROM web_login_failures
         WHERE address = ? AND keep_until >= ?`,
      ),
      setFailures: this.db.prepare(
        `INSERT INTO web_login_failures (address, count, first_at, last_at, keep_until)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT(address) DO UPDATE SET count = excluded.count,
         first_at = excluded.first_at, last_at = excluded.last_at, keep_until = excluded.keep_until`,
      ),
      clearFailures: this.db.prepare('DELETE FROM web_login_failures WHERE address = ?'),
      sweepFailures: this.db.prepare('DELETE FROM web_login_failures WHERE keep_until < ?'),
    };
  }
  async put(s: SessionRecord, idleMs: number) {
    // Logins are rare: a good moment to forget ended sessions and old failure counts.
    this.stmts.sweep!.run(s.lastAt, s.lastAt);
    this.stmts.sweepFailures!.run(Date.now());
    this.stmts.put!.run({ ...s, idleUntil: s.lastAt + idleMs });
  }
  async get(id: string) {
    return this.stmts.get!.get(id) as SessionRecord | undefined;
  }
  async touch(id: string, at: number, idleMs: number) {
    this.stmts.touch!.run(at, at + idleMs, id);
  }
  async delete(id: string) {
    this.stmts.del!.run(id);
  }
  async failures(address: string) {
    return this.stmts.failures!.get(address, Date.now()) as LoginFailures | undefined;
  }
  async setFailures(address: string, f: LoginFailures, keepMs: number) {
    this.stmts.setFailures!.run(address, f.count, f.firstAt, f.lastAt, Date.now() + keepMs);
  }
  async clearFailures(address: string) {
    this.stmts.clearFailures!.run(address);
  }
  async secret(fresh: string) {
    const file = join(this.dataDir, 'session-secret');
    if (!existsSync(file)) {
      privateDir(this.dataDir);
      writeFileSync(file, `${fresh}\n`, { mode: 0o600, flag: 'wx' });
      chmodSync(file, 0o600);
    }
    return readFileSync(file, 'utf8').trim();
  }
  async close() {
    this.db.close();
  }
}
