import { createHash } from 'node:crypto';
import type { AnyActorRef } from 'xstate';
import type { Runtime } from '../runtime.ts';
import type { JournalEntry, RunRecord, RunState, RunStore } from '../store/runs.ts';
import type { Workflow } from './define.ts';
import type { FrozenPrefix } from './prompt.ts';

/** A run this process is running: its record, machine, journal and the call in flight. */
export interface LiveRun {
  record: RunRecord;
  workflow: Workflow;
  prefix: FrozenPrefix;
  journal: Map<string, JournalEntry>;
  actor?: AnyActorRef;
  halted: boolean;
  /** Aborts the call in flight (kill; a tool call at the time box). */
  controller?: AbortController;
  inflight?: Promise<unknown>;
  inflightKind?: 'model' | 'tool';
  timer?: NodeJS.Timeout;
  saving: Promise<void>;
  settled: Promise<void>;
  settle(): void;
}

export const never = <T>() => new Promise<T>(() => {});

/**
 * How a live run stops and records its steps: saving after every step, halting (suspend, kill,
 * hand back) with the in-flight call let finish or aborted, finishing (final state, lease let
 * go), and journaling each completed call before the machine sees its result. The executor owns
 * the live runs; the model and tool actors (actors.ts) stop a run through this.
 */
export class RunControl {
  constructor(
    readonly rt: Runtime,
    readonly runs: RunStore,
    private readonly owner: string,
    /** Forgets a run that stopped running here. */
    private readonly forget: (id: string) => void,
    /** Tells the listeners a run changed state. */
    private readonly emit: (record: RunRecord) => void,
  ) {}

  save(run: LiveRun): void {
    run.record.updatedAt = this.rt.now();
    const copy = structuredClone(run.record);
    run.saving = run.saving
      .then(() => this.runs.save(copy))
      .catch((err) => this.rt.log.error('could not save a run', { error: err, run: copy.id }));
  }

  finish(
    run: LiveRun,
    state: RunState,
    extra: { reason?: string; error?: string; output?: unknown; detail?: Record<string, unknown> },
  ): void {
    run.halted = true;
    clearTimeout(run.timer);
    const handBack = state === 'running';
    if (extra.reason === 'lease_lost') {
      // Another process holds the run now: whatever this one has is stale, write nothing.
      void Promise.allSettled([run.inflight, run.saving]).then(() => {
        this.forget(run.record.id);
        run.settle();
      });
      return;
    }
    if (!handBack) {
      Object.assign(run.record, extra, { state });
      if (state === 'suspended') run.record.suspensions++;
      else run.record.endedAt = this.rt.now();
    }
    this.save(run);
    void Promise.allSettled([run.inflight, run.saving]).then(async () => {
      await this.runs.unclaim(run.record.id, this.owner).catch(() => {});
      this.forget(run.record.id);
      if (!handBack) this.emit(run.record);
      run.settle();
    });
  }

  /** Stops the run where it is: the in-flight call aborted, the pending invocation kept in the
   * saved snapshot (a resume re-runs it). Returns a promise that never settles, for the actor. */
  halt<T>(run: LiveRun, state: RunState, reason: string, detail: Record<string, unknown> = {}): Promise<T> {
    if (run.halted) return never();
    run.halted = true;
    clearTimeout(run.timer);
    if (run.actor) run.record.snapshot = run.actor.getPersistedSnapshot();
    // A model call in flight at the time box or a hand-back is let finish (bounded by the provider
    // timeout) and journaled: aborting it would leave a call the provider bills and we never
    // learn the usage of, and the resume would make (and pay for) it again. A kill aborts it.
    const letFinish = run.inflightKind === 'model' && (state === 'suspended' || state === 'running');
    if (!letFinish) run.controller?.abort(reason);
    run.actor?.stop();
    const inflight = run.inflight;
    void (async () => {
      await inflight?.catch(() => {});
      const numbers = state === 'running' ? {} : await this.numbers(run).catch(() => ({}));
      this.finish(run, state, { reason, detail: { ...numbers, ...detail } });
    })();
    return never();
  }

  private async numbers(run: LiveRun): Promise<Record<string, unknown>> {
    const budget = await this.rt.store.getBudget(`run:${run.record.id}`);
    return {
      spent: budget?.spent ?? 0,
      spendBox: run.record.limits.spend,
      steps: run.record.steps,
      stepCap: run.record.limits.steps,
      elapsedMs: this.rt.now() - run.record.clockStart,
      timeBox: run.record.limits.time,
    };
  }

  /** A limit the next call would pass, if any. The spend box is checked by admission itself. */
  limitHit(run: LiveRun): string | undefined {
    const r = run.record;
    if (r.steps >= r.limits.steps) return 'step_cap';
    if (this.rt.now() - r.clockStart >= r.limits.time) return 'time_box';
    return undefined;
  }

  async journaled(run: LiveRun, entry: Omit<JournalEntry, 'at'>): Promise<void> {
    const full = { ...entry, at: this.rt.now() };
    run.journal.set(entry.key, full);
    run.record.steps++;
    // Written before the machine sees the result: a crash after this never repeats the call.
    await this.runs.appendJournal(run.record.id, full);
  }

  failDrift(run: LiveRun, message: string | undefined): Promise<never> {
    this.finish(run, 'failed', { reason: 'prefix_drift', error: message });
    run.actor?.stop();
    return never();
  }
}

/** Content address of a call. The agent loop's inputs are unique per call (the conversation
 * grows; tool calls carry the model's tool_use id); a custom machine that makes the very same
 * call twice gets the first answer again. */
export function journalKey(kind: 'model' | 'tool', input: unknown): string {
  return `${kind}:${createHash('sha256').update(JSON.stringify(input)).digest('hex').slice(0, 32)}`;
}

/** A run's spend box, as the `run:<id>` budget provisioned on its first call. */
export function runBudget(record: RunRecord) {
  return { ceiling: record.limits.spend, window: 'total' as const, owner: `run ${record.id}` };
}
