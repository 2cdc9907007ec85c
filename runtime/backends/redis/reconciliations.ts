import type { Reconciliation } from '../../reconcile/compare.ts';
import type { ReconStore } from '../../reconcile/store.ts';
import { EnforcementUnavailableError } from '../../store/port.ts';
import type { RedisClient } from './connection.ts';

/**
 * On Redis: each result in a hash field by id, and a sorted set by time (and one per day) for
 * listing. The newest 10,000 are kept.
 */
export class RedisReconStore implements ReconStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly keep = 10_000,
  ) {}

  private key(part: string) {
    return `${this.prefix}:recon:${part}`;
  }

  private async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new EnforcementUnavailableError(`redis: could not ${what}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  save(r: Reconciliation) {
    return this.run('store a reconciliation', async () => {
      await this.redis
        .multi()
        .hset(this.key('records'), r.id, JSON.stringify(r))
        .zadd(this.key('by-time'), r.at, r.id)
        .zadd(this.key(`day:${r.day}`), r.at, r.id)
        .exec();
      const excess = (await this.redis.zcard(this.key('by-time'))) - this.keep;
      if (excess > 0) {
        const old = await this.redis.zrange(this.key('by-time'), '0', String(excess - 1));
        const gone = (await this.redis.hmget(this.key('records'), ...old)).map((s) =>
          s ? (JSON.parse(s) as Reconciliation).day : undefined,
        );
        const m = this.redis
          .multi()
          .zrem(this.key('by-time'), ...old)
          .hdel(this.key('records'), ...old);
        for (const [i, id] of old.entries()) {
          if (gone[i]) m.zrem(this.key(`day:${gone[i]}`), id);
        }
        await m.exec();
      }
    });
  }

  get(id: string) {
    return this.run('read a reconciliation', async () => {
      const s = await this.redis.hget(this.key('records'), id);
      return s ? (JSON.parse(s) as Reconciliation) : undefined;
    });
  }

  list({ day, trigger, limit }: { day?: string; trigger?: string; limit: number }) {
    return this.run('list reconciliations', async () => {
      const index = this.key(day ? `day:${day}` : 'by-time');
      const out: Reconciliation[] = [];
      const page = trigger ? Math.max(limit, 200) : limit;
      for (let start = 0; out.length < limit; start += page) {
        const ids = await this.redis.zrevrange(index, start, start + page - 1);
        if (!ids.length) break;
        const records = await this.redis.hmget(this.key('records'), ...ids);
        for (const s of records) {
          if (!s) continue;
          const r = JSON.parse(s) as Reconciliation;
          if (!trigger || r.trigger === trigger) out.push(r);
          if (out.length >= limit) break;
        }
        if (ids.length < page) break;
      }
      return out;
    });
  }

  async close() {}
}
