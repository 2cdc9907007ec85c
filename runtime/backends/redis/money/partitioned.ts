import { randomInt } from 'node:crypto';
import type { Identity, Scope, ScopeKind } from '../../../identity.ts';
import type { Micros } from '../../../money.ts';
import type {
  Actor,
  Admission,
  AdmitRequest,
  AuditEntry,
  AuditInput,
  AuditQuery,
  Budget,
  BudgetSpec,
  CorrectionResult,
  ExpiredCorrection,
  KillSwitch,
  LeaseOp,
  LeaseOpResult,
  LedgerEntry,
  LedgerInput,
  LedgerQuery,
  MoneyStore,
  SpendQuery,
  SpendRow,
} from '../../../store/port.ts';
import { asRateBudget, checkRates } from '../../../store/rates.ts';
import {
  budgetId,
  CorruptRecordError,
  checkActor,
  checkScope,
  failClosed,
  identityScopes,
  limitOf,
} from '../../../store/records.ts';
import { SpendTally } from '../../../store/spend.ts';
import { familyPrefix } from '../connection.ts';
import { RedisKeys } from './keys.ts';
import { call, type ScriptedRedis } from './scripts.ts';
import { connectMoneyRedis, RedisMoneyStore, type RedisStoreOptions } from './store.ts';

export interface PartitionedStoreOptions extends RedisStoreOptions {
  /** How many partitions the budgets' spend is spread over (each its own hash tag, `{cp/p<i>}`). */
  partitions: number;
  /** The partition this store admits and writes its ledger in; by default each store opened takes
   * the next (openPartitionedStore), or one at random. */
  partition?: number;
}

const BACKEND = 'redis';

/** A budget whose cap is raised or taken back: its id, whether a rate limit's, the spec its home
 * is created with (scope id kind owner ceiling window), and a rate limit's configured limit. */
interface Cap {
  id: string;
  rate: boolean;
  spec: (string | number)[];
  limit: string | number;
}
const BUDGET_READ_BATCH = 500;
/** Trims a partition's cap down to what it has spent and holds (part-cap.lua's `most`). */
const ALL = Number.MAX_SAFE_INTEGER;
/**
 * How long a budget found full stays refused here without asking the home and the partitions again
 * (and how long a refusal's whole-budget numbers are reused): room freed meanwhile in another
 * partition waits this long at most.
 */
const DRY_MS = 20;
/** `res_p3_…` and the `led_p3_…x` of its expiry route to partition 3. */
const TAGGED = /^(?:res|led)_p(\d{1,4})_/;

/**
 * The money store spread over Redis Cluster slots (issue 21): the budgets' spend, the reservations
 * and the ledger live in `partitions` partitions, each under a hash tag of its own (`{cp/p0}`,
 * `{cp/p1}`, …) and each an ordinary RedisMoneyStore running the same scripts. Every process admits
 * and writes its ledger in one partition (the next in turn, `{cp}:pturn`), so the cluster spreads the load with
 * the processes, and no key is touched by every call (there is no one `global` budget hash any more).
 *
 * A budget's ceiling is split between the partitions as **caps** (caps.lua): its home (the budget
 * under the plain prefix, `{cp}`) keeps the real ceiling, the frozen flag and each partition's cap;
 * a partition's copy of the budget has its cap as its ceiling (part-cap.lua). The caps never sum
 * past the ceiling, and a copy's ceiling never exceeds its cap (a cap grows at home before its copy
 * and shrinks in its copy before at home; a step lost between the two leaves room unused, never
 * extra), so what all partitions have spent and hold never passes the ceiling: zero overshoot holds
 * as on one slot. A partition whose copy refuses a call asks the home for more cap (the shortfall
 * and half of what is left), and, if the home has none, first takes back what the other partitions
 * neither spent nor hold; only then is the call refused. Windows need nothing at home: a cap bounds
 * a copy's spend in its window plus what it holds, and each copy keeps its own window.
 *
 * Kill switches, the audit log and the replica registry stay at home; each partition keeps a copy of
 * the kill switches (its admit script checks them), written before setKill returns. Reads of a
 * budget sum its copies; ledger and spend reads merge the partitions.
 */
export class PartitionedMoneyStore implements MoneyStore {
  readonly backend = 'redis' as const;
  /** The home: ceilings, caps, kill switches, audit, replicas. */
  readonly home: RedisMoneyStore;
  private readonly parts = new Map<number, RedisMoneyStore>();
  /** What went to the home: cap raises asked for, raises the home had no room for, take-backs. */
  readonly stats = { raises: 0, short: 0, reclaims: 0 };
  /**
   * Budgets found full (the home short of a call's need after taking back the partitions' idle
   * caps), when (by the store's clock and the real one) and what the home had left, by budget id
   * (and a rate limit's limit).
   */
  private readonly dry = new Map<string, { at: number; until: number; free: Micros }>();
  /** The whole budgets last read for a refusal, and until when they are shown again. */
  private readonly wholes = new Map<string, { budget: Budget; until: number }>();
  /** Raises of a budget's cap in flight here, by budget id. */
  private readonly raising = new Map<string, Promise<true | Micros>>();
  /** The partition this store admits in. */
  readonly mine: number;
  readonly partitions: number;

  constructor(
    readonly redis: ScriptedRedis,
    private readonly options: PartitionedStoreOptions,
  ) {
    const k = options.partitions;
    if (!Number.isSafeInteger(k) || k < 1 || k > 1024) {
      throw new Error(`store.partitions must be 1 to 1024 (got ${String(k)})`);
    }
    this.partitions = k;
    this.home = new RedisMoneyStore(redis, options);
    this.mine = options.partition ?? randomInt(k);
    if (!Number.isSafeInteger(this.mine) || this.mine < 0 || this.mine >= k) {
      throw new Error(`partition must be 0 to ${k - 1} (got ${String(options.partition)})`);
    }
  }

  /** Partition `i` (one beyond `partitions` too: its reservations still settle there). */
  part(i: number): RedisMoneyStore {
    let p = this.parts.get(i);
    if (!p) {
      const prefix = familyPrefix(this.home.keys.prefix, `p${i}`, true);
      p = new RedisMoneyStore(this.redis, { ...this.options, prefix, partitionTag: `p${i}` });
      this.parts.set(i, p);
    }
    return p;
  }

  /** Every partition, then the home (which holds no reservation of its own). */
  private all(): RedisMoneyStore[] {
    const out: RedisMoneyStore[] = [];
    for (let i = 0; i < this.partitions; i++) out.push(this.part(i));
    out.push(this.home);
    return out;
  }

  /** The store a reservation or an entry of it lives in, by the tag in its id. */
  private route(id: string): RedisMoneyStore {
    const m = TAGGED.exec(id);
    return m ? this.part(Number(m[1])) : this.home;
  }

  // ---- admission ----------------------------------------------------------------------------

  async admit(req: AdmitRequest): Promise<Admission> {
    const part = this.part(this.mine);
    // Each budget may need its cap raised, and calls in flight beside this one may take what a
    // raise brought: a few rounds per budget, then the call is refused rather than kept waiting.
    const rounds = 4 * (identityScopes(req.identity).length + (req.rates?.length ?? 0)) + 4;
    // Per budget, how often the home had none left for this call.
    const shorts = new Map<string, number>();
    for (let round = 0; ; round++) {
      const a = await part.admit(req);
      if (a.ok || a.refusal.code === 'killed') return a;
      const { code, budget, amount } = a.refusal;
      if (budget.state === 'frozen' || round >= rounds) return this.merged(a, req);
      const cap = this.capOf(budget, code === 'rate_limited', req);
      // The ceiling the copy needs for this call; what it lacks (its ceiling may be below its cap
      // after a lowered ceiling) is what the home must find.
      const want = budget.spent + budget.reserved + amount;
      const need = Math.max(1, want - budget.ceiling);
      // A budget this store found full a moment ago (home and every partition) is refused at once:
      // a flood of calls on a spent budget costs one step each, not a round of every partition.
      const dryKey = cap.rate ? `${cap.id}~${cap.limit}` : cap.id;
      if (this.isDry(dryKey, need)) return this.merged(a, req);
      let free = 0;
      const next = await failClosed(BACKEND, 'raise a budget cap', async () => {
        // One raise per budget at a time in this process: the others wait for it and try again
        // (a raise brings half of what the home has left, enough for many calls).
        const running = this.raising.get(cap.id);
        if (running)
          return running.then(
            () => 'again',
            () => 'again',
          );
        const raise = this.grow(cap, want);
        this.raising.set(cap.id, raise);
        const raised = await raise.finally(() => this.raising.delete(cap.id));
        if (raised === true) return 'again';
        free = raised;
        // The home has none left: take back what the other partitions neither spent nor hold and
        // try again; refuse once the home had none twice after that (calls beside this one may
        // have raised this partition's cap past their need: each short is followed by one more try).
        const n = (shorts.get(cap.id) ?? 0) + 1;
        shorts.set(cap.id, n);
        if (n === 1) await this.reclaim(cap);
        return n <= 2 ? 'again' : 'refuse';
      });
      if (next === 'refuse') {
        if (this.dry.size > 1000) this.dry.clear();
        this.dry.set(dryKey, { at: this.home.now(), until: performance.now() + DRY_MS, free });
        return this.merged(a, req);
      }
    }
  }

  /** Found full within DRY_MS, by both the store's clock (which tests move) and the real one. */
  private isDry(key: string, need: Micros): boolean {
    const d = this.dry.get(key);
    if (!d) return false;
    if (this.home.now() - d.at < DRY_MS && performance.now() < d.until) return need > d.free;
    this.dry.delete(key);
    return false;
  }

  /** Room may have come back to these scopes' budgets (a settlement, a change made here). */
  private wet(scopes: Scope[] | undefined): void {
    if (this.dry.size === 0) return;
    if (!scopes) this.dry.clear();
    else for (const s of scopes) this.dry.delete(budgetId(s));
    // Rate limits' entries (`<id>~<limit>`) are not per scope here: a settlement frees them all.
    for (const k of this.dry.keys()) if (k.includes('~')) this.dry.delete(k);
  }

  /** What raising the cap of the copy that refused needs: its home's spec (and a rate limit's limit). */
  private capOf(copy: Budget, isRate: boolean, req: AdmitRequest): Cap {
    const rate = isRate ? checkRates(req.rates).find((r) => r.id === copy.id) : undefined;
    if (isRate && !rate) throw new CorruptRecordError('rate limit refusal', copy.id);
    const spec = rate
      ? [rate.key, rate.id, 'rate', 'rate-limit', rate.limit, rate.window]
      : this.home.specArgs([copy.scope], req.provision);
    return { id: copy.id, rate: rate !== undefined, spec, limit: rate ? rate.limit : '' };
  }

  /** Asks the home for enough cap that this partition's copy can admit up to `want`, and opens
   * the copy to it: true, or what the home had left when it had too little (0: a frozen budget). */
  private async grow(cap: Cap, want: Micros): Promise<true | Micros> {
    const home = this.home;
    const now = this.home.now();
    const p = this.part(this.mine);
    const homeKeys = [
      cap.rate ? home.keys.rates : home.keys.scopes,
      home.keys.budget(cap.id),
      this.capsKey(cap.id),
    ];
    const args = [...home.context(now), ...cap.spec, 'grow', `p${this.mine}`, want, cap.limit];
    this.stats.raises++;
    const reply = (await call(this.redis, 'cpCaps', homeKeys, args)) as unknown[];
    if (reply[0] !== 'ok') {
      this.stats.short++;
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
      this.redis,
      'cpPartCap',
      [cap.rate ? p.keys.rates : p.keys.scopes, p.keys.budget(cap.id)],
      [...p.context(now), ...copySpec, 'add', String(reply[4]), cap.limit],
    );
    return true;
  }

  /**
   * Takes back from every partition (this one too) the cap it neither spent nor holds. Each copy
   * first catches up with what the home granted it (a grant whose add was lost arrives here), and
   * the home learns the total each gave back (a take-back whose second half was lost is caught up):
   * the room a dead process left between two steps comes back with the next take-back. `hard` (a
   * lowered ceiling) also sets every copy's ceiling to 0: what a copy spent and holds stays counted
   * at home, and it admits nothing more before the home grants it room under the new ceiling.
   */
  private async reclaim(cap: Cap, hard = false): Promise<void> {
    this.stats.reclaims++;
    const { id, rate } = cap;
    const now = this.home.now();
    const caps = await this.redis.hgetall(this.capsKey(id));
    const copySpec = [...cap.spec];
    copySpec[4] = 0;
    await Promise.all(
      Array.from({ length: this.partitions }, async (_, i) => {
        const p = this.part(i);
        const keys = [rate ? p.keys.rates : p.keys.scopes, p.keys.budget(id)];
        const granted = caps[`p${i}:g`] ?? '0';
        const args = [...p.context(now), ...copySpec, 'trim', granted, hard ? '1' : '0'];
        const gave = Number(await call(this.redis, 'cpPartCap', keys, args));
        if (gave > Number(caps[`p${i}:r`] ?? 0)) await this.shrink(id, i, gave);
      }),
    );
  }

  private shrink(id: string, part: number, gave: Micros) {
    const home = this.home;
    const filler = [id, id, 'rate', '-', 0, '1m'];
    const keys = [home.keys.scopes, home.keys.budget(id), this.capsKey(id)];
    return call(this.redis, 'cpCaps', keys, [
      ...home.context(home.now()),
      ...filler,
      'shrink',
      `p${part}`,
      gave,
    ]);
  }

  private capsKey(id: string): string {
    return `${this.home.keys.prefix}:cap:${id}`;
  }

  /** A refusal with the budget as a whole (every partition's spend and holds) instead of one copy's. */
  private async merged(a: Admission & { ok: false }, req: AdmitRequest): Promise<Admission> {
    const r = a.refusal;
    if (r.code === 'killed') return a;
    const now = this.home.now();
    const seen = this.wholes.get(r.budget.id);
    const whole = seen && seen.until > now ? seen.budget : (await this.readMerged([r.budget.id]))[0];
    if (whole && seen?.budget !== whole) {
      if (this.wholes.size > 1000) this.wholes.clear();
      this.wholes.set(r.budget.id, { budget: whole, until: now + DRY_MS });
    }
    if (!whole) return a;
    if (r.code === 'rate_limited') {
      const rate = checkRates(req.rates).find((x) => x.id === r.budget.id);
      const budget = asRateBudget({ ...whole, ceiling: rate?.limit ?? whole.ceiling });
      return { ok: false, refusal: { ...r, budget } };
    }
    return { ok: false, refusal: { ...r, budget: whole } };
  }

  /** Budgets as a whole: ceiling and frozen flag from home, spend and holds summed over the copies. */
  private async readMerged(ids: string[]): Promise<(Budget | undefined)[]> {
    const [home, ...copies] = await Promise.all([
      this.home.readBudgets(ids),
      ...Array.from({ length: this.partitions }, (_, i) => this.part(i).readBudgets(ids)),
    ]);
    // A copy whose home is missing (made by a zero-cost admission or a settlement, never raised):
    // its home is made from the defaults, so that its spend is seen.
    for (const [j, h] of home!.entries()) {
      const copy = copies.find((c) => c[j])?.[j];
      if (h || !copy || copy.unit !== undefined) continue;
      const made = await this.home.ensureBudget(copy.scope);
      if (made.id === ids[j]) home![j] = made;
    }
    return home!.map((h, j) => {
      if (!h) return undefined;
      let { spent, reserved, updatedAt } = h;
      for (const c of copies) {
        const b = c[j];
        if (!b) continue;
        spent += b.spent;
        reserved += b.reserved;
        updatedAt = Math.max(updatedAt, b.updatedAt);
      }
      const state = h.state === 'frozen' ? 'frozen' : spent >= h.ceiling ? 'exhausted' : 'active';
      return { ...h, spent, reserved, updatedAt, state };
    });
  }

  // ---- settling, by the partition in the reservation's id ------------------------------------

  settle(reservationId: string, entry: LedgerInput): Promise<LedgerEntry> {
    this.wet(entry?.identity ? identityScopes(entry.identity) : undefined);
    return this.route(reservationId).settle(reservationId, entry);
  }

  release(reservationId: string, entry: LedgerInput): Promise<LedgerEntry> {
    this.wet(entry?.identity ? identityScopes(entry.identity) : undefined);
    return this.route(reservationId).release(reservationId, entry);
  }

  async leaseOps(ops: LeaseOp[]): Promise<LeaseOpResult[]> {
    this.wet(undefined);
    const groups = new Map<RedisMoneyStore, number[]>();
    ops.forEach((op, i) => {
      const s = this.route(op.reservationId);
      const g = groups.get(s);
      if (g) g.push(i);
      else groups.set(s, [i]);
    });
    if (groups.size === 1) return [...groups.keys()][0]!.leaseOps(ops);
    const out: LeaseOpResult[] = new Array(ops.length);
    await Promise.all(
      [...groups].map(async ([s, at]) => {
        const results = await s.leaseOps(at.map((i) => ops[i]!));
        results.forEach((r, j) => {
          out[at[j]!] = r;
        });
      }),
    );
    return out;
  }

  async sweepExpired(): Promise<number> {
    const n = await Promise.all(this.all().map((s) => s.sweepExpired()));
    return n.reduce((a, b) => a + b, 0);
  }

  async expireNow(scope: Scope): Promise<number> {
    const n = await Promise.all(this.all().map((s) => s.expireNow(scope)));
    return n.reduce((a, b) => a + b, 0);
  }

  correctExpired(c: ExpiredCorrection): Promise<CorrectionResult> {
    return this.route(String(c?.expired?.id ?? '')).correctExpired(c);
  }

  appendLedger(entry: LedgerInput): Promise<LedgerEntry> {
    return this.part(this.mine).appendLedger(entry);
  }

  // ---- budgets ------------------------------------------------------------------------------

  async getBudget(idOrScope: string): Promise<Budget | undefined> {
    const id = idOrScope.startsWith('bgt_') ? idOrScope : budgetId(idOrScope);
    return failClosed(BACKEND, 'read a budget', async () => (await this.readMerged([id]))[0]);
  }

  async listBudgets(filter?: { kind?: ScopeKind; rates?: boolean }): Promise<Budget[]> {
    const homes = await this.home.listBudgets(filter);
    return failClosed(BACKEND, 'list budgets', async () => {
      const out: Budget[] = [];
      for (let i = 0; i < homes.length; i += BUDGET_READ_BATCH) {
        const ids = homes.slice(i, i + BUDGET_READ_BATCH).map((b) => b.id);
        for (const b of await this.readMerged(ids)) if (b) out.push(b);
      }
      return out;
    });
  }

  async ensureBudget(scope: Scope, spec?: BudgetSpec): Promise<Budget> {
    const b = await this.home.ensureBudget(scope, spec);
    return (await this.getBudget(b.id)) ?? b;
  }

  /**
   * A new ceiling takes every partition's idle cap back and sets every copy's ceiling to 0, twice
   * (a cap granted under the old ceiling while the first pass ran is taken back by the second):
   * from then on each partition admits only what the home grants it under the new ceiling.
   */
  async setCeiling(scope: Scope, ceiling: Micros, by: Actor): Promise<Budget> {
    const b = await this.home.setCeiling(scope, ceiling, by);
    this.wet(undefined);
    const cap = { id: b.id, rate: false, spec: this.home.specArgs([scope]), limit: '' };
    await failClosed(BACKEND, 'take back budget caps', async () => {
      await this.reclaim(cap, true);
      await this.reclaim(cap, true);
    });
    return (await this.getBudget(b.id)) ?? b;
  }

  /**
   * Freezing freezes every partition's copy before the home (and its audit entry) changes; then,
   * either way, every copy is set to the home's flag as read after the change. Each write carries
   * a version from the home's counter and a copy keeps the newest, so two operators freezing and
   * thawing at once leave every copy as the home ends up.
   */
  async setFrozen(scope: Scope, frozen: boolean, by: Actor): Promise<Budget> {
    if (frozen) await this.freezeCopies(scope, true, await this.version());
    const b = await this.home.setFrozen(scope, frozen, by);
    const [v, flag] = await this.readHome(this.home.keys.budget(b.id), 'frozen');
    await this.freezeCopies(scope, flag === '1', v);
    this.wet(undefined);
    return (await this.getBudget(b.id)) ?? b;
  }

  private freezeCopies(scope: Scope, frozen: boolean, version: number): Promise<void> {
    const now = this.home.now();
    return failClosed(BACKEND, 'freeze budget copies', async () => {
      await Promise.all(
        Array.from({ length: this.partitions }, (_, i) => {
          const p = this.part(i);
          const keys = [p.keys.scopes, p.keys.budget(budgetId(scope))];
          return call(this.redis, 'cpPartCap', keys, [
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
  private version(): Promise<number> {
    return failClosed(BACKEND, 'take a version', () => this.redis.incr(this.versionKey()));
  }

  private versionKey(): string {
    return `${this.home.keys.prefix}:mv`;
  }

  /** One field of a hash at home (or all, with '*'), read with a new version in one step. */
  private async readHome(hash: string, field: string): Promise<[number, string | null, ...string[]]> {
    return failClosed(BACKEND, 'read the home', async () => {
      const reply = (await call(this.redis, 'cpHomeRead', [this.versionKey(), hash], [field])) as unknown[];
      return [
        Number(reply[0]),
        ...(reply.slice(1).map((x) => (x === null ? null : String(x))) as [string | null]),
      ];
    });
  }

  // ---- kill switches: at home, copied to every partition before the call returns --------------

  /**
   * A kill switch is copied to every partition before the home (and its audit entry) has it, and
   * every partition then gets the home's switch for that scope as read after the change (lifted or
   * not), each write with a version so that the last home state wins (mirror.lua).
   */
  async setKill(scope: Scope, by: Actor): Promise<KillSwitch> {
    checkScope(scope);
    checkActor(by);
    const ahead: KillSwitch = { scope, reason: by.reason, actor: by.actor, at: this.home.now() };
    await this.mirrorKills(this.all().slice(0, -1), await this.version(), [[scope, JSON.stringify(ahead)]]);
    const kill = await this.home.setKill(scope, by);
    await this.syncKill(scope);
    return kill;
  }

  async liftKill(scope: Scope, by: Actor): Promise<boolean> {
    const lifted = await this.home.liftKill(scope, by);
    await this.syncKill(scope);
    return lifted;
  }

  private async syncKill(scope: Scope): Promise<void> {
    const [v, json] = await this.readHome(this.home.keys.kills, scope);
    await this.mirrorKills(this.all().slice(0, -1), v, [[scope, json ?? '']]);
  }

  /** Every kill switch of the home copied to `parts`, the ones it does not have lifted there. */
  async syncKills(parts = this.all().slice(0, -1)): Promise<void> {
    const [v, ...flat] = await this.readHome(this.home.keys.kills, '*');
    const pairs: [string, string][] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([String(flat[i]), String(flat[i + 1])]);
    await this.mirrorKills(parts, v, pairs, true);
  }

  private mirrorKills(parts: RedisMoneyStore[], version: number, kills: [string, string][], all = false) {
    return failClosed(BACKEND, 'copy kill switches to the partitions', async () => {
      await Promise.all(
        parts.map((p) =>
          call(
            this.redis,
            'cpMirror',
            [p.keys.kills, `${p.keys.prefix}:killv`],
            [version, ...kills.flat(), ...(all ? ['*'] : [])],
          ),
        ),
      );
    });
  }

  listKills(): Promise<KillSwitch[]> {
    return this.home.listKills();
  }

  killedBy(identity: Identity): Promise<KillSwitch | undefined> {
    return this.home.killedBy(identity);
  }

  /** A replica's beat also brings its own partition's kill switches up to the home's (a copy a
   * node outage kept from it arrives within a beat). */
  async replicaBeat(replica: string, at: number): Promise<KillSwitch[]> {
    const kills = await this.home.replicaBeat(replica, at);
    await this.syncKills([this.part(this.mine)]);
    return kills;
  }

  replicasSince(since: number): Promise<string[]> {
    return this.home.replicasSince(since);
  }

  replicaLeave(replica: string): Promise<void> {
    return this.home.replicaLeave(replica);
  }

  // ---- ledger, spend and audit --------------------------------------------------------------

  /** The partitions (and home) with a ledger: a read of spend over years costs a pipeline per store. */
  private async withLedger(): Promise<RedisMoneyStore[]> {
    const all = this.all();
    return failClosed(BACKEND, 'find the ledgers', async () => {
      // One command each: on a cluster the ledgers are on different slots (no one pipeline).
      const found = await Promise.all(all.map((s) => this.redis.exists(s.keys.ledger)));
      return all.filter((_, i) => found[i] === 1);
    });
  }

  async listLedger(q: LedgerQuery = {}): Promise<LedgerEntry[]> {
    const limit = limitOf(q.limit);
    const lists = await Promise.all((await this.withLedger()).map((s) => s.listLedger(q)));
    if (lists.filter((l) => l.length > 0).length <= 1) return lists.find((l) => l.length > 0) ?? [];
    // Newest first, as each partition's list is (a stable sort keeps each one's order within a ms).
    return lists
      .flat()
      .sort((a, b) => b.at - a.at)
      .slice(0, limit);
  }

  async spend(q: SpendQuery): Promise<SpendRow[]> {
    const stores = await this.withLedger();
    if (stores.length === 0) return this.home.spend(q);
    const lists = await Promise.all(stores.map((s) => s.spend(q)));
    const tally = new SpendTally();
    for (const rows of lists) {
      for (const r of rows) {
        tally.add(r.key, r.cost, r.calls, r.tokens, { count: r.corrections, cost: r.correctedCost });
      }
    }
    return tally.result();
  }

  appendAudit(entry: AuditInput): Promise<AuditEntry> {
    return this.home.appendAudit(entry);
  }

  listAudit(q?: AuditQuery): Promise<AuditEntry[]> {
    return this.home.listAudit(q);
  }

  ping(): Promise<void> {
    return this.home.ping();
  }

  isUp(): boolean {
    return this.home.isUp();
  }

  close(): Promise<void> {
    return this.home.close();
  }
}

/**
 * Connects to Redis at `url` and returns the partitioned store once its scripts are loaded.
 *
 * @example const store = await openPartitionedStore('redis-cluster://127.0.0.1:7000', { defaults, timeZone: 'UTC', reservationTtlMs: 600_000, prefix: '{cp}', partitions: 8 });
 */
export async function openPartitionedStore(
  url: string,
  options: PartitionedStoreOptions,
): Promise<PartitionedMoneyStore> {
  const redis = await connectMoneyRedis(url, options);
  if (options.partition !== undefined) {
    const store = new PartitionedMoneyStore(redis, options);
    await store.syncKills();
    return store;
  }
  // Processes take the partitions in turn (a counter at home), so that N processes on N partitions
  // land on N different ones; at random if the counter cannot be read.
  const home = new RedisKeys(options.prefix).prefix;
  const turn = await redis.incr(`${home}:pturn`).catch(() => randomInt(1 << 30));
  const store = new PartitionedMoneyStore(redis, { ...options, partition: turn % options.partitions });
  // Partitions that missed a kill switch (their node was away when it was set, or the number of
  // partitions grew) get the home's set before this process admits anything.
  await store.syncKills();
  return store;
}
