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
import { connectMoneyRedis } from './connect.ts';
import { RedisKeys } from './keys.ts';
import { type Cap, Caps } from './partition-caps.ts';
import { Mirror } from './partition-mirror.ts';
import type { ScriptedRedis } from './scripts.ts';
import { RedisMoneyStore, type RedisStoreOptions } from './store.ts';

export interface PartitionedStoreOptions extends RedisStoreOptions {
  /** How many partitions the budgets' spend is spread over (each its own hash tag, `{cp/p<i>}`). */
  partitions: number;
  /** The partition this store admits and writes its ledger in; by default each store opened takes
   * the next (openPartitionedStore), or one at random. */
  partition?: number;
}

const BACKEND = 'redis';

const BUDGET_READ_BATCH = 500;
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
  /** The caps protocol with the home (partition-caps.ts), and the copies of kill switches and
   * freezes (partition-mirror.ts). */
  private readonly caps = new Caps(this);
  private readonly mirror = new Mirror(this);
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
        const raise = this.caps.grow(cap, want);
        this.raising.set(cap.id, raise);
        const raised = await raise.finally(() => this.raising.delete(cap.id));
        if (raised === true) return 'again';
        free = raised;
        // The home has none left: take back what the other partitions neither spent nor hold and
        // try again; refuse once the home had none twice after that (calls beside this one may
        // have raised this partition's cap past their need: each short is followed by one more try).
        const n = (shorts.get(cap.id) ?? 0) + 1;
        shorts.set(cap.id, n);
        if (n === 1) await this.caps.reclaim(cap);
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
    // Rate limits' entries (`<id>~<limit>`) are not per scope: they wait out their DRY_MS.
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

  /** A refusal with the budget as a whole (every partition's spend and holds) instead of one copy's. */
  private async merged(a: Admission & { ok: false }, req: AdmitRequest): Promise<Admission> {
    const r = a.refusal;
    if (r.code === 'killed') return a;
    const now = this.home.now();
    const seen = this.wholes.get(r.budget.id);
    const whole =
      seen && seen.until > now
        ? seen.budget
        : (await failClosed(BACKEND, 'read a budget', () => this.readMerged([r.budget.id])))[0];
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

  async settle(reservationId: string, entry: LedgerInput): Promise<LedgerEntry> {
    this.wet(entry?.identity ? identityScopes(entry.identity) : undefined);
    const done = await this.route(reservationId).settle(reservationId, entry);
    if (done.overrun > 0) await this.takeOver(reservationId, done.identity);
    return done;
  }

  /**
   * After a charge past what was reserved (an overrun, a correction upward), the partition's copies
   * of the reservation's budgets (those it holds, and the entry identity's) may have spent past their
   * caps: a report from that partition alone tells the home (it counts the excess as taken over),
   * so the other partitions are granted less. It follows the charge by a step, not in it.
   */
  private async takeOver(id: string, identity: Identity): Promise<void> {
    const m = TAGGED.exec(id);
    if (!m) return;
    const part = this.part(Number(m[1]));
    await failClosed(BACKEND, 'count an overrun at home', async () => {
      const held = (await this.redis.hget(part.keys.reservation(id), 'scopes')) ?? '';
      const scopes = new Set([...identityScopes(identity), ...held.split(' ').filter(Boolean)]);
      await Promise.all(
        [...scopes].map((scope) =>
          this.caps.reclaim(
            { id: budgetId(scope), rate: false, spec: this.home.specArgs([scope]), limit: '' },
            'over',
            Number(m[1]),
          ),
        ),
      );
    });
  }

  release(reservationId: string, entry: LedgerInput): Promise<LedgerEntry> {
    this.wet(entry?.identity ? identityScopes(entry.identity) : undefined);
    return this.route(reservationId).release(reservationId, entry);
  }

  async leaseOps(ops: LeaseOp[]): Promise<LeaseOpResult[]> {
    const groups = new Map<RedisMoneyStore, number[]>();
    ops.forEach((op, i) => {
      const s = this.route(op.reservationId);
      const g = groups.get(s);
      if (g) g.push(i);
      else groups.set(s, [i]);
    });
    // Every partition's part checked and built before any is sent: bad input writes nothing.
    const batches = [...groups].map(([s, at]) => ({
      at,
      send: s.leaseBatch(groups.size === 1 ? ops : at.map((i) => ops[i]!)),
    }));
    const out: LeaseOpResult[] = new Array(ops.length);
    const done = await Promise.allSettled(
      batches.map(async ({ at, send }) => {
        const results = await send();
        results.forEach((r, j) => {
          out[at[j]!] = r;
        });
      }),
    );
    // Calls charged past what they reserved — in every partition that applied its steps, also when
    // another failed (the batch is retried: a repeated step reports nothing twice).
    const over = new Map<string, LedgerEntry>();
    const touched = new Set<Scope>();
    for (const r of out) {
      const e = r?.entry;
      if (!e) continue;
      for (const scope of identityScopes(e.identity)) touched.add(scope);
      if (e.overrun > 0 && e.reservationId) over.set(e.reservationId, e);
    }
    this.wet([...touched]);
    for (const e of over.values()) await this.takeOver(e.reservationId!, e.identity);
    const failed = done.find((d) => d.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
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

  async correctExpired(c: ExpiredCorrection): Promise<CorrectionResult> {
    const id = String(c?.expired?.id ?? '');
    const done = await this.route(id).correctExpired(c);
    if (done.created && done.entry.cost > 0) await this.takeOver(id, done.entry.identity);
    return done;
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
   * A new ceiling: every copy's ceiling is set to 0 and its idle cap taken back before the home
   * changes (so a failure part way leaves partitions that ask the home, not ones that admit under
   * the old ceiling), and again after, each time under a new epoch: a grant made under the old
   * ceiling and added late only counts (part-cap.lua). From then on each partition admits only what
   * the home grants it under the new ceiling.
   */
  async setCeiling(scope: Scope, ceiling: Micros, by: Actor): Promise<Budget> {
    checkScope(scope);
    checkActor(by);
    const cap = { id: budgetId(scope), rate: false, spec: this.home.specArgs([scope]), limit: '' };
    const closeCopies = () =>
      failClosed(BACKEND, 'take back budget caps', () => this.caps.reclaim(cap, 'close'));
    if (typeof ceiling === 'number' && Number.isSafeInteger(ceiling) && ceiling >= 0) await closeCopies();
    const b = await this.home.setCeiling(scope, ceiling, by);
    this.wet(undefined);
    await closeCopies();
    return (await this.getBudget(b.id)) ?? b;
  }

  /**
   * Freezing freezes every partition's copy before the home (and its audit entry) changes; then,
   * either way, every copy is set to the home's flag as read after the change. Each write carries
   * a version from the home's counter and a copy keeps the newest, so two operators freezing and
   * thawing at once leave every copy as the home ends up.
   */
  async setFrozen(scope: Scope, frozen: boolean, by: Actor): Promise<Budget> {
    checkScope(scope);
    checkActor(by);
    const index = this.mirror.frozenKey();
    if (frozen) {
      await failClosed(BACKEND, 'index a frozen budget', () => this.redis.sadd(index, budgetId(scope)));
      await this.mirror.freezeCopies(scope, true, await this.mirror.version());
    }
    const b = await this.home.setFrozen(scope, frozen, by);
    const [v, flag] = await this.mirror.readHome(this.home.keys.budget(b.id), 'frozen');
    await this.mirror.freezeCopies(scope, flag === '1', v);
    if (flag !== '1') await failClosed(BACKEND, 'index a frozen budget', () => this.redis.srem(index, b.id));
    this.wet(undefined);
    return (await this.getBudget(b.id)) ?? b;
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
    await this.mirror.mirrorKills(this.all().slice(0, -1), await this.mirror.version(), [
      [scope, JSON.stringify(ahead)],
    ]);
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
    const [v, json] = await this.mirror.readHome(this.home.keys.kills, scope);
    await this.mirror.mirrorKills(this.all().slice(0, -1), v, [[scope, json ?? '']]);
  }

  /** The home's kill switches and frozen flags copied to every partition (as a store opens). */
  async syncCopies(): Promise<void> {
    await this.syncKills();
    await this.mirror.syncFrozen(Array.from({ length: this.partitions }, (_, i) => i));
  }

  /** Every kill switch of the home copied to `parts`, the ones it does not have lifted there. */
  async syncKills(parts = this.all().slice(0, -1)): Promise<void> {
    const [v, ...flat] = await this.mirror.readHome(this.home.keys.kills, '*');
    const pairs: [string, string][] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([String(flat[i]), String(flat[i + 1])]);
    await this.mirror.mirrorKills(parts, v, pairs, true);
  }

  listKills(): Promise<KillSwitch[]> {
    return this.home.listKills();
  }

  killedBy(identity: Identity): Promise<KillSwitch | undefined> {
    return this.home.killedBy(identity);
  }

  /** A replica's beat also brings its own partition's kill switches and frozen flags up to the
   * home's (a copy a node outage or a failover kept from it arrives within a beat). */
  async replicaBeat(replica: string, at: number): Promise<KillSwitch[]> {
    const kills = await this.home.replicaBeat(replica, at);
    await this.syncKills([this.part(this.mine)]);
    await this.mirror.syncFrozen([this.mine]);
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
    await store.syncCopies().catch((err) => {
      redis.disconnect();
      throw err;
    });
    return store;
  }
  // Processes take the partitions in turn (a counter at home), so that N processes on N partitions
  // land on N different ones; at random if the counter cannot be read.
  const home = new RedisKeys(options.prefix).prefix;
  const turn = await redis.incr(`${home}:pturn`).catch(() => randomInt(1 << 30));
  const store = new PartitionedMoneyStore(redis, { ...options, partition: turn % options.partitions });
  // Partitions that missed a kill switch or a freeze (their node was away, or the number of
  // partitions grew) get the home's before this process admits anything.
  await store.syncCopies().catch((err) => {
    redis.disconnect();
    throw err;
  });
  return store;
}
