import type { Micros } from '../../../money.ts';
import { CorruptRecordError } from '../../../store/records.ts';
import { call, type ScriptedRedis } from './scripts.ts';
import type { RedisMoneyStore } from './store.ts';

/** A budget whose cap is raised or taken back: its id, whether a rate limit's, the spec its home
 * is created with (scope id kind owner ceiling window), and a rate limit's configured limit. */
export interface Cap {
  id: string;
  rate: boolean;
  spec: (string | number)[];
  limit: string | number;
}

/** What the caps protocol and the mirror need of a partitioned store (partitioned.ts). */
export interface PartitionHost {
  readonly redis: ScriptedRedis;
  /** The home: ceilings, caps, kill switches, audit. */
  readonly home: RedisMoneyStore;
  readonly partitions: number;
  /** The partition this store admits in. */
  readonly mine: number;
  readonly stats: { raises: number; short: number; reclaims: number };
  part(i: number): RedisMoneyStore;
}

/**
 * A partitioned store's side of the caps protocol (caps.lua at the home, part-cap.lua in each
 * partition): raising this partition's cap on a budget, and taking idle caps back.
 */
export class Caps {
  constructor(private readonly s: PartitionHost) {}

  /** Asks the home for enough cap that this partition's copy can admit up to `want`, and opens
   * the copy to it: true, or what the home had left when it had too little (0: a frozen budget). */
  async grow(cap: Cap, want: Micros): Promise<true | Micros> {
    const home = this.s.home;
    const now = this.s.home.now();
    const p = this.s.part(this.s.mine);
    const homeKeys = [
      cap.rate ? home.keys.rates : home.keys.scopes,
      home.keys.budget(cap.id),
      this.capsKey(cap.id),
    ];
    const args = [...home.context(now), ...cap.spec, 'grow', `p${this.s.mine}`, want, cap.limit];
    this.s.stats.raises++;
    const reply = (await call(this.s.redis, 'cpCaps', homeKeys, args)) as unknown[];
    if (reply[0] !== 'ok') {
      this.s.stats.short++;
      if (reply[0] === 'frozen') return 0;
      if (reply[0] === 'short') return Number(reply[1]);
      throw new CorruptRecordError('caps reply', reply);
    }
    // The copy is made (or kept) with the home's owner and window, and no ceiling of its own.
    const copySpec = [...cap.spec];
    copySpec[3] = String(reply[2]);
    copySpec[4] = 0;
    copySpec[5] = String(reply[3]);
    await call(
      this.s.redis,
      'cpPartCap',
      [cap.rate ? p.keys.rates : p.keys.scopes, p.keys.budget(cap.id)],
      [...p.context(now), ...copySpec, 'add', String(reply[4]), cap.limit, String(reply[5])],
    );
    // Granted nothing although the copy refused: the home counts more for this partition than its
    // copy has (a give-back whose report was lost). Its own take-back tells the home.
    if (String(reply[1]) === '0') await this.reclaim(cap, 'idle', this.s.mine);
    return true;
  }

  /**
   * Takes back from every partition (or `only` one) the cap it neither spent nor holds (`idle`).
   * Each copy first catches up with what the home granted it (a grant whose add was lost arrives
   * here), and the home learns the totals each gave back and took over (a take-back whose second
   * half was lost is caught up): the room a dead process left between two steps comes back with
   * the next take-back. `close` (a new ceiling) also sets every copy's ceiling to 0 under a new
   * epoch: what a copy spent and holds stays counted at home, and it admits nothing more before the
   * home grants it room under the new ceiling. `over` only reports spend past a copy's cap.
   */
  async reclaim(cap: Cap, how: 'idle' | 'close' | 'over' = 'idle', only?: number): Promise<void> {
    const hard = how === 'close';
    this.s.stats.reclaims++;
    const { id, rate } = cap;
    const now = this.s.home.now();
    // A new ceiling's epoch: a grant made before it does not open a copy (part-cap.lua add).
    const epoch = hard ? String(await this.s.redis.hincrby(this.capsKey(id), 'e', 1)) : '';
    const caps = await this.s.redis.hgetall(this.capsKey(id));
    const copySpec = [...cap.spec];
    copySpec[4] = 0;
    await Promise.all(
      Array.from({ length: this.s.partitions }, async (_, i) => {
        if (only !== undefined && i !== only) return;
        const p = this.s.part(i);
        const keys = [rate ? p.keys.rates : p.keys.scopes, p.keys.budget(id)];
        const granted = caps[`p${i}:g`] ?? '0';
        const mode = how === 'close' ? '1' : how === 'over' ? 'over' : '0';
        const args = [...p.context(now), ...copySpec, 'trim', granted, mode, epoch];
        const [gave, took] = ((await call(this.s.redis, 'cpPartCap', keys, args)) as string[]).map(Number);
        if (gave! > Number(caps[`p${i}:r`] ?? 0) || took! > Number(caps[`p${i}:x`] ?? 0)) {
          await this.shrink(id, i, gave!, took!);
        }
      }),
    );
  }

  /** Tells the home the totals partition `part` gave back and took over. */
  private shrink(id: string, part: number, gave: Micros, took: Micros) {
    const home = this.s.home;
    const filler = [id, id, 'rate', '-', 0, '1m'];
    const keys = [home.keys.scopes, home.keys.budget(id), this.capsKey(id)];
    return call(this.s.redis, 'cpCaps', keys, [
      ...home.context(home.now()),
      ...filler,
      'shrink',
      `p${part}`,
      gave,
      took,
    ]);
  }

  capsKey(id: string): string {
    return `${this.s.home.keys.prefix}:cap:${id}`;
  }
}
