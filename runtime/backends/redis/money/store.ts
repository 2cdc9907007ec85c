// long: one class implements the whole money port over Redis, as its SQLite twin does; each method
// is one script call (the scripts beside it hold the invariants) plus the reading of its reply.
/**
 * The Redis money store: budgets, reservations, kill switches, ledger and audit in Redis, every
 * money-moving operation one Lua script (admit.lua, settle.lua, release.lua), one round trip.
 *
 * Durability: run Redis with AOF on and `appendfsync everysec` (`appendonly yes`). A crash of the
 * Redis host then loses at most about one second of writes: reservations and settlements made in
 * that second, and their ledger entries. Scripts are replicated and logged as a whole, so a restart
 * never sees half of an admission or a settlement. `appendfsync always` closes that second at a large
 * cost per write; RDB snapshots alone can lose minutes of spend and are not enough for money.
 * Budgets and the ledger are never evicted: use `maxmemory-policy noeviction`.
 *
 * Cluster: every key is under one hash-tagged prefix (keys.ts), so all scripts run in one slot (a
 * partitioned store, partitioned.ts, is one of these per partition plus its home, each on its own
 * hash tag, so a cluster spreads them over its nodes). Each
 * script gets the keys it touches in KEYS, with one exception: sweeping expired reservations (inside
 * admit and in sweepExpired) derives the keys of their budgets and ledger indexes from the stored
 * reservation — they cannot be known before the script runs — under the same hash tag. Settle and
 * release find a reservation's rate limit budgets the same way (includes/rate.lua).
 *
 * Fail closed: the client never queues commands while disconnected (`enableOfflineQueue: false`),
 * retries a command at most once and times it out, so a dead Redis refuses calls within about
 * `commandTimeoutMs` with EnforcementUnavailableError instead of letting them wait or pass.
 */
import type { Identity, Scope, ScopeKind } from '../../../identity.ts';
import { newId } from '../../../ids.ts';
import type { Micros } from '../../../money.ts';
import { checkLease, prepareLeaseOp } from '../../../store/lease-ops.ts';
import {
  type Actor,
  type Admission,
  type AdmitRequest,
  type AuditEntry,
  type AuditInput,
  type AuditQuery,
  type Budget,
  type BudgetSpec,
  type CorrectionResult,
  type ExpiredCorrection,
  type KillSwitch,
  type LeaseOp,
  type LeaseOpResult,
  type LedgerEntry,
  type LedgerInput,
  type LedgerQuery,
  type MoneyStore,
  type MoneyStoreOptions,
  SPEND_DIMENSIONS,
  type SpendDimension,
  type SpendQuery,
  type SpendRow,
  StoreInputError,
} from '../../../store/port.ts';
import { asRateBudget, checkRates } from '../../../store/rates.ts';
import {
  budgetId,
  CorruptRecordError,
  callsOf,
  checkActor,
  checkCorrection,
  checkMicros,
  checkRange,
  checkScope,
  countsAsSpend,
  entryUnder,
  failClosed,
  finishEntry,
  identityScopes,
  limitOf,
  type PreparedEntry,
  prepareAudit,
  prepareEntry,
  providerKey,
  specFor,
  storedJson,
  storedMicros,
} from '../../../store/records.ts';
import { SpendTally, spendKey } from '../../../store/spend.ts';
import { dayKey, daysBetween, dayWindow, monthWindow } from '../../../store/windows.ts';
import { connectMoneyRedis } from './connect.ts';
import { correctIn } from './correct.ts';
import { RedisKeys } from './keys.ts';
import { leaseResults, leaseScriptArgs } from './lease-args.ts';
import { addRollup, auditHead, budgetFrom, readIndex, rollupField } from './replies.ts';
import { call, type ScriptedRedis } from './scripts.ts';

export interface RedisStoreOptions extends MoneyStoreOptions {
  /** Key prefix with a hash tag (default `{cp}`); one without braces is wrapped in them. */
  prefix?: string;
  /** A command without a reply after this long fails (closed). Default 2000. */
  commandTimeoutMs?: number;
  /**
   * One partition of a budget spread over partitions (partitioned.ts): budgets it creates start
   * with a ceiling of 0 (their cap, raised by caps.lua), rate limits keep their stored limit, and
   * its reservation ids carry the tag (`res_<tag>_…`) that routes them back to it.
   */
  partitionTag?: string;
}

const SWEEP_BATCH = 500;
const BUDGET_READ_BATCH = 500;
const BACKEND = 'redis';

type Reply = unknown[];

export class RedisMoneyStore implements MoneyStore {
  readonly backend = 'redis' as const;
  readonly keys: RedisKeys;
  /** The store's clock (ms). */
  readonly now: () => number;
  private readonly resPrefix: string;
  /** One partition of a partitioned store (partitionTag): its budget copies' ceilings are caps. */
  private readonly capped: boolean;

  constructor(
    readonly redis: ScriptedRedis,
    private readonly options: RedisStoreOptions,
  ) {
    this.keys = new RedisKeys(options.prefix);
    this.now = options.now ?? Date.now;
    this.capped = options.partitionTag !== undefined;
    this.resPrefix = this.capped ? `res_${options.partitionTag}` : 'res';
  }

  // ---- the three operations that move money -------------------------------------------------

  async admit(req: AdmitRequest): Promise<Admission> {
    const scopes = identityScopes(req.identity);
    const amount = checkMicros(req.amount, 'amount');
    const specs = this.specArgs(scopes, req.provision);
    const lease = req.lease ? checkLease(req.lease, amount) : { upTo: 0, share: 0 };
    const rates = checkRates(req.rates);
    const capped = this.capped;
    return failClosed(BACKEND, 'admit', async () => {
      const now = this.now();
      const id = newId(this.resPrefix);
      const k = this.keys;
      const keys = [
        k.kills,
        k.rexp,
        k.scopes,
        k.ledger,
        k.reservation(id),
        ...scopes.map((s) => k.budget(budgetId(s))),
        // Rate limits (includes/rate.lua): the rates index and their budgets, after the money's.
        ...(rates.length ? [k.rates, ...rates.map((r) => k.budget(r.id))] : []),
      ];
      const expiresAt = now + (req.ttlMs ?? this.options.reservationTtlMs);
      const label = [req.requestId ?? '', req.kind ?? '', req.name ?? '', req.provider ?? ''];
      const args = [
        ...this.context(now),
        id,
        amount,
        expiresAt,
        JSON.stringify(req.identity),
        ...label,
        lease.upTo,
        lease.share,
        ...specs,
        ...rates.flatMap((r) => [r.key, r.id, capped ? `~${r.limit}` : r.limit, r.window, r.amount, r.unit]),
        rates.length,
      ];
      const reply = (await call(this.redis, 'cpAdmit', keys, args)) as Reply;
      switch (reply[0]) {
        case 'ok': {
          const held = storedMicros(reply[1], 'granted');
          return { ok: true, reservation: { id, amount: held, scopes, createdAt: now, expiresAt } };
        }
        case 'killed':
          return {
            ok: false,
            refusal: { code: 'killed', kill: storedJson<KillSwitch>(reply[1], 'kill switch') },
          };
        case 'refused':
          return {
            ok: false,
            refusal: { code: 'budget_exhausted', budget: budgetFrom(reply.slice(1)), amount },
          };
        case 'rate_limited':
          return {
            ok: false,
            refusal: {
              code: 'rate_limited',
              budget: asRateBudget(budgetFrom(reply.slice(1, 13))),
              amount: storedMicros(reply[13], 'rate limit amount'),
              retryAt: reply[14] === '' ? null : storedMicros(reply[14], 'rate limit retryAt'),
            },
          };
        default:
          throw new CorruptRecordError('admit reply', reply);
      }
    });
  }

  async settle(reservationId: string, input: LedgerInput): Promise<LedgerEntry> {
    checkReservationId(reservationId);
    const entry = { ...prepareEntry(input, this.now()), reservationId };
    return failClosed(BACKEND, 'settle', () => this.closeReservation('settle', reservationId, entry));
  }

  async release(reservationId: string, input: LedgerInput): Promise<LedgerEntry> {
    checkReservationId(reservationId);
    const entry = { ...prepareEntry(input, this.now()), reservationId };
    if (entry.cost !== 0) {
      throw new StoreInputError(
        'invalid',
        'release records a call that was never billed: use settle for a cost',
      );
    }
    return failClosed(BACKEND, 'release', () => this.closeReservation('release', reservationId, entry));
  }

  /** One script call; a second only if the reservation holds other budgets than the entry's identity. */
  private async closeReservation(
    op: 'settle' | 'release',
    reservationId: string,
    entry: PreparedEntry,
  ): Promise<LedgerEntry> {
    const k = this.keys;
    const now = this.now();
    const { reserved, ...rest } = entry;
    const head = JSON.stringify(rest);
    const t = entry.tokens;
    const tokens = [t.input, t.cacheWrite5m, t.cacheWrite1h, t.cacheRead, t.output];
    const rollup = countsAsSpend(entry.outcome) ? rollupField(entry) : '';
    const indexes = identityScopes(entry.identity).map((s) => k.ledgerIndex(s));
    let scopes = identityScopes(entry.identity);
    for (let attempt = 0; attempt < 2; attempt++) {
      const budgets = scopes.map((s) => k.budget(budgetId(s)));
      const common = [k.reservation(reservationId), k.rexp];
      const reply = (
        op === 'settle'
          ? await call(
              this.redis,
              'cpSettle',
              [
                ...common,
                k.scopes,
                k.ledger,
                k.rollup(dayKey(entry.at, this.options.timeZone)),
                ...budgets,
                ...indexes,
              ],
              [
                ...this.context(now),
                reservationId,
                entry.cost,
                reserved,
                head,
                entry.at,
                rollup,
                ...tokens,
                scopes.length,
                ...this.specArgs(scopes),
              ],
            )
          : await call(
              this.redis,
              'cpRelease',
              [
                ...common,
                k.ledger,
                k.rollup(dayKey(entry.at, this.options.timeZone)),
                ...budgets,
                ...indexes,
              ],
              [
                ...this.context(now),
                reservationId,
                reserved,
                head,
                entry.at,
                rollup,
                ...tokens,
                scopes.length,
                ...scopes.map(budgetId),
              ],
            )
      ) as Reply;
      switch (reply[0]) {
        case 'settled':
        case 'released':
          return finishEntry(entry, storedMicros(reply[1], 'reserved'));
        case 'closed':
          return storedJson<LedgerEntry>(reply[1], `reservation ${reservationId} entry`);
        case 'moved':
          scopes = String(reply[1]).split(' ');
          scopes.forEach(checkScope);
          continue;
        default:
          throw new CorruptRecordError(`${op} reply`, reply);
      }
    }
    throw new CorruptRecordError(`reservation ${reservationId} scopes`, scopes);
  }

  async expireNow(scope: Scope): Promise<number> {
    checkScope(scope);
    return failClosed(BACKEND, 'expire reservations', async () => {
      const k = this.keys;
      const open = await this.redis.zrange(k.rexp, '0', '-1');
      if (open.length === 0) return 0;
      const pipe = this.redis.pipeline();
      for (const id of open) pipe.hget(k.reservation(id), 'scopes');
      const scopes = (await pipe.exec()) ?? [];
      const mine = open.filter((_, i) =>
        String(scopes[i]?.[1] ?? '')
          .split(' ')
          .includes(scope),
      );
      if (mine.length === 0) return 0;
      // Due now: the sweep (one atomic script per batch) charges and records each, as on expiry.
      await this.redis.zadd(k.rexp, 'XX', ...mine.flatMap((id) => ['0', id]));
      await this.sweepExpired();
      return mine.length;
    });
  }

  async sweepExpired(): Promise<number> {
    return failClosed(BACKEND, 'sweep expired reservations', async () => {
      let total = 0;
      for (;;) {
        const args = [...this.context(this.now()), SWEEP_BATCH];
        const n = Number(await call(this.redis, 'cpSweep', [this.keys.rexp, this.keys.ledger], args));
        total += n;
        if (n < SWEEP_BATCH) return total;
      }
    });
  }

  async correctExpired(c: ExpiredCorrection): Promise<CorrectionResult> {
    checkCorrection(c);
    return failClosed(BACKEND, 'correct an expired charge', () => {
      const now = this.now();
      return correctIn(this.redis, this.keys, this.options.timeZone, now, this.context(now), c);
    });
  }

  async appendLedger(input: LedgerInput): Promise<LedgerEntry> {
    const entry = finishEntry(prepareEntry(input, this.now()), input.reserved ?? 0);
    return failClosed(BACKEND, 'append to the ledger', async () => {
      const k = this.keys;
      const t = entry.tokens;
      const keys = [
        k.ledger,
        k.rollup(dayKey(entry.at, this.options.timeZone)),
        ...identityScopes(entry.identity).map((s) => k.ledgerIndex(s)),
      ];
      const rollup = countsAsSpend(entry.outcome) ? rollupField(entry) : '';
      const args: (string | number)[] = [JSON.stringify(entry), entry.at, rollup, entry.cost];
      args.push(t.input, t.cacheWrite5m, t.cacheWrite1h, t.cacheRead, t.output);
      await call(this.redis, 'cpAppend', keys, [...this.context(this.now()), ...args]);
      return entry;
    });
  }

  async leaseOps(ops: LeaseOp[]): Promise<LeaseOpResult[]> {
    return this.leaseBatch(ops)();
  }

  /**
   * Checks lease steps and builds their script call without sending it (a bad step throws here):
   * a partitioned store checks every partition's part of a batch before any is sent.
   */
  leaseBatch(ops: LeaseOp[]): () => Promise<LeaseOpResult[]> {
    const now = this.now();
    const prepared = ops.map((op) => prepareLeaseOp(op, now));
    const spec = (scopes: Scope[]) => this.specArgs(scopes);
    const args = [...this.context(now), ...leaseScriptArgs(prepared, spec, this.options.timeZone)];
    return () =>
      failClosed(BACKEND, 'apply lease steps', async () => {
        const k = this.keys;
        return leaseResults(prepared, await call(this.redis, 'cpLease', [k.rexp, k.scopes, k.ledger], args));
      });
  }

  // ---- budgets ------------------------------------------------------------------------------

  async getBudget(idOrScope: string): Promise<Budget | undefined> {
    const id = idOrScope.startsWith('bgt_') ? idOrScope : budgetId(idOrScope);
    return failClosed(BACKEND, 'read a budget', async () => (await this.readBudgets([id]))[0]);
  }

  async listBudgets(filter?: { kind?: ScopeKind; rates?: boolean }): Promise<Budget[]> {
    const kind = filter?.kind;
    return failClosed(BACKEND, 'list budgets', async () => {
      const scopes = filter?.rates
        ? await this.redis.zrange(this.keys.rates, '0', '-1')
        : kind === undefined
          ? await this.redis.zrange(this.keys.scopes, '0', '-1')
          : kind === 'global'
            ? await this.redis.zrangebylex(this.keys.scopes, '[global', '[global')
            : await this.redis.zrangebylex(this.keys.scopes, `[${kind}:`, `(${kind};`);
      const out: Budget[] = [];
      for (let i = 0; i < scopes.length; i += BUDGET_READ_BATCH) {
        const ids = scopes.slice(i, i + BUDGET_READ_BATCH).map(budgetId);
        for (const b of await this.readBudgets(ids)) if (b) out.push(b);
      }
      return out;
    });
  }

  async ensureBudget(scope: Scope, spec?: BudgetSpec): Promise<Budget> {
    const args = this.specArgs([scope], spec ? { [scope]: spec } : undefined);
    return failClosed(BACKEND, 'create a budget', async () => {
      const keys = [this.keys.scopes, this.keys.budget(budgetId(scope))];
      return budgetFrom(await call(this.redis, 'cpEnsure', keys, [...this.context(this.now()), ...args]));
    });
  }

  async setCeiling(scope: Scope, ceiling: Micros, by: Actor): Promise<Budget> {
    checkMicros(ceiling, 'ceiling');
    return this.setBudget(scope, 'ceiling', String(ceiling), 'budget.ceiling', by);
  }

  async setFrozen(scope: Scope, frozen: boolean, by: Actor): Promise<Budget> {
    return this.setBudget(
      scope,
      'frozen',
      frozen ? '1' : '0',
      frozen ? 'budget.freeze' : 'budget.unfreeze',
      by,
    );
  }

  private async setBudget(
    scope: Scope,
    field: string,
    value: string,
    action: string,
    by: Actor,
  ): Promise<Budget> {
    checkActor(by);
    const spec = this.specArgs([scope]);
    return failClosed(BACKEND, 'change a budget', async () => {
      const now = this.now();
      const k = this.keys;
      const head = auditHead(prepareAudit({ ...by, action, target: scope }, now));
      const keys = [k.scopes, k.budget(budgetId(scope)), k.audit, k.auditAll, k.auditIndex(scope)];
      const args = [...this.context(now), ...spec, field, value, head];
      return budgetFrom(await call(this.redis, 'cpSetBudget', keys, args));
    });
  }

  // ---- kill switches ------------------------------------------------------------------------

  async setKill(scope: Scope, by: Actor): Promise<KillSwitch> {
    checkScope(scope);
    checkActor(by);
    return failClosed(BACKEND, 'set a kill switch', async () => {
      const now = this.now();
      const kill: KillSwitch = { scope, reason: by.reason, actor: by.actor, at: now };
      await this.kill('set', scope, JSON.stringify(kill), 'kill.set', by, now);
      return kill;
    });
  }

  async liftKill(scope: Scope, by: Actor): Promise<boolean> {
    checkScope(scope);
    checkActor(by);
    return failClosed(BACKEND, 'lift a kill switch', async () => {
      return (await this.kill('lift', scope, '', 'kill.lift', by, this.now())) === 1;
    });
  }

  private kill(mode: 'set' | 'lift', scope: Scope, json: string, action: string, by: Actor, now: number) {
    const k = this.keys;
    const head = auditHead(prepareAudit({ ...by, action, target: scope }, now));
    const keys = [k.kills, k.audit, k.auditAll, k.auditIndex(scope)];
    return call(this.redis, 'cpKill', keys, [...this.context(now), mode, scope, json, head]);
  }

  // ---- budget-lease replicas ---------------------------------------------------------------

  async replicaBeat(replica: string, at: number): Promise<KillSwitch[]> {
    return failClosed(BACKEND, 'record a replica', async () => {
      const replies = await this.redis
        .multi()
        .zadd(this.keys.replicas, at, replica)
        .zremrangebyscore(this.keys.replicas, '-inf', `(${at - REPLICA_FORGET_MS}`)
        .hgetall(this.keys.kills)
        .exec();
      const [err, all] = replies?.[2] ?? [new Error('no reply')];
      if (err) throw err;
      return killsFrom(all as Record<string, string>);
    });
  }

  async replicasSince(since: number): Promise<string[]> {
    return failClosed(BACKEND, 'list replicas', () =>
      this.redis.zrangebyscore(this.keys.replicas, since, '+inf'),
    );
  }

  async replicaLeave(replica: string): Promise<void> {
    return failClosed(BACKEND, 'drop a replica', async () => {
      await this.redis.zrem(this.keys.replicas, replica);
    });
  }

  async listKills(): Promise<KillSwitch[]> {
    return failClosed(BACKEND, 'list kill switches', async () =>
      killsFrom(await this.redis.hgetall(this.keys.kills)),
    );
  }

  async killedBy(identity: Identity): Promise<KillSwitch | undefined> {
    const scopes = identityScopes(identity);
    return failClosed(BACKEND, 'read kill switches', async () => {
      const found = await this.redis.hmget(this.keys.kills, ...scopes);
      const first = found.find((v) => v !== null);
      return first ? storedJson<KillSwitch>(first, 'kill switch') : undefined;
    });
  }

  // ---- ledger and audit ---------------------------------------------------------------------

  async listLedger(q: LedgerQuery = {}): Promise<LedgerEntry[]> {
    const limit = limitOf(q.limit);
    if (q.scope) checkScope(q.scope);
    const index = this.keys.ledgerIndex(q.run !== undefined ? `run:${q.run}` : (q.scope ?? 'global'));
    const keep = (e: LedgerEntry) =>
      (!q.kind || e.kind === q.kind) &&
      (!q.outcome || e.outcome === q.outcome) &&
      (q.run === undefined || !q.scope || entryUnder(e.identity, q.scope));
    return failClosed(BACKEND, 'read the ledger', () =>
      readIndex<LedgerEntry>(
        this.redis,
        this.keys.ledger,
        index,
        q.since,
        q.until,
        limit,
        keep,
        'ledger entry',
      ),
    );
  }

  async spend(q: SpendQuery): Promise<SpendRow[]> {
    const by: SpendDimension = q.by;
    if (!SPEND_DIMENSIONS.includes(by)) {
      throw new StoreInputError('invalid', `cannot group spend by ${String(by)}`);
    }
    checkRange(q.since, q.until);
    const filter = q.scope && q.scope !== 'global' ? checkScope(q.scope) : undefined;
    const tz = this.options.timeZone;
    return failClosed(BACKEND, 'sum spend', async () => {
      const tally = new SpendTally();
      const addEntries = async (since: number, until: number, index: string) => {
        const entries = await readIndex<LedgerEntry>(
          this.redis,
          this.keys.ledger,
          index,
          since,
          until,
          Number.POSITIVE_INFINITY,
          (e) => countsAsSpend(e.outcome),
          'ledger entry',
        );
        for (const e of entries) {
          if (q.provider !== undefined && providerKey(e) !== q.provider) continue;
          const corrected = e.outcome === 'corrected' ? { count: 1, cost: e.cost } : undefined;
          tally.add(spendKey(e, by, tz), e.cost, callsOf(e.outcome), e.tokens, corrected);
        }
      };
      // A run's entries are few and not in the rollups (they would add a field per run and day).
      if (filter?.kind === 'run') {
        await addEntries(q.since, q.until, this.keys.ledgerIndex(q.scope!));
        return tally.result();
      }
      const index = this.keys.ledgerIndex(q.scope ?? 'global');
      const fullDays: string[] = [];
      for (const day of daysBetween(q.since, q.until, tz)) {
        const end = day.resetsAt ?? q.until;
        if (q.since <= day.start && end <= q.until) fullDays.push(day.key);
        else await addEntries(Math.max(q.since, day.start), Math.min(q.until, end), index);
      }
      const pipe = this.redis.pipeline();
      for (const day of fullDays) pipe.hgetall(this.keys.rollup(day));
      const results = fullDays.length ? ((await pipe.exec()) ?? []) : [];
      results.forEach(([err, fields], i) => {
        if (err) throw err;
        addRollup(tally, fullDays[i]!, fields as Record<string, string>, by, filter, q.provider);
      });
      return tally.result();
    });
  }

  async appendAudit(input: AuditInput): Promise<AuditEntry> {
    const entry = prepareAudit(input, this.now());
    return failClosed(BACKEND, 'append to the audit log', async () => {
      const k = this.keys;
      const keys = [k.audit, k.auditAll, k.auditIndex(entry.target)];
      await call(this.redis, 'cpAudit', keys, [...this.context(entry.at), JSON.stringify(entry)]);
      return entry;
    });
  }

  async listAudit(q: AuditQuery = {}): Promise<AuditEntry[]> {
    const limit = limitOf(q.limit);
    const index = q.target !== undefined ? this.keys.auditIndex(q.target) : this.keys.auditAll;
    return failClosed(BACKEND, 'read the audit log', () =>
      readIndex<AuditEntry>(
        this.redis,
        this.keys.audit,
        index,
        q.since,
        q.until,
        limit,
        () => true,
        'audit entry',
      ),
    );
  }

  async ping(): Promise<void> {
    return failClosed(BACKEND, 'answer a ping', async () => {
      const ok = await this.redis.set(this.keys.ping, String(this.now()), 'PX', 60_000);
      if (ok !== 'OK') throw new Error(`unexpected reply to SET: ${String(ok)}`);
    });
  }

  isUp(): boolean {
    return this.redis.status === 'ready';
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  // ---- internals ----------------------------------------------------------------------------

  /** The shared script arguments: the clock, this day's and this month's windows, the prefix. */
  context(now: number): (string | number)[] {
    const d = dayWindow(now, this.options.timeZone);
    const m = monthWindow(now, this.options.timeZone);
    return [now, d.key, d.start, d.resetsAt ?? 0, m.key, m.start, m.resetsAt ?? 0, this.keys.prefix];
  }

  /**
   * scope id kind owner ceiling window, per scope: what a script creates a missing budget with (a
   * partition's copy with a ceiling of 0: its cap).
   */
  specArgs(scopes: Scope[], provision?: Record<Scope, BudgetSpec>): (string | number)[] {
    return scopes.flatMap((scope) => {
      const spec = specFor(scope, this.options, provision);
      const ceiling = this.capped ? 0 : spec.ceiling;
      return [scope, budgetId(scope), checkScope(scope).kind, spec.owner, ceiling, spec.window];
    });
  }

  /** The budgets of these ids as this store holds them (undefined where missing). */
  async readBudgets(ids: string[]): Promise<(Budget | undefined)[]> {
    const keys = ids.map((id) => this.keys.budget(id));
    const reply = (await call(this.redis, 'cpBudgets', keys, this.context(this.now()))) as Reply;
    return reply.map((b) => (b ? asRateBudget(budgetFrom(b)) : undefined));
  }
}

/** The kill switches hash, oldest first. */
function killsFrom(all: Record<string, string>): KillSwitch[] {
  return Object.values(all)
    .map((v) => storedJson<KillSwitch>(v, 'kill switch'))
    .sort((a, b) => a.at - b.at || (a.scope < b.scope ? -1 : 1));
}

/** A replica silent this long is dropped from `{cp}:replicas` (it is long dead to the others). */
const REPLICA_FORGET_MS = 60_000;

function checkReservationId(id: string): void {
  if (typeof id !== 'string' || id === '' || id.length > 200 || /\s/.test(id)) {
    throw new StoreInputError('invalid', `bad reservation id ${JSON.stringify(id)}`);
  }
}

/**
 * Connects to Redis at `url` and returns the store once its scripts are loaded. A Redis that cannot
 * be reached is an EnforcementUnavailableError.
 *
 * @example const store = await openRedisStore('redis://127.0.0.1:6379', { defaults, timeZone: 'UTC', reservationTtlMs: 600_000, prefix: '{cp}' });
 */
export async function openRedisStore(url: string, options: RedisStoreOptions): Promise<RedisMoneyStore> {
  return new RedisMoneyStore(await connectMoneyRedis(url, options), options);
}
