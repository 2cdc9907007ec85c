import type { Identity } from '../identity.ts';
import type { Micros } from '../money.ts';
import type { AuditInput } from './port.ts';

/**
 * Approval items: one per suspension of a run (time box, spend box, step cap, budget, approval
 * gate) or of an external agent session (session time box). A human decides each one once:
 * approve, extend, deny or kill. Stores: `SqliteApprovalStore` (embedded) and
 * `BullApprovalStore` (Redis: the item is a BullMQ job on the `approvals` queue, delayed until
 * it expires); one contract suite (test/approvals/store.contract.ts) holds both to this.
 */

export type ApprovalState = 'pending' | 'approved' | 'extended' | 'denied' | 'killed' | 'expired';
export const APPROVAL_STATES: readonly ApprovalState[] = [
  'pending',
  'approved',
  'extended',
  'denied',
  'killed',
  'expired',
];
export type DecisionAction = 'approve' | 'extend' | 'deny' | 'kill';
export const DECISION_STATE: Record<DecisionAction, ApprovalState> = {
  approve: 'approved',
  extend: 'extended',
  deny: 'denied',
  kill: 'killed',
};

export interface Decision {
  action: DecisionAction | 'expire';
  actor: string;
  reason: string;
  /** For extend: how much to add to the spend box (µ$) and/or the time box (ms). */
  addSpend?: Micros;
  addTime?: number;
  at: number;
}

export interface ApprovalItem {
  /** `<runId>.<suspension number>` (or `<session key>.<n>`): the same suspension never makes two. */
  id: string;
  kind: 'run' | 'session';
  runId: string;
  workflow: string;
  version: string;
  /** Who started the run (team/env/seat), plus workflow and run. */
  identity: Identity;
  /** `time_box`, `spend_box`, `step_cap`, `budget_exhausted`, `approval_required`, `session_time_box`. */
  reason: string;
  /** Why it stopped, in words with the numbers: "time box: ran 10m of 10m". */
  summary: string;
  /** The numbers behind it (spent, spendBox, elapsedMs, timeBox, steps, stepCap, tool, input …). */
  detail: Record<string, unknown>;
  /** What a human needs to decide: spend by model (µ$), cache hit rate, the last messages. */
  context: {
    spendByModel: Record<string, Micros>;
    spent: Micros;
    elapsedMs: number;
    steps: number;
    cacheHitRate?: number;
    lastMessages: { role: string; text: string }[];
  };
  state: ApprovalState;
  createdAt: number;
  expiresAt: number;
  decision?: Decision;
}

export interface ApprovalFilter {
  state?: ApprovalState;
  workflow?: string;
  team?: string;
  reason?: string;
  runId?: string;
  /** Newest first; default 50, max 1,000. */
  limit?: number;
  cursor?: string;
}

/** A decision on an item that is no longer pending (decided or expired): a 409. */
export class ApprovalConflictError extends Error {
  readonly code = 'conflict';
  constructor(readonly item: ApprovalItem) {
    super(
      `approval ${item.id} is already ${item.state}${
        item.decision ? ` (${item.decision.action} by ${item.decision.actor})` : ''
      }: nothing to decide`,
    );
    this.name = 'ApprovalConflictError';
  }
}

export class ApprovalNotFoundError extends Error {
  readonly code = 'not_found';
  constructor(id: string) {
    super(`no approval ${id}`);
    this.name = 'ApprovalNotFoundError';
  }
}

/** An item changed (opened, decided, expired), seen by every process sharing the store. */
export interface ApprovalChange {
  id: string;
  state: ApprovalState;
}

export interface ApprovalStore {
  readonly backend: 'embedded' | 'redis';
  /** Opens the item unless one with its id exists (idempotent): returns the stored one. */
  open(item: ApprovalItem): Promise<{ item: ApprovalItem; created: boolean }>;
  get(id: string): Promise<ApprovalItem | undefined>;
  list(filter?: ApprovalFilter): Promise<{ items: ApprovalItem[]; next?: string }>;
  counts(): Promise<Record<ApprovalState, number>>;
  /**
   * Moves a pending item to the decision's state, atomically: of two decisions racing on one
   * item exactly one wins; the other (and any later one) gets `ApprovalConflictError`.
   * `expire` succeeds only on an item still pending.
   */
  decide(id: string, decision: Decision): Promise<ApprovalItem>;
  /**
   * Undoes a decision that could not be applied: the item is pending again (its expiry
   * re-armed) if it still carries exactly this decision; otherwise nothing changes. With `audit`,
   * that entry is appended to the money store's audit log in the same atomic step, and only if the
   * item was reopened: the trail never says a decision failed while the item stays decided, and
   * never misses one that left it pending. Returns the item as stored afterwards.
   */
  reopen(id: string, decision: Decision, audit?: AuditInput): Promise<ApprovalItem | undefined>;
  /**
   * Calls `onDue(id)` once for each pending item whose `expiresAt` has passed, in one of the
   * processes sharing the store (Redis: BullMQ delayed jobs on the `approvals` queue; embedded:
   * timers plus a sweep at start). The handler calls `decide(id, {action:'expire'})`.
   */
  startExpiry(onDue: (id: string) => Promise<void>): Promise<void>;
  /** Live changes from any process (Redis: BullMQ QueueEvents; embedded: in-process). */
  subscribe(listener: (change: ApprovalChange) => void): () => void;
  close(): Promise<void>;
}

/** The same decision (who, what, when and how much): what `reopen` compares against. */
export function sameDecision(a: Decision | undefined, b: Decision): boolean {
  return (
    a !== undefined &&
    a.action === b.action &&
    a.actor === b.actor &&
    a.at === b.at &&
    a.reason === b.reason &&
    (a.addSpend ?? 0) === (b.addSpend ?? 0) &&
    (a.addTime ?? 0) === (b.addTime ?? 0)
  );
}

/** "10m" / "1h 5m" / "45s" / "0.3s" for a number of ms, for item summaries. */
export function formatDuration(ms: number): string {
  // Short boxes (tests, demos) keep a decimal: "0.3s of 0.3s", not "0s of 0s".
  if (ms < 10_000) return `${Number((Math.max(0, ms) / 1000).toFixed(1))}s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m ${s % 60}s` : `${m}m`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
}

/** A session of an outside agent and its time box (see sessions.ts). */
export interface SessionState {
  id: string;
  keyId: string;
  identity: Identity;
  startedAt: number;
  /** When the current box started counting (the session start, or the last approval). */
  clockStart: number;
  lastAt: number;
  boxMs: number;
  /** `active`, `waiting` (for a human: its item is `${id}.${suspensions}`), or `refused`. */
  state: 'active' | 'waiting' | 'refused';
  suspensions: number;
}

/** Where agent sessions live: the runtime's backend (runtime/backends/{embedded,redis}/sessions.ts). */
export interface SessionStore {
  get(id: string): Promise<SessionState | undefined>;
  put(s: SessionState): Promise<void>;
  close(): Promise<void>;
}
