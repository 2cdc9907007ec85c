import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { type AnyActorRef, createActor, fromPromise } from 'xstate';
import { modelCall, type Sink } from '../gateway/call.ts';
import type { Identity } from '../identity.ts';
import { newId } from '../ids.ts';
import type { Runtime } from '../runtime.ts';
import { NO_TOKENS } from '../store/port.ts';
import type { Block, ModelInput, ModelOutput, ToolInput, ToolOutput, ToolUse, Workflow } from './define.ts';
import {
  assemble,
  type FrozenPrefix,
  freezePrefix,
  PrefixDriftError,
  PrefixRegistry,
  refuseOwnPrefix,
} from './prompt.ts';
import {
  type JournalEntry,
  MemoryRunStore,
  type RunLimits,
  type RunRecord,
  type RunState,
  type RunStore,
} from './run-store.ts';

/**
 * The run executor: hosts a workflow version's machine as an XState actor and provides its
 * `model` and `tool` actors. Every model call goes through `modelCall` (identity with the run,
 * the run's spend box provisioned as the `run:<id>` budget, admission, ledger); every tool call
 * is checked against kill switches and approvals and written to the ledger. Limits belong to the
 * runtime: hitting the spend box, the time box or the step cap SUSPENDS the run (reason and
 * numbers recorded; the call that would pass the limit is not made).
 *
 * A halted run's actor is stopped with the invocation still pending, and that persisted
 * snapshot is what is saved: restoring it re-runs the pending call, with the limits checked again.
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

export interface Starter {
  team: string;
  env: string;
  seat: string;
}

interface LiveRun {
  record: RunRecord;
  workflow: Workflow;
  prefix: FrozenPrefix;
  journal: Map<string, JournalEntry>;
  actor?: AnyActorRef;
  halted: boolean;
  /** Aborts the call in flight (kill, time box). */
  controller?: AbortController;
  inflight?: Promise<unknown>;
  timer?: NodeJS.Timeout;
  saving: Promise<void>;
  settled: Promise<void>;
  settle(): void;
}

const never = <T>() => new Promise<T>(() => {});

export class WorkflowExecutor {
  private readonly live = new Map<string, LiveRun>();
  readonly prefixes = new PrefixRegistry();

  constructor(
    private readonly rt: Runtime,
    readonly runs: RunStore = new MemoryRunStore(),
  ) {}

  /** Starts a run of a workflow version for whoever asked; the input is validated first. */
  async start(
    workflow: Workflow,
    input: unknown,
    who: Starter,
    opts: { id?: string } = {},
  ): Promise<RunRecord> {
    const parsed = workflow.input.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new RunInputError(issue.path.map(String).join('.') || '(input)', issue.message);
    }
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
      updatedAt: now,
    };
    await this.runs.save(record);
    this.launch(record, workflow, []);
    return { ...record };
  }

  /** Resumes a suspended run from its persisted snapshot, optionally with wider limits. */
  async resume(id: string, workflow: Workflow, extend: Partial<RunLimits> = {}): Promise<RunRecord> {
    const record = await this.runs.get(id);
    if (record?.state !== 'suspended') throw new Error(`run ${id} is not suspended`);
    if (workflow.id !== record.workflow || workflow.version !== record.version) {
      throw new Error(`run ${id} is pinned to ${record.workflow}@${record.version}`);
    }
    record.limits = { ...record.limits, ...extend };
    record.state = 'running';
    record.reason = undefined;
    record.detail = undefined;
    if (extend.spend !== undefined && (await this.rt.store.getBudget(`run:${id}`))) {
      await this.rt.store.setCeiling(`run:${id}`, extend.spend, { actor: 'runtime', reason: 'run resumed' });
    }
    await this.runs.save(record);
    this.launch(record, workflow, await this.runs.journal(id));
    return { ...record };
  }

  async get(id: string): Promise<RunRecord | undefined> {
    const live = this.live.get(id);
    return live ? { ...live.record } : this.runs.get(id);
  }

  /** Resolves once the run stops running (done, suspended, failed, killed) and its in-flight
   * call has been settled or released. */
  async wait(id: string): Promise<RunRecord> {
    const live = this.live.get(id);
    if (live) {
      await live.settled;
      return { ...live.record };
    }
    const r = await this.runs.get(id);
    if (!r) throw new Error(`no run ${id}`);
    return r;
  }

  /** Stops a run at once: the in-flight call is aborted (its reservation released), state `killed`. */
  async kill(id: string, by: { actor: string; reason: string }): Promise<RunRecord> {
    const live = this.live.get(id);
    if (live && !live.halted) {
      this.halt(live, 'killed', 'killed', { by: by.actor, why: by.reason });
      return this.wait(id);
    }
    const r = await this.runs.get(id);
    if (!r) throw new Error(`no run ${id}`);
    if (r.state === 'running' || r.state === 'suspended') {
      Object.assign(r, {
        state: 'killed',
        reason: 'killed',
        detail: { by: by.actor, why: by.reason },
        endedAt: this.rt.now(),
      });
      await this.runs.save(r);
    }
    return r;
  }

  private launch(record: RunRecord, workflow: Workflow, journal: JournalEntry[]): void {
    let settle!: () => void;
    const settled = new Promise<void>((r) => {
      settle = r;
    });
    const run: LiveRun = {
      record,
      workflow,
      prefix: freezePrefix(workflow),
      journal: new Map(journal.map((e) => [e.key, e])),
      halted: false,
      saving: Promise.resolve(),
      settled,
      settle,
    };
    this.live.set(record.id, run);
    try {
      this.prefixes.record(run.prefix);
    } catch (err) {
      this.finish(run, 'failed', { reason: 'prefix_drift', error: (err as Error).message });
      return;
    }
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
    const left = record.startedAt + record.limits.time - this.rt.now();
    run.timer = setTimeout(() => this.halt(run, 'suspended', 'time_box'), Math.max(0, left));
    run.timer.unref();
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
    Object.assign(run.record, extra, { state });
    if (state !== 'suspended') run.record.endedAt = this.rt.now();
    this.save(run);
    void Promise.allSettled([run.inflight, run.saving]).then(() => {
      this.live.delete(run.record.id);
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
    run.controller?.abort(reason);
    run.actor?.stop();
    const inflight = run.inflight;
    void (async () => {
      await inflight?.catch(() => {});
      const numbers = await this.numbers(run).catch(() => ({}));
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
      elapsedMs: this.rt.now() - run.record.startedAt,
      timeBox: run.record.limits.time,
    };
  }

  /** A limit the next call would pass, if any. The spend box is checked by admission itself. */
  private limitHit(run: LiveRun): string | undefined {
    const r = run.record;
    if (r.steps >= r.limits.steps) return 'step_cap';
    if (this.rt.now() - r.startedAt >= r.limits.time) return 'time_box';
    return undefined;
  }

  private async journaled(run: LiveRun, entry: Omit<JournalEntry, 'at'>): Promise<void> {
    const full = { ...entry, at: this.rt.now() };
    run.journal.set(entry.key, full);
    run.record.steps++;
    // Written before the machine sees the result: a crash after this never repeats the call.
    await this.runs.appendJournal(run.record.id, full);
  }

  private async model(run: LiveRun, input: ModelInput, signal: AbortSignal): Promise<ModelOutput> {
    const key = journalKey('model', input);
    const hit = run.journal.get(key);
    if (hit) return hit.result as ModelOutput;
    try {
      refuseOwnPrefix(run.prefix, input);
    } catch (err) {
      if (err instanceof PrefixDriftError) {
        this.finish(run, 'failed', { reason: 'prefix_drift', error: err.message });
        run.actor?.stop();
        return never();
      }
      throw err;
    }
    const limit = this.limitHit(run);
    if (limit) return this.halt(run, 'suspended', limit);
    const { workflow, record } = run;
    const model = workflow.models[input.step ?? 'default'] ?? workflow.models.default;
    const body = assemble(run.prefix, input.messages, { model, maxTokens: input.maxTokens ?? 1024 });
    const controller = new AbortController();
    signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
    run.controller = controller;
    const sink = new CollectingSink();
    const call = modelCall(
      this.rt,
      {
        identity: record.identity,
        requestId: newId('req'),
        body,
        streamKey: `run:${record.id}`,
        driftPolicy: 'refuse',
        signal: controller.signal,
        provision: { [`run:${record.id}`]: runBudget(record) },
      },
      sink,
    );
    run.inflight = call;
    const result = await call;
    run.inflight = undefined;
    run.controller = undefined;
    if (run.halted) return never();
    const answer = sink.json() as Record<string, unknown> & {
      chokepoint?: Record<string, unknown> & { budget?: { scope?: string } };
      error?: { message?: string };
    };
    if (result.outcome === 'refused') {
      const cp = answer.chokepoint ?? {};
      if (result.code === 'budget_exhausted') {
        const scope = cp.budget?.scope;
        return this.halt(run, 'suspended', scope === `run:${record.id}` ? 'spend_box' : 'budget_exhausted', {
          budget: scope,
          message: answer.error?.message,
        });
      }
      if (result.code === 'killed') return this.halt(run, 'killed', 'kill_switch', cp);
      if (result.code === 'prefix_drift') {
        this.finish(run, 'failed', { reason: 'prefix_drift', error: answer.error?.message });
        run.actor?.stop();
        return never();
      }
    }
    if (result.outcome !== 'ok') {
      throw new Error(`model call failed (${result.code ?? result.status}): ${answer.error?.message ?? ''}`);
    }
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
    return output;
  }

  private async tool(run: LiveRun, input: ToolInput, signal: AbortSignal): Promise<ToolOutput> {
    const key = journalKey('tool', input);
    const hit = run.journal.get(key);
    if (hit) return hit.result as ToolOutput;
    const limit = this.limitHit(run);
    if (limit) return this.halt(run, 'suspended', limit);
    const { workflow, record } = run;
    const identity: Identity = record.identity;
    const kill = await this.rt.store.killedBy(identity);
    if (kill) return this.halt(run, 'killed', 'kill_switch', { ...kill });
    if (workflow.approvals.includes(input.name)) {
      // The approvals issue delivers the decision; until then the run waits, resumable.
      return this.halt(run, 'suspended', 'approval_required', { tool: input.name, input: input.input });
    }
    const started = performance.now();
    const tool = workflow.tools[input.name];
    let output: ToolOutput;
    let code: string | undefined;
    if (!tool) {
      output = { content: `unknown tool '${input.name}'`, isError: true };
      code = 'unknown_tool';
    } else {
      try {
        const schema = tool.input_schema as {
          safeParse?: (v: unknown) => { success: boolean; data?: unknown };
        };
        const parsed = schema.safeParse
          ? schema.safeParse(input.input)
          : { success: true, data: input.input };
        if (!parsed.success)
          throw new Error(`invalid input for ${input.name}: ${JSON.stringify(input.input)}`);
        const value = await tool.run(parsed.data as never, { runId: record.id, signal });
        output = { content: typeof value === 'string' ? value : JSON.stringify(value), isError: false };
      } catch (err) {
        output = { content: (err as Error).message, isError: true };
        code = 'tool_error';
      }
    }
    if (run.halted) return never();
    const entry = await this.rt.store.appendLedger({
      requestId: newId('req'),
      identity,
      kind: 'tool',
      name: input.name,
      tokens: { ...NO_TOKENS },
      reserved: 0,
      cost: 0,
      outcome: output.isError ? 'error' : 'ok',
      code,
      latencyMs: Math.round(performance.now() - started),
    });
    await this.journaled(run, { key, kind: 'tool', name: input.name, result: output, ledgerId: entry.id });
    return output;
  }
}

function runBudget(record: RunRecord) {
  return { ceiling: record.limits.spend, window: 'total' as const, owner: `run ${record.id}` };
}

/** Content address of a call. The agent loop's inputs are unique per call (the conversation
 * grows; tool calls carry the model's tool_use id); a custom machine that makes the very same
 * call twice gets the first answer again. */
function journalKey(kind: 'model' | 'tool', input: unknown): string {
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
