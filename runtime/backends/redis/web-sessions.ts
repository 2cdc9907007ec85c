import type { LoginFailures, SessionRecord, WebSessionStore } from '../ports.ts';
import type { RedisClient } from './connection.ts';

/** Inbox sessions and failed-login counts on Redis: one hash each, expiring on its own. */
export class RedisWebSessions implements WebSessionStore {
  constructor(
    private readonly redis: RedisClient,
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
  async secret(fresh: string) {
    const key = `${this.prefix}web:session-secret`;
    await this.redis.set(key, fresh, 'NX');
    return (await this.redis.get(key)) ?? fresh;
  }
  /** The connection is the backend's: it closes it. */
  async close() {}
}
