import type { Alarm, AlarmKind, AlarmStore } from '../../events.ts';
import type { RedisClient } from './connection.ts';

/** Newest first in one list, trimmed to the last 10,000 alarms. */
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
  async close() {}
}
