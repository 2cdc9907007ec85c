import type { Identity, Scope, ScopeKind } from '../identity.ts';
import type { Micros } from '../money.ts';

/**
 * The money store: budgets, reservations, kill switches, ledger and audit behind one port.
 * Two implementations (embedded SQLite, Redis + Lua) pass one contract suite
 * (test/runtime/store/contract.ts). The three operations that can over-commit money — admit,
 * settle, release — are each one atomic step in each backend: one SQLite transaction, one Lua
 * script. Anything that cannot be decided throws `EnforcementUnavailableError`: fail closed.
 */

/** `day` and `month` are calendar windows in the configured time zone; `total` never resets;
 * a duration such as `24h`, `7d` or `90m` is a rolling window. */
export type WindowSpec = 'day' | 'month' | 'total' | `${number}${'m' | 'h' | 'd'}`;

export type BudgetState = 'active' | 'exhausted' | 'frozen';

/**
 * What a rate limit counts (rates.ts): calls, input tokens, output tokens, or calls in flight. A
 * rate limit is a budget of that unit over a rolling window, admitted with the money.
 */
export type RateUnit = 'requests' | 'input_tokens' | 'output_tokens' | 'concurrent';

export const RATE_UNITS: readonly RateUnit[] = ['requests', 'input_tokens', 'output_tokens', 'concurrent'];

/** One rate limit that applies to a call, and what the call takes of it (AdmitRequest.rates). */
export interface RateCharge {
  /** The scope counted: `team:payments`, `seat:alice`, `key:key_1`, `model:claude-opus-5`, `global`. */
  scope: string;
  unit: RateUnit;
  /** A rolling window: `1m`, `1h`. */
  window: WindowSpec;
  /** Units per window. The request's limit is the one enforced (a changed config applies at once). */
  limit: number;
  /** What this call reserves: 1 request, its estimated input tokens, its max_tokens, 1 concurrent call. */
  amount: number;
}

export interface BudgetSpec {
  ceiling: Micros;
  window: WindowSpec;
  owner?: string;
}

export interface Budget {
  id: string;
  scope: Scope;
  owner: string;
  ceiling: Micros;
  window: WindowSpec;
  /** `exhausted` is derived: spent >= ceiling in the current window. `frozen` is set by an operator. */
  state: BudgetState;
  spent: Micros;
  reserved: Micros;
  /** Start of the current window (ms since epoch); 0 for `total`. */
  windowStart: number;
  /** When the current window ends (ms since epoch); null for `total`. */
  resetsAt: number | null;
  createdAt: number;
  updatedAt: number;
  /** Set on a rate limit's budget only (absent: money, µ$). `ceiling` is then its limit in this unit,
   * `spent` and `reserved` are units, and `scope` is the scope it counts. */
  unit?: RateUnit;
}

export interface Actor {
  actor: string;
  reason: string;
}

export interface Reservation {
  id: string;
  amount: Micros;
  scopes: Scope[];
  createdAt: number;
  expiresAt: number;
}

export interface KillSwitch {
  scope: Scope;
  reason: string;
  actor: string;
  at: number;
}

export type AdmitRefusal =
  | { code: 'killed'; kill: KillSwitch }
  | { code: 'budget_exhausted'; budget: Budget; amount: Micros }
  /** A rate limit's budget (`budget.unit`) has no room for `amount` units; `retryAt`: when the
   * rolling window will have dropped enough (null: only a settle can free it, or never). */
  | { code: 'rate_limited'; budget: Budget; amount: number; retryAt: number | null };

export type Admission = { ok: true; reservation: Reservation } | { ok: false; refusal: AdmitRefusal };

export interface AdmitRequest {
  identity: Identity;
  /** Worst-case cost of the call, reserved on every budget that applies. */
  amount: Micros;
  /** Budgets to create with these specs instead of the configured defaults if missing
   * (a run's spend box: `{ 'run:r_1': { ceiling: 2_000_000, window: 'total' } }`). */
  provision?: Record<Scope, BudgetSpec>;
  /** Labels for the `expired` ledger entry written if the reservation times out
   * (defaults: the reservation id, `model`, empty name). */
  requestId?: string;
  kind?: 'model' | 'tool';
  name?: string;
  /** The provider the call goes to (labels the `expired` entry and its spend row). */
  provider?: string;
  /** Hold the reservation this long instead of the store's reservationTtl (a Message Batch: a day). */
  ttlMs?: number;
  /**
   * A budget lease (runtime/store/leases.ts): reserve more than `amount` so later calls of the same
   * identity are admitted from it in memory — up to `upTo`, and no more than the tightest budget's
   * room divided by `share`, but always at least `amount` (near a ceiling a lease is one call's
   * reservation: per-call admission, exact). The reservation returned holds what was granted.
   */
  lease?: { upTo: Micros; share: number };
  /** Rate limits of the call, checked and reserved in the same atomic step as the money. Settle
   * charges the actual units (rates.ts `unitsOf`), release frees them, expiry charges the reserved. */
  rates?: RateCharge[];
}

/**
 * One step on an open reservation held as a lease, applied with the others of its batch in one
 * atomic step (`MoneyStore.leaseOps`), in this order: charge `entry` (a call admitted from the lease:
 * its cost is spent on the reservation's budgets and taken from what it holds, its ledger entry
 * appended), free `free` of what is left, move the expiry to `expiresAt`, and `close` it (freeing
 * the rest). A closed or unknown lease still gets its entries charged — to the identity's budgets,
 * as settle does — so no cost is lost; an expired one was charged everything it held, which stands.
 */
export interface LeaseOp {
  reservationId: string;
  /** The call `entry` charges, unique within the lease: a step repeated with the same call (a
   * batch retried after a timeout, a journal replayed after a crash) charges it once. */
  call?: string;
  entry?: LedgerInput;
  free?: Micros;
  expiresAt?: number;
  close?: boolean;
}

export interface LeaseOpResult {
  /** The entry written for `entry` (the `expired` entry when the lease had expired). */
  entry?: LedgerEntry;
  /** What the reservation still holds after the step (0 when closed, expired or unknown). */
  held: Micros;
  open: boolean;
  /** The step's call was charged before: nothing was charged or written this time. */
  repeated?: boolean;
}

export interface TokenCounts {
  input: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  cacheRead: number;
  output: number;
}

export const NO_TOKENS: Readonly<TokenCounts> = Object.freeze({
  input: 0,
  cacheWrite5m: 0,
  cacheWrite1h: 0,
  cacheRead: 0,
  output: 0,
});

/** `corrected`: reconciliation's correction of an `expired` entry to what the provider billed
 * (see `MoneyStore.correctExpired`); written by the store only, never by a caller. */
export type Outcome = 'ok' | 'refused' | 'error' | 'expired' | 'corrected';

/** One per model or tool call attempt (and one per expired reservation). Append-only. */
export interface LedgerEntry {
  id: string;
  at: number;
  requestId: string;
  identity: Identity;
  kind: 'model' | 'tool';
  /** Model id or tool name. */
  name: string;
  /**
   * Model calls: the provider that served (or was to serve) the call, by its config name
   * (`anthropic`, `bedrock`, `vertex`, `openai`, …). Absent on entries written before the
   * provider mix and on tool calls; read as `anthropic` for model calls.
   */
  provider?: string;
  tokens: TokenCounts;
  reserved: Micros;
  cost: Micros;
  /** Actual cost above the reservation (an estimate that was wrong), recorded, never lost. */
  overrun: Micros;
  outcome: Outcome;
  /** The refusal code (`budget_exhausted`, ...) or error type, when outcome is not ok. */
  code?: string;
  latencyMs: number;
  prefixHash?: string;
  /** cache read tokens / all input tokens, 0..1. */
  cacheHitRate?: number;
  reservationId?: string;
  /** Tool calls: the size of the result in bytes (UTF-8, before any truncation). */
  bytes?: number;
  /** `corrected` entries: the id of the `expired` entry corrected (same request id, same `at`, so
   * the day's spend carries the correction), when it was written, and what decided it. */
  corrects?: string;
  correctedAt?: number;
  correctedBy?: string;
}

/** What a caller hands to settle/release/append; the store fills in id, at and overrun. */
export type LedgerInput = Omit<LedgerEntry, 'id' | 'at' | 'overrun'> & { id?: string; at?: number };

export interface LedgerQuery {
  scope?: Scope;
  run?: string;
  kind?: 'model' | 'tool';
  outcome?: Outcome;
  since?: number;
  until?: number;
  limit?: number;
}

export type SpendDimension = 'team' | 'env' | 'seat' | 'workflow' | 'model' | 'provider' | 'day';

/** Every spend dimension, in the order views list them. */
export const SPEND_DIMENSIONS: readonly SpendDimension[] = [
  'team',
  'env',
  'seat',
  'workflow',
  'model',
  'provider',
  'day',
];

export interface SpendQuery {
  by: SpendDimension;
  since: number;
  until: number;
  /** Only entries under this scope (e.g. `team:payments`). */
  scope?: Scope;
  /** Only model calls this provider served (config name; entries without one are anthropic's). */
  provider?: string;
}

export interface SpendRow {
  key: string;
  /** Includes the corrections of expired charges (below). */
  cost: Micros;
  calls: number;
  tokens: TokenCounts;
  /** Expired worst-case charges reconciliation corrected in this group, and the sum of the
   * corrections (µ$, negative when the worst cases were more than the bill). */
  corrections: number;
  correctedCost: Micros;
}

export interface AuditEntry {
  id: string;
  at: number;
  actor: string;
  action: string;
  target: string;
  before?: unknown;
  after?: unknown;
  reason: string;
}

export type AuditInput = Omit<AuditEntry, 'id' | 'at'>;

export interface AuditQuery {
  target?: string;
  since?: number;
  until?: number;
  limit?: number;
}

/** Reconciliation's figure for the request of one `expired` ledger entry. */
export interface ExpiredCorrection {
  /** The `expired` entry, as the ledger holds it: its id and time find it. */
  expired: Pick<LedgerEntry, 'id' | 'at'>;
  /** What the provider billed for the entry's request (0: the call never reached it). */
  billed: Micros;
  /** What decided it (a reconciliation id), kept on the correction as `correctedBy`. */
  source: string;
}

export interface CorrectionResult {
  /** The correction entry: cost = billed − charged (negative when the worst case was higher). */
  entry: LedgerEntry;
  /** False when the request id already had its correction (returned, nothing changed). */
  created: boolean;
}

export interface MoneyStore {
  readonly backend: 'embedded' | 'redis';

  /** Kill switches, missing budgets and the all-or-nothing reservation, in one atomic step. */
  admit(req: AdmitRequest): Promise<Admission>;
  /** Replaces the reservation by the actual cost (entry.cost) and appends the ledger entry.
   * A reservation closes once: settling or releasing it again — or after it expired, when it was
   * charged its worst case — returns the entry that closed it and changes nothing (safe to retry).
   * An unknown reservation is still charged, to the budgets of entry.identity, so no cost is lost. */
  settle(reservationId: string, entry: LedgerInput): Promise<LedgerEntry>;
  /** Frees a reservation for a call that was never billed, and appends its ledger entry
   * (entry.cost must be 0: a billed call is settled). */
  release(reservationId: string, entry: LedgerInput): Promise<LedgerEntry>;
  /** Closes reservations past their expiry, each charged its reserved worst case (the call's outcome
   * is unknown: never 0) and recorded as an `expired` ledger entry with that cost. */
  sweepExpired(): Promise<number>;
  /** Expires at once every open reservation that holds `scope` (a run adopted after its process
   * died: the dead process's calls are charged their worst case now, not after the TTL). */
  expireNow(scope: Scope): Promise<number>;
  /**
   * Corrects an `expired` entry (charged its reserved worst case) to what the provider billed, in
   * one atomic step: one `corrected` ledger entry (cost = billed − charged, same request id and
   * `at`) and the difference credited or debited on each of the identity's budgets whose current
   * window still holds the original charge (a window that closed is not reopened). Once per
   * request id: a second call, here or on another replica, returns the first correction.
   */
  correctExpired(c: ExpiredCorrection): Promise<CorrectionResult>;
  /** Appends an entry that holds no reservation (a refusal before or at admission). */
  appendLedger(entry: LedgerInput): Promise<LedgerEntry>;
  /** Applies lease steps in order, all in one atomic step (see LeaseOp). */
  leaseOps(ops: LeaseOp[]): Promise<LeaseOpResult[]>;

  getBudget(idOrScope: string): Promise<Budget | undefined>;
  /** Money budgets; with `rates: true` the rate limits' budgets instead (each with its `unit`). */
  listBudgets(filter?: { kind?: ScopeKind; rates?: boolean }): Promise<Budget[]>;
  /** Creates the budget from the defaults (or spec) if missing; returns it either way. */
  ensureBudget(scope: Scope, spec?: BudgetSpec): Promise<Budget>;
  setCeiling(scope: Scope, ceiling: Micros, by: Actor): Promise<Budget>;
  setFrozen(scope: Scope, frozen: boolean, by: Actor): Promise<Budget>;

  setKill(scope: Scope, by: Actor): Promise<KillSwitch>;
  liftKill(scope: Scope, by: Actor): Promise<boolean>;
  listKills(): Promise<KillSwitch[]>;
  /**
   * The budget-lease replicas (leases.ts), kept in the store so that liveness costs one step per
   * replica per beat rather than a message from every replica to every other: `replica` is alive at
   * `at` (replicas silent for a minute are forgotten), and the kill switches are returned
   * (listKills) in the same step — a replica beats each time it reads them. `replicasSince` lists
   * those alive since; `replicaLeave` drops one at once.
   */
  replicaBeat(replica: string, at: number): Promise<KillSwitch[]>;
  replicasSince(since: number): Promise<string[]>;
  replicaLeave(replica: string): Promise<void>;
  /** The first kill switch covering the identity, widest scope first. */
  killedBy(identity: Identity): Promise<KillSwitch | undefined>;

  listLedger(q?: LedgerQuery): Promise<LedgerEntry[]>;
  spend(q: SpendQuery): Promise<SpendRow[]>;

  appendAudit(entry: AuditInput): Promise<AuditEntry>;
  listAudit(q?: AuditQuery): Promise<AuditEntry[]>;

  /** Throws EnforcementUnavailableError if the store cannot be read and written. */
  ping(): Promise<void>;
  /** False once the store is known to be unreachable (its connection dropped, its file closed):
   * budget leases stop admitting from memory, since no settlement could be written. */
  isUp(): boolean;
  close(): Promise<void>;
}

/** Raised by any store operation that cannot be carried out: callers refuse with 503. */
export class EnforcementUnavailableError extends Error {
  readonly code = 'enforcement_unavailable';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EnforcementUnavailableError';
  }
}

/** An operator action on something that does not exist or cannot take it. */
export class StoreInputError extends Error {
  constructor(
    readonly code: 'not_found' | 'invalid',
    message: string,
  ) {
    super(message);
    this.name = 'StoreInputError';
  }
}

/** Store construction options shared by both backends. */
export interface MoneyStoreOptions {
  /** Default budget per scope kind, used the first time a scope is seen. */
  defaults: Record<ScopeKind, BudgetSpec>;
  /** IANA zone for calendar windows (`day`, `month`). */
  timeZone: string;
  /** A reservation not settled or released within this many ms is released and recorded. */
  reservationTtlMs: number;
  /** Injected clock (ms since epoch); tests move it across midnight, month ends and DST. */
  now?: () => number;
}
