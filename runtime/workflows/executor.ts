import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { type AnyActorRef, createActor, fromPromise } from 'xstate';
import { modelCall, type Sink } from '../gateway/call.ts';
import { budgetExhausted } from '../gateway/refusal.ts';
import { newId } from '../ids.ts';
import { tryParseUsd } from '../money.ts';
import type { Runtime } from '../runtime.ts';
import {
  type Actor,
  type Admission,
  type AdmitRefusal,
  type LedgerInput,
  NO_TOKENS,
  type Reservation,
} from '../store/port.ts';
import type {
  Block,
  LocalTool,
  McpToolBinding,
  ModelInput,
  ModelOutput,
  ToolInput,
  ToolOutput,
  ToolUse,
  Workflow,
} from './define.ts';
import { truncateResult } from './mcp-tools.ts';
import {
  assemble,
  type FrozenPrefix,
  freezePrefix,
  PrefixDriftError,
  PrefixRegistry,
  refuseOwnPrefix,
} from './prompt.ts';
import {
  FINAL_STATES,
  type JournalEntry,
  MemoryRunStore,
  type RunFilter,
  type RunLimits,
  type RunRecord,
  type RunState,
  type RunStore,
  type RunSummary,
  summary,
} from './run-store.ts';

/**
 * The run executor: hosts a workflow version's machine as an XState actor and provides its
 * `model` and `tool` actors. Every model call goes through `modelCall` (identity with the run,
 * the run's spend box provisioned as the `run:<id>` budget, admission, ledger); every tool call
 * is checked against kill switches and approval gates and written to the ledger. Limits belong
 * to the runtime: hitting the spend box, the time box or the step cap SUSPENDS the run (reason
 * and numbers recorded; the call that would pass the limit is not made).
 *
 * Durability: after every step the persisted snapshot is saved, and every completed call is
 * journaled (with its ledger id) BEFORE the machine sees its result. A restored machine re-runs
 * the invocation that was pending; the journal answers it when it had completed, so a restart
 * never calls (or bills) twice. A run is held by one executor at a time through a lease in the
 * run store; a process that dies lets its leases lapse and another (or the restarted one)
 * recovers the run from its last step.
 */

export class RunInputError extends Error {
  readonly code = 'invalid_request';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`input.${field}: ${message}`);
    this.name = 'RunInputError';
  }
}

/** A run operation that does not fit the run's state (resume a finished run, …): a 409. */
export class RunStateError extends Error {
  readonly code = 'conflict';
  constructor(message: string) {
    super(message);
    this.name = 'RunStateError';
  }
}

export class RunNotFoundError extends Error {
  readonly code = 'not_found';
  constructor(id: string) {
    super(`no run ${id}`);
    this.name = 'RunNotFoundError';
  }
}

export interface Starter {
  team: string;
  env: string;
  seat: string;
}

export interface ExecutorOptions {
  runs?: RunStore;
  /** This process's name on leases (default host:pid:random). */
  owner?: string;
  /** How long a lease lasts without renewal (default 30 s); renewed every third of it. */
  leaseMs?: number;
  /** How often live runs are checked against kill switches flipped elsewhere (default 1 s). */
  killPollMs?: number;
}

/** How a suspended run is resumed. */
export interface ResumeOptions {
  /** New limits (absolute), e.g. a wider spend box. */
  limits?: Partial<RunLimits>;
  /** For an approval gate: run the tool call (`approve`) or tell the model it was refused. */
  gate?: 'approve' | 'deny';
  /** Restart the time box clock (approving a time box). */
  restartClock?: boolean;
  by?: Actor;
}

interface LiveRun {
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

const never = <T>() => new Promise<T>(() => {});

/** The broadcast topic of run changes. */
const RUN_TOPIC = 'runs';

export class WorkflowExecutor {
  private readonly live = new Map<string, LiveRun>();
  readonly prefixes = new PrefixRegistry();
  readonly runs: RunStore;
  readonly owner: string;
  /** `run` (a RunSummary, after every change of state of a run this process works on). */
  readonly events = new EventEmitter();
  /**
   * `run` for live views (`/api/events`, MCP): on the embedded backend the same as `events`; on
   * Redis the changes of every process's runs, heard through `rt.broadcast`.
   */
  readonly views = new EventEmitter();
  private readonly leaseMs: number;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly killPoll: NodeJS.Timeout;
  private closed = false;
  private unsubscribe: Promise<() => void> | undefined;

  constructor(
    private readonly rt: Runtime,
    opts: ExecutorOptions | RunStore = {},
  ) {
    const o: ExecutorOptions = 'save' in opts ? { runs: opts } : opts;
    this.runs = o.runs ?? new MemoryRunStore(rt.now);
    this.owner = o.owner ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.leaseMs = o.leaseMs ?? 30_000;
    this.events.setMaxListeners(0);
    this.views.setMaxListeners(0);
    this.heartbeat = setInterval(() => void this.renewLeases(), Math.max(50, this.leaseMs / 3));
    this.heartbeat.unref();
    this.killPoll = setInterval(() => void this.checkKills(), o.killPollMs ?? 1_000);
    this.killPoll.unref();
    // On Redis a run may change state on any worker: every process hears every change.
    if (rt.broadcast) {
      this.unsubscribe = rt.broadcast
        .subscribe(RUN_TOPIC, (message) => {
          if (this.views.listenerCount('run')) this.views.emit('run', JSON.parse(message) as RunSummary);
        })
        .catch((err: Error) => {
          rt.log.warn('run changes of other processes will not be seen live', { error: err.message });
          return () => {};
        });
    }
  }

  /** Starts a run of a workflow version for whoever asked; the input is validated first. */
  async start(
    workflow: Workflow,
    input: unknown,
    who: Starter,
    opts: { id?: string; launch?: boolean } = {},
  ): Promise<RunRecord> {
    const parsed = workflow.input.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new RunInputError(issue.path.map(String).join('.') || '(input)', issue.message);
    }
    const prefix = freezePrefix(workflow);
    await this.checkPrefix(prefix);
    const id = opts.id ?? newId('run');
    const now = this.rt.now();
    const record: RunRecord = {
      id,
      workflow: workflow.id,
      version: workflow.version,
      identity: { team: who.team, env: who.env, seat: who.seat, workflow: workflow.id, run: id },
      input: parsed.data,
      state: 'running',
      limits: { ...workflow.limits },
      steps: 0,
      startedAt: now,
      clockStart: now,
      updatedAt: now,
      suspensions: 0,
      grants: [],
    };
    await this.runs.save(record);
    // launch: false leaves the run `running` and unheld for a worker to `adopt` (the runs queue).
    if (opts.launch === false) return { ...record };
    await this.runs.claim(id, this.owner, this.leaseMs);
    this.launch(record, workflow, prefix, []);
    return { ...record };
  }

  /**
   * Resumes a suspended run from its persisted snapshot, pinned to the version it started on.
   * Approving a time box restarts its clock; approving a gate lets the tool call run, denying it
   * tells the model the call was refused.
   */
  async resume(id: string, workflow: Workflow, opts: ResumeOptions = {}): Promise<RunRecord> {
    const record = await this.prepareResume(id, workflow, { ...opts, claim: true });
    this.launch(record, workflow, freezePrefix(workflow), await this.runs.journal(id));
    return { ...record };
  }

  /**
   * Applies a resume decision to a suspended run's record (limits, gate, clock) and marks it
   * `running`, without running it here: `adopt` (on whichever worker takes the work) runs it.
   */
  async prepareResume(
    id: string,
    workflow: Workflow,
    opts: ResumeOptions & { claim?: boolean } = {},
  ): Promise<RunRecord> {
    const record = await this.runs.get(id);
    if (!record) throw new RunNotFoundError(id);
    if (record.state !== 'suspended') {
      throw new RunStateError(`run ${id} is ${record.state}, not suspended: nothing to resume`);
    }
    if (workflow.id !== record.workflow || workflow.version !== record.version) {
      throw new RunStateError(
        `run ${id} is pinned to ${record.workflow}@${record.version}, not ${workflow.id}@${workflow.version}`,
      );
    }
    if (!(await this.runs.claim(id, this.owner, this.leaseMs))) {
      throw new RunStateError(`run ${id} is held by another worker`);
    }
    try {
      return await this.resumeClaimed(id, workflow, record, opts);
    } catch (err) {
      // Nothing was resumed: let go of the run, so a decision taken again is not refused as
      // "held by another worker" until the lease lapses.
      await this.runs.unclaim(id, this.owner).catch(() => {});
      throw err;
    }
  }

  private async resumeClaimed(
    id: string,
    workflow: Workflow,
    record: RunRecord,
    opts: ResumeOptions & { claim?: boolean },
  ): Promise<RunRecord> {
    // Re-read under the claim: a decision racing this one sees the run no longer suspended.
    const fresh = await this.runs.get(id);
    if (fresh?.state !== 'suspended') {
      throw new RunStateError(`run ${id} is ${fresh?.state}, not suspended: nothing to resume`);
    }
    Object.assign(record, fresh);
    await this.checkPrefix(freezePrefix(workflow));
    const gateKey = record.detail?.key;
    if (opts.gate && record.reason === 'approval_required' && typeof gateKey === 'string') {
      record.grants = [...record.grants, opts.gate === 'approve' ? gateKey : `deny:${gateKey}`];
    }
    if (opts.restartClock) record.clockStart = this.rt.now();
    record.limits = { ...record.limits, ...opts.limits };
    if (record.reason === 'step_cap' && record.steps >= record.limits.steps) {
      // Approving a step cap grants the workflow's step allowance once more.
      record.limits.steps = record.steps + workflow.limits.steps;
    }
    record.state = 'running';
    record.reason = undefined;
    record.detail = undefined;
    if (opts.limits?.spend !== undefined && (await this.rt.store.getBudget(`run:${id}`))) {
      await this.rt.store.setCeiling(`run:${id}`, opts.limits.spend, {
        actor: opts.by?.actor ?? 'runtime',
        reason: opts.by?.reason ?? 'run resumed with a wider spend box',
      });
    }
    record.updatedAt = this.rt.now();
    await this.runs.save(record);
    if (!opts.claim) await this.runs.unclaim(id, this.owner);
    this.emit(record);
    return record;
  }

  /**
   * Runs a `running` run here from its last step, if nobody else holds it; resolves when it
   * stops running here. If another process holds it, waits until that process lets go (it
   * stops the run, or dies and its lease lapses) and takes over if it is still running.
   */
  async adopt(id: string, find: (id: string, version: string) => Workflow | undefined): Promise<RunRecord> {
    for (;;) {
      if (this.live.has(id)) return this.wait(id);
      const r = await this.runs.get(id);
      if (!r) throw new RunNotFoundError(id);
      if (r.state !== 'running' || this.closed) return r;
      const workflow = find(r.workflow, r.version);
      if (!workflow) {
        throw new RunStateError(
          `run ${id} is pinned to ${r.workflow}@${r.version}, which is not loaded here`,
        );
      }
      if (await this.runs.claim(id, this.owner, this.leaseMs)) {
        const record = await this.runs.get(id);
        if (record?.state !== 'running') {
          await this.runs.unclaim(id, this.owner);
          continue;
        }
        await this.rt.store.expireNow(`run:${id}`); // as in recover(): a dead holder's calls
        this.launch(record, workflow, freezePrefix(workflow), await this.runs.journal(id));
        return this.wait(id);
      }
      await new Promise((r) => setTimeout(r, Math.min(1_000, this.leaseMs / 4)));
    }
  }

  /**
   * Picks up every `running` run nobody holds (this process restarted after a crash, or the
   * holder died and its lease lapsed) and resumes it from its last step. `find` returns the
   * workflow version a run is pinned to; runs whose version is not loaded are reported, not lost.
   */
  async recover(
    find: (id: string, version: string) => Workflow | undefined,
  ): Promise<{ resumed: string[]; orphaned: RunSummary[] }> {
    const resumed: string[] = [];
    const orphaned: RunSummary[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.runs.list({ state: 'running', limit: 500, cursor });
      cursor = page.next;
      for (const r of page.runs) {
        if (this.live.has(r.id) || this.closed) continue;
        const workflow = find(r.workflow, r.version);
        if (!workflow) {
          orphaned.push(r);
          continue;
        }
        if (!(await this.runs.claim(r.id, this.owner, this.leaseMs))) continue;
        const record = await this.runs.get(r.id);
        if (record?.state !== 'running') {
          await this.runs.unclaim(r.id, this.owner);
          continue;
        }
        // Its process died: the calls it had in flight are charged their worst case now (never 0;
        // the provider may have billed them), so the run's spend shows them from the start.
        await this.rt.store.expireNow(`run:${r.id}`);
        const prefix = freezePrefix(workflow);
        this.launch(record, workflow, prefix, await this.runs.journal(r.id));
        resumed.push(r.id);
      }
    } while (cursor);
    if (resumed.length) this.rt.log.info('recovered runs', { count: resumed.length, owner: this.owner });
    for (const r of orphaned) {
      this.rt.log.error('a running run is pinned to a workflow version that is not loaded', {
        run: r.id,
        workflow: r.workflow,
        version: r.version,
      });
    }
    return { resumed, orphaned };
  }

  async get(id: string): Promise<RunRecord | undefined> {
    const live = this.live.get(id);
    return live ? structuredClone(live.record) : this.runs.get(id);
  }

  list(filter: RunFilter = {}): Promise<{ runs: RunSummary[]; next?: string }> {
    return this.runs.list(filter);
  }

  /** True while this executor is running the run. */
  isLive(id: string): boolean {
    return this.live.has(id);
  }

  /** Resolves once the run stops running here (done, suspended, failed, killed) and its
   * in-flight call has been settled or released. With `timeoutMs`, gives up waiting then and
   * returns the record as it stands. */
  async wait(id: string, timeoutMs?: number): Promise<RunRecord> {
    const live = this.live.get(id);
    if (live) {
      if (timeoutMs === undefined) await live.settled;
      else {
        let t: NodeJS.Timeout | undefined;
        await Promise.race([live.settled, new Promise((r) => (t = setTimeout(r, timeoutMs)))]);
        clearTimeout(t);
      }
      return structuredClone(live.record);
    }
    const r = await this.runs.get(id);
    if (!r) throw new RunNotFoundError(id);
    return r;
  }

  /**
   * Stops a run at once: the in-flight call is aborted (its reservation released), state
   * `killed`. A run held by another process is stopped through a kill switch on `run:<id>`,
   * which that process (and the gateway) honours within a kill poll.
   */
  async kill(id: string, by: Actor): Promise<RunRecord> {
    const live = this.live.get(id);
    if (live && !live.halted) {
      this.halt(live, 'killed', 'killed', { by: by.actor, why: by.reason });
      return this.wait(id);
    }
    if (live) return this.wait(id);
    const r = await this.runs.get(id);
    if (!r) throw new RunNotFoundError(id);
    if (FINAL_STATES.has(r.state)) {
      throw new RunStateError(`run ${id} already ended (${r.state})`);
    }
    if (r.state === 'running') {
      // Someone else may be running it: the switch stops their next call and their kill poll.
      await this.rt.store.setKill(`run:${id}`, by);
      if (!(await this.runs.claim(id, this.owner, this.leaseMs))) return r;
    }
    Object.assign(r, {
      state: 'killed',
      reason: 'killed',
      detail: { by: by.actor, why: by.reason },
      endedAt: this.rt.now(),
      updatedAt: this.rt.now(),
    });
    await this.runs.save(r);
    await this.runs.unclaim(id, this.owner);
    this.emit(r);
    return r;
  }

  /** Ends a suspended run without resuming it: `denied` or `expired`. */
  async end(id: string, state: 'denied' | 'expired', by: Actor): Promise<RunRecord> {
    const r = await this.runs.get(id);
    if (!r) throw new RunNotFoundError(id);
    if (r.state !== 'suspended') throw new RunStateError(`run ${id} is ${r.state}, not suspended`);
    Object.assign(r, {
      state,
      detail: { ...r.detail, by: by.actor, why: by.reason, suspendedFor: r.reason },
      endedAt: this.rt.now(),
      updatedAt: this.rt.now(),
    });
    await this.runs.save(r);
    this.emit(r);
    return r;
  }

  /** Halts every live run whose scopes a kill switch now covers (switches flipped anywhere). */
  async checkKills(): Promise<void> {
    for (const run of [...this.live.values()]) {
      if (run.halted) continue;
      try {
        const kill = await this.rt.store.killedBy(run.record.identity);
        if (kill && !run.halted) {
          this.halt(run, 'killed', kill.scope === `run:${run.record.id}` ? 'killed' : 'kill_switch', {
            scope: kill.scope,
            by: kill.actor,
            why: kill.reason,
          });
        }
      } catch {
        // The store is down: the next model call fails closed at admission anyway.
      }
    }
  }

  /**
   * Stops this executor. Live runs are handed back where they stand (in-flight calls aborted
   * and released, state left `running`, leases let go) so a restart or another worker picks
   * them up from their last step.
   */
  async close(): Promise<void> {
    this.closed = true;
    void this.unsubscribe?.then((off) => off());
    clearInterval(this.heartbeat);
    clearInterval(this.killPoll);
    const runs = [...this.live.values()];
    for (const run of runs) if (!run.halted) this.halt(run, 'running', 'handed_back');
    await Promise.all(runs.map((r) => r.settled));
  }

  private async checkPrefix(prefix: FrozenPrefix): Promise<void> {
    if (this.prefixes.hashOf(prefix.workflow, prefix.version) === prefix.hash) return;
    const known = await this.runs.recordPrefix(prefix.workflow, prefix.version, prefix.hash);
    if (known !== prefix.hash) {
      throw new PrefixDriftError(
        `${prefix.workflow}@${prefix.version} was frozen with prefix ${known}, now ${prefix.hash}: a changed prompt or tool list is a new version`,
      );
    }
    this.prefixes.record(prefix);
  }

  /** Tells this process's listeners, and the live views of every process (on Redis, by broadcast). */
  private emit(record: RunRecord): void {
    if (this.events.listenerCount('run')) this.events.emit('run', structuredClone(summary(record)));
    if (this.rt.broadcast) this.rt.broadcast.publish(RUN_TOPIC, JSON.stringify(summary(record)));
    else if (this.views.listenerCount('run')) this.views.emit('run', structuredClone(summary(record)));
  }

  private async renewLeases(): Promise<void> {
    if (this.live.size === 0) return;
    try {
      const lost = await this.runs.renew(this.owner, [...this.live.keys()], this.leaseMs);
      for (const id of lost) {
        const run = this.live.get(id);
        if (!run || run.halted) continue;
        this.rt.log.error('lost the lease on a run: stopping it here', { run: id, owner: this.owner });
        this.halt(run, 'running', 'lease_lost');
      }
    } catch (err) {
      this.rt.log.warn('could not renew run leases', { error: err });
    }
  }

  private launch(record: RunRecord, workflow: Workflow, prefix: FrozenPrefix, journal: JournalEntry[]): void {
    let settle!: () => void;
    const settled = new Promise<void>((r) => {
      settle = r;
    });
    const run: LiveRun = {
      record,
      workflow,
      prefix,
      journal: new Map(journal.map((e) => [e.key, e])),
      halted: false,
      saving: Promise.resolve(),
      settled,
      settle,
    };
    this.live.set(record.id, run);
    const machine = workflow.machine.provide({
      actors: {
        model: fromPromise<ModelOutput, ModelInput>(({ input, signal }) => this.model(run, input, signal)),
        tool: fromPromise<ToolOutput, ToolInput>(({ input, signal }) => this.tool(run, input, signal)),
      },
    });
    const actor = createActor(machine, {
      input: record.input,
      ...(record.snapshot ? { snapshot: record.snapshot as never } : {}),
    });
    run.actor = actor;
    actor.subscribe({
      next: (snap) => {
        if (run.halted) return;
        record.snapshot = actor.getPersistedSnapshot();
        if (snap.status === 'done') this.finish(run, 'done', { output: snap.output });
        else this.save(run);
      },
      error: (err) => {
        if (!run.halted) this.finish(run, 'failed', { reason: 'error', error: (err as Error).message });
      },
    });
    const left = record.clockStart + record.limits.time - this.rt.now();
    run.timer = setTimeout(() => this.halt(run, 'suspended', 'time_box'), Math.max(0, left));
    run.timer.unref();
    this.emit(record);
    actor.start();
  }

  private save(run: LiveRun): void {
    run.record.updatedAt = this.rt.now();
    const copy = structuredClone(run.record);
    run.saving = run.saving
      .then(() => this.runs.save(copy))
      .catch((err) => this.rt.log.error('could not save a run', { error: err, run: copy.id }));
  }

  private finish(
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
        this.live.delete(run.record.id);
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
      this.live.delete(run.record.id);
      if (!handBack) this.emit(run.record);
      run.settle();
    });
  }

  /** Stops the run where it is: the in-flight call aborted, the pending invocation kept in the
   * saved snapshot (a resume re-runs it). Returns a promise that never settles, for the actor. */
  private halt<T>(
    run: LiveRun,
    state: RunState,
    reason: string,
    detail: Record<string, unknown> = {},
  ): Promise<T> {
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
  private limitHit(run: LiveRun): string | undefined {
    const r = run.record;
    if (r.steps >= r.limits.steps) return 'step_cap';
    if (this.rt.now() - r.clockStart >= r.limits.time) return 'time_box';
    return undefined;
  }

  private async journaled(run: LiveRun, entry: Omit<JournalEntry, 'at'>): Promise<void> {
    const full = { ...entry, at: this.rt.now() };
    run.journal.set(entry.key, full);
    run.record.steps++;
    // Written before the machine sees the result: a crash after this never repeats the call.
    await this.runs.appendJournal(run.record.id, full);
  }

  private failDrift(run: LiveRun, message: string | undefined): Promise<never> {
    this.finish(run, 'failed', { reason: 'prefix_drift', error: message });
    run.actor?.stop();
    return never();
  }

  private async model(run: LiveRun, input: ModelInput, _signal: AbortSignal): Promise<ModelOutput> {
    const key = journalKey('model', input);
    const hit = run.journal.get(key);
    if (hit) return hit.result as ModelOutput;
    try {
      refuseOwnPrefix(run.prefix, input);
    } catch (err) {
      if (err instanceof PrefixDriftError) return this.failDrift(run, err.message);
      throw err;
    }
    const limit = this.limitHit(run);
    if (limit) return this.halt(run, 'suspended', limit);
    const { workflow, record } = run;
    const model = workflow.models[input.step ?? 'default'] ?? workflow.models.default;
    const body = assemble(run.prefix, input.messages, {
      model,
      maxTokens: input.maxTokens ?? 1024,
      toolChoice: input.toolChoice,
    });
    // Not tied to the actor's signal: only `halt` aborts a model call (a kill; see there).
    const controller = new AbortController();
    run.controller = controller;
    const sink = new CollectingSink();
    const requestId = newId('req');
    // The call and its journal entry are one in-flight unit: a halt waits for both, so a call
    // that completed (and was billed) is journaled even if the run stopped meanwhile, and a
    // resume answers it from the journal instead of paying for it again.
    const unit = (async () => {
      const result = await modelCall(
        this.rt,
        {
          identity: record.identity,
          requestId,
          body,
          streamKey: `run:${record.id}`,
          driftPolicy: 'refuse',
          signal: controller.signal,
          provision: { [`run:${record.id}`]: runBudget(record) },
        },
        sink,
      );
      const answer = sink.json() as Record<string, unknown> & {
        chokepoint?: Record<string, unknown> & { budget?: { scope?: string } };
        error?: { message?: string };
      };
      if (result.outcome !== 'ok') return { result, answer };
      const content = (answer.content ?? []) as Block[];
      const output: ModelOutput = {
        message: { role: 'assistant', content },
        text: content
          .filter((b) => b.type === 'text')
          .map((b) => b.text as string)
          .join(''),
        toolUses: content.filter((b): b is ToolUse & Block => b.type === 'tool_use'),
        stopReason: String(answer.stop_reason ?? ''),
        model: result.model,
      };
      await this.journaled(run, {
        key,
        kind: 'model',
        name: result.model,
        result: output,
        ledgerId: result.ledgerId,
      });
      return { result, answer, output };
    })();
    run.inflight = unit;
    run.inflightKind = 'model';
    const { result, answer, output } = await unit.finally(() => {
      run.inflight = undefined;
      run.inflightKind = undefined;
      run.controller = undefined;
    });
    if (run.halted) return never();
    if (result.outcome === 'refused') {
      const cp = answer.chokepoint ?? {};
      if (result.code === 'budget_exhausted') {
        const scope = cp.budget?.scope;
        const mayCost =
          typeof cp.call_may_cost_usd === 'string' ? tryParseUsd(cp.call_may_cost_usd) : undefined;
        return this.halt(run, 'suspended', scope === `run:${record.id}` ? 'spend_box' : 'budget_exhausted', {
          budget: scope,
          message: answer.error?.message,
          ...(mayCost === undefined ? {} : { nextCallMax: mayCost }),
        });
      }
      if (result.code === 'killed') return this.halt(run, 'killed', 'kill_switch', cp);
      if (result.code === 'prefix_drift') return this.failDrift(run, answer.error?.message);
    }
    if (!output) {
      throw new Error(`model call failed (${result.code ?? result.status}): ${answer.error?.message ?? ''}`);
    }
    return output;
  }

  private async tool(run: LiveRun, input: ToolInput, signal: AbortSignal): Promise<ToolOutput> {
    const key = journalKey('tool', input);
    const hit = run.journal.get(key);
    if (hit) return hit.result as ToolOutput;
    const limit = this.limitHit(run);
    if (limit) return this.halt(run, 'suspended', limit);
    const { workflow, record } = run;
    const identity = record.identity;
    const kill = await this.rt.store.killedBy(identity);
    if (kill) {
      return this.halt(run, 'killed', kill.scope === `run:${record.id}` ? 'killed' : 'kill_switch', {
        scope: kill.scope,
        by: kill.actor,
        why: kill.reason,
      });
    }
    // The allow-list: the workflow's own tools and the allowed tools of its MCP servers. Anything
    // else is refused without a call; the model is told so and may carry on.
    const local = Object.hasOwn(workflow.tools, input.name) ? workflow.tools[input.name] : undefined;
    const mcp =
      workflow.mcpTools && Object.hasOwn(workflow.mcpTools, input.name)
        ? workflow.mcpTools[input.name]
        : undefined;
    if (!local && !mcp) {
      const refused = {
        content: `tool not allowed: '${input.name}' is not one of this workflow's tools`,
        isError: true,
      };
      return this.toolDone(
        run,
        key,
        { name: input.name, outcome: 'refused', code: 'tool_not_allowed', started: performance.now() },
        refused,
      );
    }
    if (workflow.approvals.includes(input.name) && !record.grants.includes(key)) {
      if (!record.grants.includes(`deny:${key}`)) {
        return this.halt(run, 'suspended', 'approval_required', {
          tool: input.name,
          input: input.input,
          key,
          ...(mcp ? { server: mcp.server } : {}),
        });
      }
      const refused = {
        content: `A human refused this call to ${input.name}; do not retry it.`,
        isError: true,
      };
      return this.toolDone(
        run,
        key,
        { name: input.name, outcome: 'refused', code: 'approval_denied', started: performance.now() },
        refused,
      );
    }
    // The tool call, its ledger entry and its journal entry are one in-flight unit (see model()):
    // a tool that completed while the run was stopping is journaled, so a resume never runs a
    // consequential call twice; one cut short by the stop (an error) is run again on resume.
    const controller = new AbortController();
    signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
    run.controller = controller;
    const unit = mcp
      ? this.mcpUnit(run, key, input, mcp, controller)
      : this.localUnit(run, key, input, local!, controller);
    run.inflight = unit;
    run.inflightKind = 'tool';
    const { output, refusal } = await unit.finally(() => {
      run.inflight = undefined;
      run.inflightKind = undefined;
      run.controller = undefined;
    });
    if (run.halted) return never();
    if (refusal?.code === 'killed') {
      const k = refusal.kill;
      return this.halt(run, 'killed', k.scope === `run:${record.id}` ? 'killed' : 'kill_switch', {
        scope: k.scope,
        by: k.actor,
        why: k.reason,
      });
    }
    if (refusal?.code === 'budget_exhausted') {
      // A priced tool is admitted like a model call: the run stops before passing a box.
      const scope = refusal.budget.scope;
      return this.halt(run, 'suspended', scope === `run:${record.id}` ? 'spend_box' : 'budget_exhausted', {
        budget: scope,
        message: budgetExhausted(refusal.budget, refusal.amount, this.rt.now()).message,
        nextCallMax: refusal.amount,
        tool: input.name,
      });
    }
    if (!output) return never();
    return output;
  }

  /** One local tool call as an in-flight unit: input validated, run with the abort signal,
   * ledger entry, journal entry. */
  private async localUnit(
    run: LiveRun,
    key: string,
    input: ToolInput,
    tool: LocalTool,
    controller: AbortController,
  ): Promise<ToolUnit> {
    const started = performance.now();
    let output: ToolOutput;
    let code: string | undefined;
    let outcome: 'ok' | 'error' = 'ok';
    try {
      const schema = tool.input_schema as {
        safeParse?: (v: unknown) => { success: boolean; data?: unknown };
      };
      const parsed = schema.safeParse ? schema.safeParse(input.input) : { success: true, data: input.input };
      if (!parsed.success) throw new Error(`invalid input for ${input.name}: ${JSON.stringify(input.input)}`);
      const value = await tool.run(parsed.data as never, { runId: run.record.id, signal: controller.signal });
      output = { content: typeof value === 'string' ? value : JSON.stringify(value), isError: false };
    } catch (err) {
      output = { content: (err as Error).message, isError: true };
      code = 'tool_error';
      outcome = 'error';
    }
    if (run.halted && outcome !== 'ok') return {};
    const bytes = Buffer.byteLength(output.content ?? '', 'utf8');
    return {
      output: await this.toolDone(run, key, { name: input.name, outcome, code, started, bytes }, output),
    };
  }

  /**
   * One MCP tool call as an in-flight unit: price admitted (if the tool has one) → call with the
   * server's timeout and the run's abort signal (kill, time box) → result truncated to
   * `mcp.maxResultBytes` → ledger entry (settling the price) → journal. A refused admission
   * comes back as `refusal` for the caller to suspend or stop the run on.
   */
  private async mcpUnit(
    run: LiveRun,
    key: string,
    input: ToolInput,
    tool: McpToolBinding,
    controller: AbortController,
  ): Promise<ToolUnit> {
    const { record } = run;
    const started = performance.now();
    const requestId = newId('req');
    const name = tool.name;
    let reservation: Reservation | undefined;
    if (tool.price > 0) {
      let admission: Admission;
      try {
        admission = await this.rt.store.admit({
          identity: record.identity,
          amount: tool.price,
          provision: { [`run:${record.id}`]: runBudget(record) },
          requestId,
          kind: 'tool',
          name,
        });
      } catch (err) {
        // Enforcement cannot decide: fail closed, as a model call does (the run fails).
        await this.toolLedger(run, {
          requestId,
          name,
          outcome: 'refused',
          code: 'enforcement_unavailable',
          started,
        }).catch(() => undefined);
        throw err;
      }
      if (!admission.ok) {
        await this.toolLedger(run, {
          requestId,
          name,
          outcome: 'refused',
          code: admission.refusal.code,
          started,
        });
        return { refusal: admission.refusal };
      }
      reservation = admission.reservation;
    }
    const args = input.input;
    if (typeof args !== 'object' || args === null || Array.isArray(args)) {
      const output = { content: `invalid input for ${name}: expected an object of arguments`, isError: true };
      return {
        output: await this.toolDone(
          run,
          key,
          { requestId, name, outcome: 'error', code: 'invalid_input', started },
          output,
          reservation,
        ),
      };
    }
    const timeoutMs = tool.timeoutMs ?? this.rt.config.mcp.timeoutMs;
    let result: Awaited<ReturnType<McpToolBinding['call']>> | undefined;
    let failure: (Error & { kind?: string }) | undefined;
    try {
      // The same key on every attempt of this call (the journal key is a content address of it):
      // a server that honours it does not carry out twice a call a time box or kill cut short.
      result = await tool.call(args as Record<string, unknown>, {
        signal: controller.signal,
        timeoutMs,
        idempotencyKey: `${record.id}/${key}`,
      });
    } catch (err) {
      failure = err as Error & { kind?: string };
    }
    if (!result) {
      const kind = failure?.kind;
      const code = controller.signal.aborted ? 'aborted' : (MCP_FAILURE_CODES[kind ?? ''] ?? 'mcp_error');
      // A call that was sent may have been carried out (and billed): only one never sent is free.
      const entry: ToolEntry = {
        requestId,
        name,
        outcome: 'error',
        code,
        started,
        cost: kind === 'unreachable' ? 0 : tool.price,
      };
      if (run.halted) {
        // Cut short by the stop: recorded, not journaled (a resume makes the call again).
        await this.toolLedger(run, entry, reservation);
        return {};
      }
      const output = { content: `${name} failed: ${failure?.message ?? 'no result'}`, isError: true };
      return { output: await this.toolDone(run, key, entry, output, reservation) };
    }
    const output = {
      content: truncateResult(result.content, this.rt.config.mcp.maxResultBytes),
      isError: result.isError,
    };
    const entry: ToolEntry = {
      requestId,
      name,
      outcome: result.isError ? 'error' : 'ok',
      code: result.isError ? 'tool_error' : undefined,
      started,
      bytes: result.bytes,
      cost: tool.price,
    };
    return { output: await this.toolDone(run, key, entry, output, reservation) };
  }

  /** The tool call's ledger entry (tools cost nothing unless priced) and journal entry. */
  private async toolDone(
    run: LiveRun,
    key: string,
    entry: ToolEntry,
    output: ToolOutput,
    reservation?: Reservation,
  ): Promise<ToolOutput> {
    const ledgerId = await this.toolLedger(run, entry, reservation);
    await this.journaled(run, { key, kind: 'tool', name: entry.name, result: output, ledgerId });
    return output;
  }

  /** A tool call's ledger entry: appended, or settling (priced, sent) / releasing its reservation. */
  private async toolLedger(
    run: LiveRun,
    e: ToolEntry,
    reservation?: Reservation,
  ): Promise<string | undefined> {
    const cost = reservation ? (e.cost ?? 0) : 0;
    const entry: LedgerInput = {
      requestId: e.requestId ?? newId('req'),
      identity: run.record.identity,
      kind: 'tool',
      name: e.name,
      tokens: { ...NO_TOKENS },
      reserved: reservation?.amount ?? 0,
      cost,
      outcome: e.outcome,
      code: e.code,
      latencyMs: Math.round(performance.now() - e.started),
      ...(e.bytes === undefined ? {} : { bytes: e.bytes }),
    };
    if (!reservation) return (await this.rt.store.appendLedger(entry)).id;
    const done =
      cost > 0
        ? await this.rt.settleSafely(reservation, entry)
        : await this.rt.releaseSafely(reservation, entry);
    return done?.id;
  }
}

/** What a tool call's in-flight unit ends with: its output, a refused admission, or neither
 * (cut short by a stop). */
interface ToolUnit {
  output?: ToolOutput;
  refusal?: AdmitRefusal;
}

interface ToolEntry {
  requestId?: string;
  name: string;
  outcome: 'ok' | 'error' | 'refused';
  code?: string;
  /** performance.now() when the call began. */
  started: number;
  bytes?: number;
  /** The price to settle (priced MCP tools). */
  cost?: number;
}

/** Ledger codes of MCP calls that brought no result, by the client's failure kind. */
const MCP_FAILURE_CODES: Record<string, string> = {
  unreachable: 'mcp_unreachable',
  timeout: 'tool_timeout',
  aborted: 'aborted',
  disconnected: 'mcp_disconnected',
  protocol: 'mcp_error',
};

function runBudget(record: RunRecord) {
  return { ceiling: record.limits.spend, window: 'total' as const, owner: `run ${record.id}` };
}

/** Content address of a call. The agent loop's inputs are unique per call (the conversation
 * grows; tool calls carry the model's tool_use id); a custom machine that makes the very same
 * call twice gets the first answer again. */
export function journalKey(kind: 'model' | 'tool', input: unknown): string {
  return `${kind}:${createHash('sha256').update(JSON.stringify(input)).digest('hex').slice(0, 32)}`;
}

/** Collects a model answer for a run instead of writing it to an HTTP response. */
class CollectingSink implements Sink {
  status = 0;
  private readonly chunks: Buffer[] = [];
  readonly gone = false;
  head(status: number): void {
    this.status = status;
  }
  chunk(data: Buffer): void {
    this.chunks.push(data);
  }
  end(): void {}
  json(): Record<string, unknown> {
    const text = Buffer.concat(this.chunks).toString('utf8');
    try {
      return text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  }
}
