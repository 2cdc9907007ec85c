import type { KeysStore, StoredKey } from '../../auth/keys.ts';
import type { RedisClient } from './connection.ts';

/** API keys on Redis: a hash from key hash to record, and one from id to hash. */
export class RedisKeys implements KeysStore {
  /** `redis` for commands, `subscriber` (a connection in subscriber mode) for revocations. */
  constructor(
    private readonly redis: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly prefix: string,
  ) {}
  private get channel() {
    return `${this.prefix}:keys:revoked`;
  }
  async put(k: StoredKey) {
    await this.redis
      .multi()
      .hset(`${this.prefix}:keys:byhash`, k.hash, JSON.stringify(k))
      .hset(`${this.prefix}:keys:byid`, k.id, k.hash)
      .exec();
  }
  async byHash(hash: string) {
    const v = await this.redis.hget(`${this.prefix}:keys:byhash`, hash);
    return v ? (JSON.parse(v) as StoredKey) : undefined;
  }
  async byId(id: string) {
    const hash = await this.redis.hget(`${this.prefix}:keys:byid`, id);
    return hash ? this.byHash(hash) : undefined;
  }
  async list() {
    const all = await this.redis.hvals(`${this.prefix}:keys:byhash`);
    return all.map((v) => JSON.parse(v) as StoredKey).sort((a, b) => b.createdAt - a.createdAt);
  }
  async announceRevoked(id: string) {
    await this.redis.publish(this.channel, id);
  }
  async onRevoked(fn: (id: string) => void) {
    const channel = this.channel;
    await this.subscriber.subscribe(channel);
    this.subscriber.on('message', (ch: string, id: string) => {
      if (ch === channel) fn(id);
    });
  }
  /** The connections are the backend's: it closes them. */
  async close() {}
}
