import type { Identity } from '../identity.ts';
import type { Micros } from '../money.ts';

/**
 * Where runs live between steps: the record (state, limits, XState persisted snapshot) and the
 * journal of completed model/tool calls, so a restored run answers a call that already completed
 * (and was billed) from the journal instead of calling again.
 */

export type RunState = 'running' | 'suspended' | 'done' | 'failed' | 'killed';

export interface RunLimits {
  spend: Micros;
  /** Time box in ms, wall clock since the run started. */
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
  updatedAt: number;
  endedAt?: number;
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

export interface RunStore {
  save(run: RunRecord): Promise<void>;
  get(id: string): Promise<RunRecord | undefined>;
  list(filter?: { workflow?: string; state?: RunState }): Promise<RunRecord[]>;
  journal(runId: string): Promise<JournalEntry[]>;
  appendJournal(runId: string, entry: JournalEntry): Promise<void>;
  close(): Promise<void>;
}

/** Runs in this process only (tests, and a server started without durable runs). */
export class MemoryRunStore implements RunStore {
  private readonly runs = new Map<string, string>();
  private readonly journals = new Map<string, JournalEntry[]>();

  async save(run: RunRecord): Promise<void> {
    this.runs.set(run.id, JSON.stringify(run));
  }
  async get(id: string): Promise<RunRecord | undefined> {
    const s = this.runs.get(id);
    return s === undefined ? undefined : (JSON.parse(s) as RunRecord);
  }
  async list(filter: { workflow?: string; state?: RunState } = {}): Promise<RunRecord[]> {
    return [...this.runs.values()]
      .map((s) => JSON.parse(s) as RunRecord)
      .filter(
        (r) =>
          (!filter.workflow || r.workflow === filter.workflow) && (!filter.state || r.state === filter.state),
      );
  }
  async journal(runId: string): Promise<JournalEntry[]> {
    return structuredClone(this.journals.get(runId) ?? []);
  }
  async appendJournal(runId: string, entry: JournalEntry): Promise<void> {
    this.journals.set(runId, [...(this.journals.get(runId) ?? []), structuredClone(entry)]);
  }
  async close(): Promise<void> {}
}
