// long: one class implements the whole money port over SQLite (admission, settlement, expiry,
// budgets, ledger, audit, kill switches); every method is a short transaction over the prepared
// statements of statements.ts, and the ones that must stay atomic together read best side by side
// with the Redis twin's Lua scripts. The queries that are not transactions live in queries.ts, the
// group commit of the hot path in group-commit.ts.
import type Database from 'better-sqlite3';
import type { Identity, Scope, ScopeKind } from '../../../identity.ts';
import { newId } from '../../../ids.ts';
import type { Micros } from '../../../money.ts';
import { checkLease, leaseGrant, prepareLeaseOp, spareOf } from '../../../store/lease-ops.ts';
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
  EnforcementUnavailableError,
  type ExpiredCorrection,
  type KillSwitch,
  type LeaseOp,
  type LeaseOpResult,
  type LedgerEntry,
  type LedgerInput,
  type LedgerQuery,
  type MoneyStore,
  type MoneyStoreOptions,
  NO_TOKENS,
  type Reservation,
  type SpendQuery,
  type SpendRow,
  StoreInputError,
} from '../../../store/port.ts';
import {
  checkRates,
  expiredUnits,
  holdsOf,
  holdsText,
  type RateHold,
  unitsOf,
} from '../../../store/rates.ts';
import {
  budgetId,
  checkActor,
  checkCorrection,
  checkMicros,
  checkScope,
  expiredEntryId,
  failClosed,
  finishEntry,
  identityScopes,
  limitOf,
  type PreparedEntry,
  prepareAudit,
  prepareEntry,
  specFor,
  storedJson,
  storedMicros,
} from '../../../store/records.ts';
import { assertTimeZone } from '../../../store/windows.ts';
import { openSqlite } from '../sqlite.ts';
import { BACKSTOP_PAGES, type Checkpointer, startCheckpointer } from './checkpointer.ts';
import { type CorrectionStatements, correctOne, prepareCorrections } from './corrections.ts';
import { GroupCommit } from './group-commit.ts';
import { type LeaseHost, leaseBatch, prepareLeaseStatements } from './lease-steps.ts';
import { chargeAll, chargeOne, type LiveBudget, liveBudget, padded } from './live-budget.ts';
import { auditQuery, ledgerQuery, ledgerRow, spendQuery, spendRows } from './queries.ts';
import { checkRateLimits, closeRates, prepareRateStatements, type RateHost, reserveRates } from './rates.ts';
import { migrate } from './schema.ts';
import {
  type BudgetRow,
  type KillRow,
  MAX_SCOPES,
  prepareStatements,
  type ReservationRow,
  type Statements,
} from './statements.ts';

/**
 * The embedded money store: one SQLite file (better-sqlite3, WAL). Every operation runs inside a
 * `BEGIN IMMEDIATE` transaction — admits, settles and releases group-committed, several to one
 * transaction each in its own savepoint (see `grouped`) — so it is atomic within this process (the
 * event loop runs one at a time) and across processes sharing the file (the write lock is taken up
 * front; `busy_timeout` waits for it). `synchronous = NORMAL` under WAL: a power cut may lose the last transactions but
 * never corrupts the file — the same trade as Redis with `appendfsync everysec`. Checkpoints run on
 * a worker thread (checkpointer.ts) so no admit or settle pays for one.
 */

/** Reservations expired per admit call, so a backlog never makes one admission slow. */
const SWEEP_IN_ADMIT = 8;
const SWEEP_BATCH = 500;
/** How long a closed reservation is remembered, making a repeated settle or release a no-op. */
const TOMBSTONE_MS = 7 * 24 * 3_600_000;
interface Label {
  requestId?: string;
  kind?: 'model' | 'tool';
  name?: string;
  provider?: string;
}

export class EmbeddedMoneyStore implements MoneyStore {
  readonly backend = 'embedded' as const;
  /** The open database: tests reach in to corrupt rows or close it under the store. */
  readonly db: Database.Database;
  private readonly now: () => number;
  private readonly s: Statements;
  private readonly corrections: CorrectionStatements;
  private readonly cached = new Map<string, Database.Statement>();
  private readonly checkpointer: Checkpointer | undefined;
  private readonly group: GroupCommit;
  /** Rate limits (rates.ts): their statements, and the budget reading and charging they borrow. */
  private readonly rates: RateHost;
  private readonly leaseHost: LeaseHost;
  /** Store time before which no open reservation falls due: admit skips its sweep until then. */
  private noneDueBefore = Number.NEGATIVE_INFINITY;

  constructor(
    path: string,
    private readonly options: MoneyStoreOptions,
  ) {
    assertTimeZone(options.timeZone);
    checkMicros(options.reservationTtlMs, 'reservationTtlMs');
    this.now = options.now ?? Date.now;
    this.db = openSqlite(path, { synchronous: 'NORMAL' });
    migrate(this.db);
    if (this.db.pragma('journal_mode', { simple: true }) === 'wal') {
      this.db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
      this.db.pragma('journal_size_limit = 67108864');
      this.checkpointer = startCheckpointer(path);
    }
    this.s = prepareStatements(this.db);
    this.corrections = prepareCorrections(this.db);
    this.rates = {
      s: this.s,
      rs: prepareRateStatements(this.db),
      live: (row, now) => this.live(row, now),
      charge: (b, cost, release, now) => chargeOne(this.s, b as LiveBudget, cost, release, now),
    };
    this.leaseHost = {
      s: this.s,
      ls: prepareLeaseStatements(this.db),
      budgetRows: (scopes) => this.budgetRows(scopes),
      live: (row, now) => this.live(row, now),
      identityBudgets: (identity, now) => this.identityBudgets(identity, now),
      chargeAll: (live, cost, release, now) => chargeAll(this.s, live, cost, release, now),
      ledgerRow: (e, json) => ledgerRow(e, this.options.timeZone, json),
    };
    // An operation rolled back (alone or with its group) may have rolled back expirations too:
    // admit looks for due reservations again next time.
    this.group = new GroupCommit(this.db, () => {
      this.noneDueBefore = Number.NEGATIVE_INFINITY;
    });
  }

  // ---- the three operations that move money -------------------------------------------------

  async admit(req: AdmitRequest): Promise<Admission> {
    const scopes = identityScopes(req.identity);
    const amount = checkMicros(req.amount, 'amount');
    const specs = scopes.map((s) => specFor(s, this.options, req.provision));
    const label: Label = {
      requestId: req.requestId,
      kind: req.kind,
      name: req.name,
      ...(req.provider ? { provider: req.provider } : {}),
    };
    const ttl = req.ttlMs ?? this.options.reservationTtlMs;
    const lease = req.lease && checkLease(req.lease, amount);
    const rates = checkRates(req.rates);
    return this.grouped('admit', () =>
      this.admitOne(req.identity, scopes, specs, amount, label, ttl, rates, lease),
    );
  }

  private admitOne(
    identity: Identity,
    scopes: Scope[],
    specs: Required<BudgetSpec>[],
    amount: Micros,
    label: Label,
    ttlMs: number,
    rates: ReturnType<typeof checkRates>,
    lease?: { upTo: Micros; share: number },
  ): Admission {
    const now = this.now();
    this.sweepDue(now);
    const kill = this.firstKill(scopes);
    if (kill) return { ok: false, refusal: { code: 'killed', kill } } satisfies Admission;
    const live: LiveBudget[] = [];
    let rows = this.budgetRows(scopes);
    if (rows.some((r) => r === undefined)) {
      scopes.forEach((scope, i) => {
        if (!rows[i]) this.insertBudget(scope, specs[i]!, now);
      });
      rows = this.budgetRows(scopes);
    }
    let room = Number.POSITIVE_INFINITY;
    let spare = Number.POSITIVE_INFINITY;
    for (const row of rows) {
      const b = this.live(row!, now);
      const { budget } = b;
      if (budget.state === 'frozen' || budget.spent + budget.reserved + amount > budget.ceiling) {
        return { ok: false, refusal: { code: 'budget_exhausted', budget, amount } } satisfies Admission;
      }
      room = Math.min(room, budget.ceiling - budget.spent - budget.reserved);
      spare = Math.min(spare, spareOf(budget));
      live.push(b);
    }
    // Rate limits: checked after the money (a budget refusal is final, a rate one passes), in
    // this same transaction, and reserved with it (rates.ts).
    let holds: RateHold[] = [];
    if (rates.length) {
      const rated = checkRateLimits(this.rates, rates, now);
      if (!rated.ok) return rated;
      holds = rated.holds;
    }
    const held = lease ? leaseGrant(amount, room, spare, lease) : amount;
    this.s.reserveIn.run(held, now, ...padded(live.map((b) => b.row.id)));
    const reservation: Reservation = {
      id: newId('res'),
      amount: held,
      scopes,
      createdAt: now,
      expiresAt: now + ttlMs,
    };
    this.s.resInsert.run(
      reservation.id,
      held,
      JSON.stringify(scopes),
      JSON.stringify(identity),
      JSON.stringify(label),
      now,
      reservation.expiresAt,
    );
    if (holds.length) {
      reserveRates(this.rates, holds, now);
      this.rates.rs.holdsPut.run(holdsText(holds), reservation.id);
    }
    return { ok: true, reservation } satisfies Admission;
  }

  async settle(reservationId: string, input: LedgerInput): Promise<LedgerEntry> {
    const entry = prepareEntry(input, this.now());
    return this.grouped('settle', () => this.closeOne(reservationId, entry, 'settled'));
  }

  async release(reservationId: string, input: LedgerInput): Promise<LedgerEntry> {
    const entry = prepareEntry(input, this.now());
    if (entry.cost !== 0) {
      throw new StoreInputError(
        'invalid',
        'release records a call that was never billed: use settle for a cost',
      );
    }
    return this.grouped('release', () => this.closeOne(reservationId, entry, 'released'));
  }

  /**
   * Settle and release in one transaction. A reservation closes once: a second settle or release of
   * the same id — or one after it expired — returns the entry that closed it and changes nothing. An
   * unknown reservation is still charged — to the budgets of the entry's identity — so no cost is lost.
   */
  private closeOne(reservationId: string, entry: PreparedEntry, status: 'settled' | 'released'): LedgerEntry {
    const now = this.now();
    const res = this.s.resGet.get(reservationId) as ReservationRow | undefined;
    // Closed once. An expired reservation was charged its worst case when it expired: that stands
    // (never less than the call cost) until reconciliation corrects it.
    if (res && res.status !== 'open') {
      return storedJson<LedgerEntry>(res.entry, `reservation ${reservationId}`);
    }
    const open = res?.status === 'open';
    const held = open ? storedMicros(res.amount, `reservation ${reservationId} amount`) : 0;
    const final = finishEntry({ ...entry, reservationId }, open ? held : entry.reserved);
    if (open) {
      const scopes = storedJson<Scope[]>(res.scopes, 'reservation scopes');
      const live: LiveBudget[] = [];
      for (const row of this.budgetRows(scopes)) if (row) live.push(this.live(row, now));
      chargeAll(this.s, live, final.cost, held, now);
      // Its rate limits: a settle charges the units the call used, a release none (rates.ts).
      const units = (h: RateHold) => (status === 'settled' ? unitsOf(h.unit, final.tokens) : 0);
      closeRates(this.rates, holdsOf(res.rates), units, now);
    } else if (final.cost > 0) {
      // Late or unknown: charge the identity's budgets, creating any that do not exist yet.
      const live = this.identityBudgets(entry.identity, now);
      chargeAll(this.s, live, final.cost, 0, now);
    }
    this.insertLedger(final);
    this.s.resClose.run({ id: reservationId, now, status, entry: JSON.stringify(final) });
    return final;
  }

  async expireNow(scope: Scope): Promise<number> {
    checkScope(scope);
    return this.grouped('expire', () => {
      const now = this.now();
      return this.expire(this.s.resOfScope.all(scope) as ReservationRow[], now);
    });
  }

  async sweepExpired(): Promise<number> {
    return this.run('sweep expired reservations', () => {
      let total = 0;
      for (;;) {
        const n = this.sweepTx.immediate();
        total += n;
        if (n < SWEEP_BATCH) return total;
      }
    });
  }

  private readonly sweepTx = this.lazyTx((): number => {
    const now = this.now();
    const n = this.expire(this.s.resExpired.all(now, SWEEP_BATCH) as ReservationRow[], now);
    this.s.resForget.run(now - TOMBSTONE_MS);
    this.leaseHost.ls.callForget.run(now - TOMBSTONE_MS);
    return n;
  });

  async correctExpired(c: ExpiredCorrection): Promise<CorrectionResult> {
    checkCorrection(c);
    return this.grouped('correct an expired charge', () =>
      correctOne(this.corrections, c, this.now(), this.options.timeZone, (e) => this.insertLedger(e)),
    );
  }

  async appendLedger(input: LedgerInput): Promise<LedgerEntry> {
    const entry = finishEntry(prepareEntry(input, this.now()), input.reserved ?? 0);
    return this.run('append to the ledger', () => {
      this.insertLedger(entry);
      return entry;
    });
  }

  async leaseOps(ops: LeaseOp[]): Promise<LeaseOpResult[]> {
    const now = this.now();
    const prepared = ops.map((op) => prepareLeaseOp(op, now));
    return this.grouped('apply lease steps', () => leaseBatch(this.leaseHost, prepared, this.now()));
  }

  // ---- budgets ------------------------------------------------------------------------------

  async getBudget(idOrScope: string): Promise<Budget | undefined> {
    return this.run('read a budget', () => {
      const row = (
        idOrScope.startsWith('bgt_') ? this.s.budgetById.get(idOrScope) : this.s.budgetByScope.get(idOrScope)
      ) as BudgetRow | undefined;
      return row ? this.live(row, this.now()).budget : undefined;
    });
  }

  async listBudgets(filter?: { kind?: ScopeKind; rates?: boolean }): Promise<Budget[]> {
    return this.run('list budgets', () => {
      const now = this.now();
      const rows = (
        filter?.rates
          ? this.s.budgetsOfKind.all('rate')
          : filter?.kind
            ? this.s.budgetsOfKind.all(filter.kind)
            : (this.s.budgetsAll.all() as BudgetRow[]).filter((r) => r.kind !== 'rate')
      ) as BudgetRow[];
      return rows.map((r) => this.live(r, now).budget);
    });
  }

  async ensureBudget(scope: Scope, spec?: BudgetSpec): Promise<Budget> {
    const checked = specFor(scope, this.options, spec ? { [scope]: spec } : undefined);
    return this.run('create a budget', () =>
      this.tx(() => {
        const now = this.now();
        this.insertBudget(scope, checked, now);
        return this.live(this.s.budgetByScope.get(scope) as BudgetRow, now).budget;
      }),
    );
  }

  async setCeiling(scope: Scope, ceiling: Micros, by: Actor): Promise<Budget> {
    checkMicros(ceiling, 'ceiling');
    checkActor(by);
    const spec = specFor(scope, this.options);
    return this.run('change a ceiling', () =>
      this.tx(() => {
        const now = this.now();
        const before = this.ensureRow(scope, spec, now);
        const was = this.live(before, now).budget.ceiling;
        this.s.setCeiling.run(ceiling, now, before.id);
        this.audit(
          { ...by, action: 'budget.ceiling', target: scope, before: { ceiling: was }, after: { ceiling } },
          now,
        );
        return this.live(this.s.budgetById.get(before.id) as BudgetRow, now).budget;
      }),
    );
  }

  async setFrozen(scope: Scope, frozen: boolean, by: Actor): Promise<Budget> {
    checkActor(by);
    const spec = specFor(scope, this.options);
    return this.run('freeze a budget', () =>
      this.tx(() => {
        const now = this.now();
        const before = this.ensureRow(scope, spec, now);
        const was = this.live(before, now).budget.state === 'frozen';
        this.s.setFrozen.run(frozen ? 1 : 0, now, before.id);
        const action = frozen ? 'budget.freeze' : 'budget.unfreeze';
        this.audit({ ...by, action, target: scope, before: { frozen: was }, after: { frozen } }, now);
        return this.live(this.s.budgetById.get(before.id) as BudgetRow, now).budget;
      }),
    );
  }

  // ---- kill switches ------------------------------------------------------------------------

  async setKill(scope: Scope, by: Actor): Promise<KillSwitch> {
    checkScope(scope);
    checkActor(by);
    return this.run('set a kill switch', () =>
      this.tx(() => {
        const now = this.now();
        const before = this.s.killGet.get(scope) as KillRow | undefined;
        const kill: KillSwitch = { scope, reason: by.reason, actor: by.actor, at: now };
        this.s.killPut.run(kill);
        this.audit({ ...by, action: 'kill.set', target: scope, before: before ?? null, after: kill }, now);
        return kill;
      }),
    );
  }

  async liftKill(scope: Scope, by: Actor): Promise<boolean> {
    checkScope(scope);
    checkActor(by);
    return this.run('lift a kill switch', () =>
      this.tx(() => {
        const now = this.now();
        const before = this.s.killGet.get(scope) as KillRow | undefined;
        if (!before) return false;
        this.s.killDelete.run(scope);
        this.audit({ ...by, action: 'kill.lift', target: scope, before: { ...before }, after: null }, now);
        return true;
      }),
    );
  }

  // ---- budget-lease replicas: this process's (the local broadcast reaches no other) ----------

  private readonly replicas = new Map<string, number>();

  async replicaBeat(replica: string, at: number): Promise<KillSwitch[]> {
    this.replicas.set(replica, at);
    return this.listKills();
  }

  async replicasSince(since: number): Promise<string[]> {
    return [...this.replicas].filter(([, at]) => at >= since).map(([r]) => r);
  }

  async replicaLeave(replica: string): Promise<void> {
    this.replicas.delete(replica);
  }

  async listKills(): Promise<KillSwitch[]> {
    return this.run('list kill switches', () => (this.s.killsAll.all() as KillRow[]).map((k) => ({ ...k })));
  }

  async killedBy(identity: Identity): Promise<KillSwitch | undefined> {
    const scopes = identityScopes(identity);
    return this.run('read kill switches', () => this.firstKill(scopes));
  }

  // ---- ledger and audit ---------------------------------------------------------------------

  async listLedger(q: LedgerQuery = {}): Promise<LedgerEntry[]> {
    const { sql, args } = ledgerQuery(q, limitOf(q.limit));
    return this.run('read the ledger', () =>
      (this.stmt(sql).all(...args) as { entry: string }[]).map((r) =>
        storedJson<LedgerEntry>(r.entry, 'ledger entry'),
      ),
    );
  }

  async spend(q: SpendQuery): Promise<SpendRow[]> {
    const { sql, args } = spendQuery(q);
    return this.run('sum spend', () => spendRows(this.stmt(sql).all(...args) as Record<string, number>[]));
  }

  async appendAudit(input: AuditInput): Promise<AuditEntry> {
    return this.run('append to the audit log', () => this.audit(input, this.now()));
  }

  async listAudit(q: AuditQuery = {}): Promise<AuditEntry[]> {
    const { sql, args } = auditQuery(q, limitOf(q.limit));
    return this.run('read the audit log', () =>
      (this.stmt(sql).all(...args) as { entry: string }[]).map((r) =>
        storedJson<AuditEntry>(r.entry, 'audit entry'),
      ),
    );
  }

  async ping(): Promise<void> {
    return this.run('answer a ping', () => {
      this.tx(() => this.s.ping.get());
    });
  }

  isUp(): boolean {
    return this.db.open;
  }

  async close(): Promise<void> {
    // Answer what was asked for before the file closes.
    this.group.drain();
    await this.checkpointer?.stop();
    if (this.db.open) this.db.close();
  }

  // ---- internals ----------------------------------------------------------------------------

  private run<T>(what: string, fn: () => T): Promise<T> {
    return failClosed('embedded', what, fn);
  }

  /** The hot path's operations, group-committed (group-commit.ts). */
  private grouped<T>(what: string, fn: () => T): Promise<T> {
    return this.group.run(what, fn);
  }

  private tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** Transactions are built on first use, after the constructor has opened the database. */
  private lazyTx<A extends unknown[], R>(fn: (...args: A) => R): { immediate(...args: A): R } {
    let built: Database.Transaction<(...args: A) => R> | undefined;
    return {
      immediate: (...args: A) => {
        built ??= this.db.transaction(fn);
        return built.immediate(...args);
      },
    };
  }

  private stmt(sql: string): Database.Statement {
    let s = this.cached.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cached.set(sql, s);
    }
    return s;
  }

  private budgetRows(scopes: Scope[]): (BudgetRow | undefined)[] {
    const args = [...scopes, ...Array(MAX_SCOPES - scopes.length).fill('')];
    const found = this.s.budgetsIn.all(...args) as BudgetRow[];
    return scopes.map((s) => found.find((r) => r.scope === s));
  }

  private insertBudget(scope: Scope, spec: Required<BudgetSpec>, now: number): void {
    const { kind } = checkScope(scope);
    this.s.insertBudget.run({
      id: budgetId(scope),
      scope,
      kind,
      owner: spec.owner,
      ceiling: spec.ceiling,
      window: spec.window,
      now,
    });
  }

  /** The identity's budgets, created from the defaults if missing (a late or unknown charge). */
  private identityBudgets(identity: Identity, now: number): LiveBudget[] {
    const scopes = identityScopes(identity);
    return this.budgetRows(scopes).map((row, i) => {
      const scope = scopes[i]!;
      return this.live(row ?? this.ensureRow(scope, specFor(scope, this.options), now), now);
    });
  }

  private ensureRow(scope: Scope, spec: Required<BudgetSpec>, now: number): BudgetRow {
    this.insertBudget(scope, spec, now);
    return this.s.budgetByScope.get(scope) as BudgetRow;
  }

  /** Reads a row as a budget in the window `now` falls in; a corrupt row throws. */
  private live(row: BudgetRow, now: number): LiveBudget {
    return liveBudget(row, now, this.options.timeZone, this.s.bucketSum);
  }

  /**
   * Expires reservations that are due, at most SWEEP_IN_ADMIT of them, and remembers when the next
   * one falls due so the admits before then skip the lookup. A reservation made later, here or by
   * another process, is due `reservationTtlMs` after it was made at the earliest; one a process with
   * a shorter TTL makes may wait for the next sweepExpired, as one past the batch does.
   */
  private sweepDue(now: number): void {
    if (now >= this.noneDueBefore) {
      const due = this.s.resExpired.all(now, SWEEP_IN_ADMIT) as ReservationRow[];
      this.expire(due, now);
      if (due.length < SWEEP_IN_ADMIT) {
        const next = (this.s.resNextDue.get() as { t: number | null }).t;
        this.noneDueBefore = Math.min(next ?? Number.POSITIVE_INFINITY, now + this.options.reservationTtlMs);
      }
    }
  }

  /** `charge` for several budgets: one statement per calendar window, rolling ones one by one. */
  private firstKill(scopes: Scope[]): KillSwitch | undefined {
    const args = [...scopes, ...Array(MAX_SCOPES - scopes.length).fill('')];
    const found = this.s.killsIn.all(...args) as KillRow[];
    for (const s of scopes) {
      const k = found.find((r) => r.scope === s);
      if (k) return { scope: k.scope, reason: k.reason, actor: k.actor, at: k.at };
    }
    return undefined;
  }

  /**
   * Closes open reservations past their expiry, each CHARGED its reserved amount — the call's worst
   * case: its outcome is unknown (its process died, or its settlement never came), and a call the
   * provider billed must never cost 0 — and recorded as an `expired` ledger entry with that cost.
   * Reconciliation corrects the difference per request id.
   */
  private expire(rows: ReservationRow[], now: number): number {
    for (const r of rows) {
      const amount = storedMicros(r.amount, `reservation ${r.id} amount`);
      const scopes = storedJson<Scope[]>(r.scopes, 'reservation scopes');
      const label = storedJson<Label>(r.label, 'reservation label');
      const live: LiveBudget[] = [];
      for (const row of this.budgetRows(scopes)) if (row) live.push(this.live(row, now));
      chargeAll(this.s, live, amount, amount, now);
      closeRates(this.rates, holdsOf(r.rates), expiredUnits, now);
      const entry: LedgerEntry = {
        id: expiredEntryId(r.id),
        at: now,
        requestId: label.requestId ?? r.id,
        identity: storedJson<Identity>(r.identity, 'reservation identity'),
        kind: label.kind ?? 'model',
        name: label.name ?? '',
        ...(label.provider ? { provider: label.provider } : {}),
        tokens: { ...NO_TOKENS },
        reserved: amount,
        cost: amount,
        overrun: 0,
        outcome: 'expired',
        code: 'reservation_expired',
        latencyMs: now - r.created_at,
        reservationId: r.id,
      };
      this.insertLedger(entry);
      this.s.resClose.run({ id: r.id, now, status: 'expired', entry: JSON.stringify(entry) });
    }
    return rows.length;
  }

  private insertLedger(e: LedgerEntry): void {
    this.s.ledgerInsert.run(...ledgerRow(e, this.options.timeZone));
  }

  private audit(input: AuditInput, now: number): AuditEntry {
    const entry = prepareAudit(input, now);
    this.s.auditInsert.run(entry.id, entry.at, entry.target, JSON.stringify(entry));
    return entry;
  }
}

/**
 * Opens (creating if needed) the embedded store at `path` (`:memory:` for tests).
 *
 * @example const store = openEmbeddedStore('data/chokepoint.db', { defaults, timeZone: 'UTC', reservationTtlMs: 600_000 });
 */
export function openEmbeddedStore(path: string, options: MoneyStoreOptions): EmbeddedMoneyStore {
  try {
    return new EmbeddedMoneyStore(path, options);
  } catch (err) {
    if (err instanceof StoreInputError || err instanceof RangeError) throw err;
    throw new EnforcementUnavailableError(`cannot open the embedded money store at ${path}: ${String(err)}`, {
      cause: err,
    });
  }
}
