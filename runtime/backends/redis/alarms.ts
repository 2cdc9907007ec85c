import type { Alarm, AlarmKind, AlarmStore } from '../../events.ts';
import type { RedisClient } from './connection.ts';

/** Newest first in one list, trimmed to the last 10,000 alarms; each claim one key that expires. */
export class RedisAlarms implements AlarmStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}
  async append(a: Alarm) {
    const key = `${this.prefix}:alarms`;
    await this.redis.multi().lpush(key, JSON.stringify(a)).ltrim(key, 0, 9_999).exec();
  }
  async list({ kind, limit }: { kind?: AlarmKind; limit: number }) {
    const raw = await this.redis.lrange(`${this.prefix}:alarms`, 0, kind ? 9_999 : limit - 1);
    const all = raw.map((r) => JSON.parse(r) as Alarm);
    return (kind ? all.filter((a) => a.kind === kind) : all).slice(0, limit);
  }
  async claim(key: string, { now, expiresAt }: { now: number; expiresAt: number }) {
    const ms = Math.max(1, expiresAt - now);
    return (await this.redis.set(`${this.prefix}:alarm-claim:${key}`, '1', 'PX', ms, 'NX')) === 'OK';
  }
  async close() {}
}
