import type { KeysStore } from '../auth/keys.ts';
import type { Broadcast } from '../broadcast.ts';
import type { AlarmStore } from '../events.ts';
import type { ReconcileSchedule, ScheduledReconciler, ScheduleOptions } from '../reconcile/schedule.ts';
import type { ReconStore } from '../reconcile/store.ts';
import type { ApprovalStore, SessionStore } from '../store/approvals.ts';
import type { BatchStore } from '../store/batches.ts';
import type { MoneyStore } from '../store/port.ts';
import type { RunQueue, RunWork } from '../store/run-queue.ts';
import type { RunStore } from '../store/runs.ts';

/**
 * Everything a kind of backend holds, opened by `openBackend` (open.ts), the one place that
 * chooses embedded or Redis. Each port's interface lives with the feature that uses it (money:
 * store/port.ts; runs: workflows/run-store.ts and workflows/queue.ts; approvals and agent
 * sessions: store/approvals.ts; keys: auth/keys.ts; alarms: events.ts; reconciliations:
 * reconcile/store.ts; broadcast: broadcast.ts); web sessions are below. Each is held to a contract
 * suite run against both kinds (test/runtime/store, test/approvals, test/runtime/backends).
 *
 * The ports every process needs (money, keys, alarms, broadcast, reconciliations) are opened with
 * the backend; the others on first use, so a CLI command never opens BullMQ queues it does not use.
 * A port's own `close()` may be called by the feature that holds it; `close()` here closes every
 * port that was opened, then the backend's connections (closing twice is harmless).
 */
/** The kinds of backend (config `store.backend`; each opened by one line of open.ts). */
export type BackendKind = 'embedded' | 'redis';

export interface Backend {
  readonly kind: BackendKind;
  /** Budgets, reservations, ledger, audit log, kill switches. */
  readonly money: MoneyStore;
  readonly keys: KeysStore;
  readonly alarms: AlarmStore;
  /** Messages to every process sharing the backend (embedded: this process's listeners). */
  readonly broadcast: Broadcast;
  readonly reconciliations: ReconStore;
  /** Run records and their journals (opened on first use). */
  readonly runs: RunStore;
  /** Approval items and their expiry (opened on first use). */
  readonly approvals: ApprovalStore;
  /** Session time boxes of outside agents (opened on first use). */
  readonly sessions: SessionStore;
  /** Message Batches between creation and results (opened on first use). */
  readonly batches: BatchStore;
  /** Inbox sessions, failed logins and the session secret (opened on first use). */
  readonly webSessions: WebSessionStore;
  /** A new `runs` queue (embedded: in this process; Redis: BullMQ), closed by whoever opened it. */
  runQueue(opts: RunQueueOptions): RunQueue;
  /** Starts the daily reconciliation job (embedded: a timer; Redis: a BullMQ job scheduler). */
  reconcileSchedule(rec: ScheduledReconciler, opts: ScheduleOptions): Promise<ReconcileSchedule>;
  close(): Promise<void>;
}

export interface RunQueueOptions {
  /** Handler errors (with the work) and connection errors (without). */
  onError?: (err: unknown, work?: RunWork) => void;
  /** Redis: how long a worker's lock on a job lasts (renewed every `lockMs / 2`). */
  lockMs?: number;
  /** Redis: how often a worker looks for jobs whose lock expired (their worker died). */
  stalledMs?: number;
}

/**
 * Where inbox sessions and failed-login counts live: the store's own backend, so every replica
 * sees a logout at once. Embedded: two tables in the data folder's chokepoint.db. Redis: one hash
 * per session and per address under the configured prefix, each expiring on its own.
 * A session is kept under the SHA-256 of its cookie value: the table never holds a live cookie.
 */
export interface WebSessionStore {
  /** Stores a new session, unused for at most `idleMs` before it ends. */
  put(s: SessionRecord, idleMs: number): Promise<void>;
  get(id: string): Promise<SessionRecord | undefined>;
  /** Records activity; `idleMs` is how long the session may now sit unused. */
  touch(id: string, at: number, idleMs: number): Promise<void>;
  delete(id: string): Promise<void>;
  failures(address: string): Promise<LoginFailures | undefined>;
  setFailures(address: string, f: LoginFailures, keepMs: number): Promise<void>;
  clearFailures(address: string): Promise<void>;
  /**
   * The deployment's session secret, shared by every replica: the stored one, or `fresh` stored
   * now if there is none (embedded: a 0600 file in the data folder; Redis: a key, set once).
   */
  secret(fresh: string): Promise<string>;
  close(): Promise<void>;
}

export interface SessionRecord {
  /** SHA-256 (hex) of the cookie value. */
  id: string;
  /** SHA-256 of the operator token that logged in (removing the token ends the session). */
  tokenHash: string;
  createdAt: number;
  lastAt: number;
  /** createdAt + the absolute lifetime. */
  expiresAt: number;
}

export interface LoginFailures {
  count: number;
  firstAt: number;
  lastAt: number;
}
