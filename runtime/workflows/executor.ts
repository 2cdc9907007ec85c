import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { createActor, fromPromise } from 'xstate';
import { newId } from '../ids.ts';
import type { Runtime } from '../runtime.ts';
import type { Actor } from '../store/port.ts';
import {
  FINAL_STATES,
  type JournalEntry,
  MemoryRunStore,
  type RunFilter,
  type RunLimits,
  type RunRecord,
  type RunStore,
  type RunSummary,
  summary,
} from '../store/runs.ts';
import { modelActor, toolActor } from './actors.ts';
import type { ModelInput, ModelOutput, ToolInput, ToolOutput, Workflow } from './define.ts';
import { type LiveRun, RunControl } from './live-run.ts';
import { type FrozenPrefix, freezePrefix, PrefixDriftError, PrefixRegistry } from './prompt.ts';

/**
 * The run executor: hosts a workflow version's machine as an XState actor and provides its
 * `model` and `tool` actors (actors.ts: both metered through the call path). This file is the
 * runs' lifecycle: start, resume, adopt and recover, kill and end, leases and kill polling; how a
 * live run saves, halts and finishes is live-run.ts. Limits belong to the runtime: hitting the
 * spend box, the time box or the step cap SUSPENDS the run (reason and numbers recorded; the call
 * that would pass the limit is not made).
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
  private readonly control: RunControl;

  constructor(
    private readonly rt: Runtime,
    opts: ExecutorOptions | RunStore = {},
  ) {
    const o: ExecutorOptions = 'save' in opts ? { runs: opts } : opts;
    this.runs = o.runs ?? new MemoryRunStore(rt.now);
    this.owner = o.owner ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.leaseMs = o.leaseMs ?? 30_000;
    this.control = new RunControl(
      rt,
      this.runs,
      this.owner,
      (id) => this.live.delete(id),
      (record) => this.emit(record),
    );
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
      this.control.halt(live, 'killed', 'killed', { by: by.actor, why: by.reason });
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
          this.control.halt(run, 'killed', kill.scope === `run:${run.record.id}` ? 'killed' : 'kill_switch', {
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
    for (const run of runs) if (!run.halted) this.control.halt(run, 'running', 'handed_back');
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
    // A run's span is sent once it has ended, by the process that ended it (tracing.ts).
    if (this.rt.traces && FINAL_STATES.has(record.state)) this.rt.traces.run(record);
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
        this.control.halt(run, 'running', 'lease_lost');
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
        model: fromPromise<ModelOutput, ModelInput>(({ input }) => modelActor(this.control, run, input)),
        tool: fromPromise<ToolOutput, ToolInput>(({ input, signal }) =>
          toolActor(this.control, run, input, signal),
        ),
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
        if (snap.status === 'done') this.control.finish(run, 'done', { output: snap.output });
        else this.control.save(run);
      },
      error: (err) => {
        if (!run.halted)
          this.control.finish(run, 'failed', { reason: 'error', error: (err as Error).message });
      },
    });
    const left = record.clockStart + record.limits.time - this.rt.now();
    run.timer = setTimeout(() => this.control.halt(run, 'suspended', 'time_box'), Math.max(0, left));
    run.timer.unref();
    this.emit(record);
    actor.start();
  }
}
