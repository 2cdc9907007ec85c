import type { Scope } from '../../../identity.ts';
import { budgetId, failClosed } from '../../../store/records.ts';
import type { PartitionHost } from './partition-caps.ts';
import { call } from './scripts.ts';
import type { RedisMoneyStore } from './store.ts';

const BACKEND = 'redis';

/**
 * A partitioned store's copies of the home's kill switches (mirror.lua) and frozen flags
 * (part-cap.lua `frozen`) in its partitions, each write with a version from a counter at the home
 * (`{cp}:mv`, read with the home's state by home-read.lua) so the newest state wins.
 */
export class Mirror {
  constructor(private readonly s: PartitionHost) {}

  /** Sets the frozen flag of the scope's copy in `parts` (every partition by default). */
  freezeCopies(scope: Scope, frozen: boolean, version: number, parts?: number[]): Promise<void> {
    const now = this.s.home.now();
    const which = parts ?? Array.from({ length: this.s.partitions }, (_, i) => i);
    return failClosed(BACKEND, 'freeze budget copies', async () => {
      await Promise.all(
        which.map((i) => {
          const p = this.s.part(i);
          const keys = [p.keys.scopes, p.keys.budget(budgetId(scope))];
          return call(this.s.redis, 'cpPartCap', keys, [
            ...p.context(now),
            ...p.specArgs([scope]),
            'frozen',
            frozen ? '1' : '0',
            version,
          ]);
        }),
      );
    });
  }

  /** A new version from the home's counter (mirror.lua): later writes to the partitions win. */
  version(): Promise<number> {
    return failClosed(BACKEND, 'take a version', () => this.s.redis.incr(this.versionKey()));
  }

  private versionKey(): string {
    return `${this.s.home.keys.prefix}:mv`;
  }

  /** One field of a hash at home (or all, with '*'), read with a new version in one step. */
  async readHome(hash: string, field: string): Promise<[number, string | null, ...string[]]> {
    return failClosed(BACKEND, 'read the home', async () => {
      const reply = (await call(this.s.redis, 'cpHomeRead', [this.versionKey(), hash], [field])) as unknown[];
      return [
        Number(reply[0]),
        ...(reply.slice(1).map((x) => (x === null ? null : String(x))) as [string | null]),
      ];
    });
  }

  mirrorKills(parts: RedisMoneyStore[], version: number, kills: [string, string][], all = false) {
    return failClosed(BACKEND, 'copy kill switches to the partitions', async () => {
      await Promise.all(
        parts.map((p) =>
          call(
            this.s.redis,
            'cpMirror',
            [p.keys.kills, `${p.keys.prefix}:killv`],
            [version, ...kills.flat(), ...(all ? ['*'] : [])],
          ),
        ),
      );
    });
  }

  /** The home's frozen budgets (a hint kept by setFrozen: a freeze adds, a thaw removes). */
  frozenKey(): string {
    return `${this.s.home.keys.prefix}:frozen`;
  }

  /**
   * Every frozen budget's flag as the home has it, copied to `parts` (a copy a failover lost): one
   * version for all, taken before the reads (a freeze or thaw after it writes with a newer one), the
   * flags read in one pipeline (the home's keys share a slot), the copies written at once.
   */
  async syncFrozen(parts: number[]): Promise<void> {
    const redis = this.s.redis;
    const ids = await failClosed(BACKEND, 'list frozen budgets', () => redis.smembers(this.frozenKey()));
    if (ids.length === 0) return;
    const v = await this.version();
    const flags = await failClosed(BACKEND, 'read frozen budgets', async () => {
      const pipe = redis.pipeline();
      for (const id of ids) pipe.hmget(this.s.home.keys.budget(id), 'frozen', 'scope');
      return ((await pipe.exec()) ?? []).map(([err, r]) => {
        if (err) throw err;
        return r as (string | null)[];
      });
    });
    await Promise.all(
      flags.map(([flag, scope]) =>
        scope && !scope.includes('#') ? this.freezeCopies(scope, flag === '1', v, parts) : undefined,
      ),
    );
  }
}
