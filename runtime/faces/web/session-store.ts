import { join } from 'node:path';
import type Database from 'better-sqlite3';
import type { Redis } from 'ioredis';
import type { Config } from '../../config/load.ts';
import { openSqlite } from '../../store/embedded/open.ts';

/**
 * Where inbox sessions and failed-login counts live: the store's own backend, so every replica
 * sees a logout at once. Embedded: two tables in the data folder's chokepoint.db. Redis: one hash
 * per session and per address under the configured prefix, each expiring on its own.
 * A session is kept under the SHA-256 of its cookie value: the table never holds a live cookie.
 */

export interface SessionRecord {
  /** SHA-256 (hex) of the cookie value. */
  id: string;
  /** SHA-256 of the operator token that logged in (removing the token ends the session). */
  tokenHash: string;
  createdAt: number;
  lastAt: number;
  /** createdAt + the absolute lifetime. */
  expiresAt: number;
}

export interface LoginFailures {
  count: number;
  firstAt: number;
  lastAt: number;
}

export interface WebSessionStore {
  /** Stores a new session, unused for at most `idleMs` before it ends. */
  put(s: SessionRecord, idleMs: number): Promise<void>;
  get(id: string): Promise<SessionRecord | undefined>;
  /** Records activity; `idleMs` is how long the session may now sit unused. */
  touch(id: string, at: number, idleMs: number): Promise<void>;
  delete(id: string): Promise<void>;
  failures(address: string): Promise<LoginFailures | undefined>;
  setFailures(address: string, f: LoginFailures, keepMs: number): Promise<void>;
  clearFailures(address: string): Promise<void>;
  close(): Promise<void>;
}

export class SqliteWebSessions implements WebSessionStore {
  private readonly db: Database.Database;
  private readonly stmts: Record<string, Database.Statement>;
  constructor(path: string) {
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
  async close() {
    this.db.close();
  }
}

export class RedisWebSessions implements WebSessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}
  private key(id: string) {
    return `${this.prefix}web:session:${id}`;
  }
  private failKey(address: string) {
    return `${this.prefix}web:login-failures:${address}`;
  }
  async put(s: SessionRecord, idleMs: number) {
    const ttl = Math.max(1, Math.min(idleMs, s.expiresAt - s.lastAt));
    await this.redis
      .multi()
      .hset(this.key(s.id), {
        tokenHash: s.tokenHash,
        createdAt: s.createdAt,
        lastAt: s.lastAt,
        expiresAt: s.expiresAt,
      })
      .pexpire(this.key(s.id), ttl)
      .exec();
  }
  async get(id: string) {
    const h = await this.redis.hgetall(this.key(id));
    if (!h.tokenHash) return undefined;
    return {
      id,
      tokenHash: h.tokenHash,
      createdAt: Number(h.createdAt),
      lastAt: Number(h.lastAt),
      expiresAt: Number(h.expiresAt),
    };
  }
  async touch(id: string, at: number, idleMs: number) {
    // The key expires when the session goes idle (the absolute lifetime is checked on read).
    await this.redis.multi().hset(this.key(id), 'lastAt', at).pexpire(this.key(id), idleMs).exec();
  }
  async delete(id: string) {
    await this.redis.del(this.key(id));
  }
  async failures(address: string) {
    const h = await this.redis.hgetall(this.failKey(address));
    if (!h.count) return undefined;
    return { count: Number(h.count), firstAt: Number(h.firstAt), lastAt: Number(h.lastAt) };
  }
  async setFailures(address: string, f: LoginFailures, keepMs: number) {
    await this.redis
      .multi()
      .hset(this.failKey(address), { count: f.count, firstAt: f.firstAt, lastAt: f.lastAt })
      .pexpire(this.failKey(address), Math.max(1, keepMs))
      .exec();
  }
  async clearFailures(address: string) {
    await this.redis.del(this.failKey(address));
  }
  async close() {
    this.redis.disconnect();
  }
}

export async function openWebSessionStore(config: Config): Promise<WebSessionStore> {
  if (config.store.backend === 'redis') {
    const { Redis } = await import('ioredis');
    const redis = new Redis(config.store.redisUrl!, { maxRetriesPerRequest: 2 });
    // Errors surface on each command (and the inbox answers "try again"); here only swallowed.
    redis.on('error', () => {});
    return new RedisWebSessions(redis, config.store.prefix);
  }
  return new SqliteWebSessions(join(config.dataDir, 'chokepoint.db'));
}
