import type { Actor } from '../store/port.ts';
import type { JournalEntry, RunFilter, RunRecord, RunSummary } from '../store/runs.ts';
import type { ResumeOptions } from './executor.ts';

/**
 * What the runs offer the layer above them (approvals): read a run, end it, resume it after a
 * decision, and hear when runs change. Approvals know runs only through this; runs know nothing
 * of approvals. `RunHost` implements it.
 */
export interface RunsPort {
  get(id: string): Promise<RunRecord | undefined>;
  /** Throws `RunNotFoundError`. */
  mustGet(id: string): Promise<RunRecord>;
  list(filter: RunFilter): Promise<{ runs: RunSummary[]; next?: string }>;
  journal(id: string): Promise<JournalEntry[]>;
  kill(id: string, by: Actor): Promise<RunRecord>;
  end(id: string, state: 'denied' | 'expired', by: Actor): Promise<RunRecord>;
  /** Applies a resume decision and hands the run to a worker (the runs queue). */
  resume(id: string, opts?: ResumeOptions): Promise<RunRecord>;
  /** The approval timeout the run's pinned workflow version sets, if loaded and set. */
  approvalTimeout(workflow: string, version: string): number | undefined;
  /** Every change of a run's state, as it is persisted. Returns the unsubscribe. */
  onChange(listener: (run: RunSummary) => void): () => void;
  /**
   * Awaited after a worker's stint on a run ended (done, suspended, …) and before its queue job
   * completes, so what must follow a suspension is in place before another worker could see it.
   */
  onStopped(listener: (run: RunRecord) => Promise<void>): () => void;
}
