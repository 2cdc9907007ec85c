import type { Identity, Scope, ScopeKind } from '../identity.ts';
import type { Micros } from '../money.ts';
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
} from './port.ts';

/** A money store that hands every call to the one it wraps: a decorator overrides what it changes. */
export abstract class ForwardingMoneyStore implements MoneyStore {
  readonly backend: MoneyStore['backend'];

  constructor(protected readonly store: MoneyStore) {
    this.backend = store.backend;
  }

  admit(req: AdmitRequest): Promise<Admission> {
    return this.store.admit(req);
  }
  settle(reservationId: string, entry: LedgerInput): Promise<LedgerEntry> {
    return this.store.settle(reservationId, entry);
  }
  release(reservationId: string, entry: LedgerInput): Promise<LedgerEntry> {
    return this.store.release(reservationId, entry);
  }
  sweepExpired(): Promise<number> {
    return this.store.sweepExpired();
  }
  expireNow(scope: Scope): Promise<number> {
    return this.store.expireNow(scope);
  }
  correctExpired(c: ExpiredCorrection): Promise<CorrectionResult> {
    return this.store.correctExpired(c);
  }
  appendLedger(entry: LedgerInput): Promise<LedgerEntry> {
    return this.store.appendLedger(entry);
  }
  leaseOps(ops: LeaseOp[]): Promise<LeaseOpResult[]> {
    return this.store.leaseOps(ops);
  }
  /** What reads of budgets, the ledger and spend wait for first: writes a decorator holds back. */
  protected beforeRead(): Promise<void> {
    return Promise.resolve();
  }
  async getBudget(idOrScope: string): Promise<Budget | undefined> {
    await this.beforeRead();
    return this.store.getBudget(idOrScope);
  }
  async listBudgets(filter?: { kind?: ScopeKind; rates?: boolean }): Promise<Budget[]> {
    await this.beforeRead();
    return this.store.listBudgets(filter);
  }
  ensureBudget(scope: Scope, spec?: BudgetSpec): Promise<Budget> {
    return this.store.ensureBudget(scope, spec);
  }
  setCeiling(scope: Scope, ceiling: Micros, by: Actor): Promise<Budget> {
    return this.store.setCeiling(scope, ceiling, by);
  }
  setFrozen(scope: Scope, frozen: boolean, by: Actor): Promise<Budget> {
    return this.store.setFrozen(scope, frozen, by);
  }
  setKill(scope: Scope, by: Actor): Promise<KillSwitch> {
    return this.store.setKill(scope, by);
  }
  liftKill(scope: Scope, by: Actor): Promise<boolean> {
    return this.store.liftKill(scope, by);
  }
  listKills(): Promise<KillSwitch[]> {
    return this.store.listKills();
  }
  replicaBeat(replica: string, at: number): Promise<KillSwitch[]> {
    return this.store.replicaBeat(replica, at);
  }
  replicasSince(since: number): Promise<string[]> {
    return this.store.replicasSince(since);
  }
  replicaLeave(replica: string): Promise<void> {
    return this.store.replicaLeave(replica);
  }
  killedBy(identity: Identity): Promise<KillSwitch | undefined> {
    return this.store.killedBy(identity);
  }
  async listLedger(q?: LedgerQuery): Promise<LedgerEntry[]> {
    await this.beforeRead();
    return this.store.listLedger(q);
  }
  async spend(q: SpendQuery): Promise<SpendRow[]> {
    await this.beforeRead();
    return this.store.spend(q);
  }
  appendAudit(entry: AuditInput): Promise<AuditEntry> {
    return this.store.appendAudit(entry);
  }
  listAudit(q?: AuditQuery): Promise<AuditEntry[]> {
    return this.store.listAudit(q);
  }
  ping(): Promise<void> {
    return this.store.ping();
  }
  isUp(): boolean {
    return this.store.isUp();
  }
  close(): Promise<void> {
    return this.store.close();
  }
}
