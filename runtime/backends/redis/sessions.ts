import type { SessionState, SessionStore } from '../../store/approvals.ts';
import type { RedisClient } from './connection.ts';

/** Session time boxes on Redis: one key per session, forgotten after a week idle. */
export class RedisSessionStore implements SessionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    /** Sessions idle this long are forgotten (Redis expiry). */
    private readonly ttlMs = 7 * 24 * 3_600_000,
  ) {}
  async get(id: string) {
    const v = await this.redis.get(`${this.prefix}session:${id}`);
    return v ? (JSON.parse(v) as SessionState) : undefined;
  }
  async put(s: SessionState) {
    await this.redis.set(`${this.prefix}session:${s.id}`, JSON.stringify(s), 'PX', this.ttlMs);
  }
  /** The connection is the backend's: it closes it. */
  async close() {}
}
