import type { BatchStore, OpenBatch } from '../../store/batches.ts';
import type { RedisClient } from './connection.ts';

/** Open Message Batches on Redis: one hash `<prefix>batches`, batch id → JSON. */
export class RedisBatchStore implements BatchStore {
  private readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    this.key = `${prefix}batches`;
  }

  async put(b: OpenBatch): Promise<void> {
    await this.redis.hset(this.key, b.id, JSON.stringify(b));
  }

  async get(id: string): Promise<OpenBatch | undefined> {
    const v = await this.redis.hget(this.key, id);
    return v ? (JSON.parse(v) as OpenBatch) : undefined;
  }

  async list(): Promise<OpenBatch[]> {
    return Object.values(await this.redis.hgetall(this.key)).map((v) => JSON.parse(v) as OpenBatch);
  }

  async delete(id: string): Promise<void> {
    await this.redis.hdel(this.key, id);
  }

  /** The connection is the backend's: it closes it. */
  async close(): Promise<void> {}
}
