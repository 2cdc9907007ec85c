import type { Identity } from '../identity.ts';
import type { Micros } from '../money.ts';

/**
 * Where runs live between steps: the record (state, limits, XState persisted snapshot) and the
 * journal of completed model/tool calls, so a restored run answers a call that already completed
 * (and was billed) from the journal instead of calling again. Implementations: `MemoryRunStore`
 * (tests), `SqliteRunStore` (embedded, same file as the money store) and `RedisRunStore`; one
 * contract suite (test/runtime/workflows/run-store.contract.ts) holds them to the same behaviour.
 */

export type RunState = 'running' | 'suspended' | 'done' | 'failed' | 'killed' | 'denied' | 'expired';
export const RUN_STATES: readonly RunState[] = [
  'running',
  'suspended',
  'done',
  'failed',
  'killed',
  'denied',
  'expired',
];
/** States a run never leaves. */
export const FINAL_STATES: ReadonlySet<RunState> = new Set(['done', 'failed', 'killed', 'denied', 'expired']);

export interface RunLimits {
  spend: Micros;
  /** Time box in ms, wall clock since the run started or was last approved (`clockStart`). */
  time: number;
  /** Most model + tool calls. */
  steps: number;
}

export interface RunRecord {
  id: string;
  workflow: string;
  version: string;
  identity: Identity;
  input: unknown;
  state: RunState;
  /** Why the run is not running: `spend_box`, `time_box`, `step_cap`, `budget_exhausted`,
   * `approval_required`, `killed`, `kill_switch`, `prefix_drift`, `error`. */
  reason?: string;
  /** The numbers behind the reason (spent, ceiling, steps, elapsed, who killed it …). */
  detail?: Record<string, unknown>;
  limits: RunLimits;
  /** Completed model + tool calls. */
  steps: number;
  startedAt: number;
  /** Where the time box counts from: the start, or the last approval. */
  clockStart: number;
  updatedAt: number;
  endedAt?: number;
  /** How many times the run has suspended; the current suspension is number `suspensions`. */
  suspensions: number;
  /** Journal keys of gated tool calls a human approved (or denied: `deny:<key>`). */
  grants: string[];
  /** `actor.getPersistedSnapshot()` after the last step. */
  snapshot?: unknown;
  output?: unknown;
  error?: string;
}

export interface JournalEntry {
  /** Content address of the call: kind + its input. */
  key: string;
  kind: 'model' | 'tool';
  name: string;
  result: unknown;
  ledgerId?: string;
  at: number;
}

export interface RunFilter {
  workflow?: string;
  state?: RunState;
  team?: string;
  /** At most this many, newest started first (default 50, max 1,000). */
  limit?: number;
  /** The `next` cursor of the previous page. */
  cursor?: string;
}

/** A run without its snapshot and input (what lists show). */
export type RunSummary = Omit<RunRecord, 'snapshot' | 'input'>;

export interface RunStore {
  /** Inserts or replaces the record (atomically: a reader sees the old or the new one). */
  save(run: RunRecord): Promise<void>;
  get(id: string): Promise<RunRecord | undefined>;
  /** Newest started first; `next` is set when there may be more. */
  list(filter?: RunFilter): Promise<{ runs: RunSummary[]; next?: string }>;
  /** Count by state (for metrics and the inbox). */
  counts(): Promise<Record<RunState, number>>;
  /** The run's completed calls, in the order they were appended. */
  journal(runId: string): Promise<JournalEntry[]>;
  /** Appends a completed call; appending the same key twice keeps the first (idempotent). */
  appendJournal(runId: string, entry: JournalEntry): Promise<void>;
  /**
   * Takes the run for `owner` until `now + leaseMs`: succeeds when nobody holds it, `owner`
   * already does, or the holder's lease has lapsed. Atomic across processes sharing the store.
   */
  claim(runId: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Extends the leases `owner` holds on these runs; returns the ids it no longer holds. */
  renew(owner: string, runIds: string[], leaseMs: number): Promise<string[]>;
  /** Lets go of a run (it ended or was handed back). Only the holder can. */
  unclaim(runId: string, owner: string): Promise<void>;
  /**
   * Records the prefix hash of a workflow version the first time it is seen and returns the
   * recorded one (so a changed prompt under an old version number is caught across restarts).
   */
  recordPrefix(workflow: string, version: string, hash: string): Promise<string>;
  /** Bytes the store holds for one run (record + journal), for the store-size benchmark. */
  sizeOf(runId: string): Promise<number>;
  close(): Promise<void>;
}

const MAX_LIMIT = 1_000;
export const listLimit = (n?: number) => Math.min(Math.max(1, Math.floor(n ?? 50)), MAX_LIMIT);

export function summary(r: RunRecord): RunSummary {
  const { snapshot: _s, input: _i, ...rest } = r;
  return rest;
}

/** Runs in this process only (tests, and a server started without durable runs). */
export class MemoryRunStore implements RunStore {
  private readonly runs = new Map<string, string>();
  private readonly journals = new Map<string, JournalEntry[]>();
  private readonly leases = new Map<string, { owner: string; until: number }>();
  private readonly prefixes = new Map<string, string>();

  constructor(private readonly now: () => number = Date.now) {}

  async save(run: RunRecord): Promise<void> {
    this.runs.set(run.id, JSON.stringify(run));
  }
  async get(id: string): Promise<RunRecord | undefined> {
    const s = this.runs.get(id);
    return s === undefined ? undefined : (JSON.parse(s) as RunRecord);
  }
  async list(filter: RunFilter = {}): Promise<{ runs: RunSummary[]; next?: string }> {
    const limit = listLimit(filter.limit);
    const offset = filter.cursor ? Number(filter.cursor) : 0;
    const all = [...this.runs.values()]
      .map((s) => JSON.parse(s) as RunRecord)
      .filter(
        (r) =>
          (!filter.workflow || r.workflow === filter.workflow) &&
          (!filter.state || r.state === filter.state) &&
          (!filter.team || r.identity.team === filter.team),
      )
      .sort((a, b) => b.startedAt - a.startedAt || b.id.localeCompare(a.id));
    const page = all.slice(offset, offset + limit).map(summary);
    return offset + limit < all.length ? { runs: page, next: String(offset + limit) } : { runs: page };
  }
  async counts(): Promise<Record<RunState, number>> {
    const c = Object.fromEntries(RUN_STATES.map((s) => [s, 0])) as Record<RunState, number>;
    for (const s of this.runs.values()) c[(JSON.parse(s) as RunRecord).state]++;
    return c;
  }
  async journal(runId: string): Promise<JournalEntry[]> {
    return structuredClone(this.journals.get(runId) ?? []);
  }
  async appendJournal(runId: string, entry: JournalEntry): Promise<void> {
    const list = this.journals.get(runId) ?? [];
    if (list.some((e) => e.key === entry.key)) return;
    this.journals.set(runId, [...list, structuredClone(entry)]);
  }
  async claim(runId: string, owner: string, leaseMs: number): Promise<boolean> {
    const l = this.leases.get(runId);
    const now = this.now();
    if (l && l.owner !== owner && l.until > now) return false;
    this.leases.set(runId, { owner, until: now + leaseMs });
    return true;
  }
  async renew(owner: string, runIds: string[], leaseMs: number): Promise<string[]> {
    const lost: string[] = [];
    for (const id of runIds) {
      const l = this.leases.get(id);
      if (l?.owner === owner) l.until = this.now() + leaseMs;
      else lost.push(id);
    }
    return lost;
  }
  async unclaim(runId: string, owner: string): Promise<void> {
    if (this.leases.get(runId)?.owner === owner) this.leases.delete(runId);
  }
  async recordPrefix(workflow: string, version: string, hash: string): Promise<string> {
    const key = `${workflow}@${version}`;
    const known = this.prefixes.get(key);
    if (known !== undefined) return known;
    this.prefixes.set(key, hash);
    return hash;
  }
  async sizeOf(runId: string): Promise<number> {
    return (
      Buffer.byteLength(this.runs.get(runId) ?? '') +
      Buffer.byteLength(JSON.stringify(this.journals.get(runId) ?? []))
    );
  }
  async close(): Promise<void> {}
}
