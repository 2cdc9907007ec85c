import { type FSWatcher, watch } from 'node:fs';
import { McpPool } from '../../adapters/mcp/client.ts';
import { resolveRunAs } from '../../adapters/mcp/stdio-transport.ts';
import type { Runtime } from '../runtime.ts';
import type { Actor } from '../store/port.ts';
import type { RunQueue } from '../store/run-queue.ts';
import type { JournalEntry, RunFilter, RunRecord, RunStore, RunSummary } from '../store/runs.ts';
import type { Workflow } from './define.ts';
import { Dispatcher, type DispatchOptions } from './dispatch.ts';
import {
  type ResumeOptions,
  type RunInputError,
  RunNotFoundError,
  RunStateError,
  type Starter,
  WorkflowExecutor,
} from './executor.ts';
import { type InvalidWorkflow, loadWorkflows, type WorkflowSet } from './loader.ts';
import type { RunsPort } from './port.ts';
import { freezePrefix } from './prompt.ts';

/**
 * The workflow side of a running Chokepoint: the loaded workflow files, the executor that runs
 * them, the durable run store, recovery at start and reload on change. The operator API, the
 * CLI (through the API) and the MCP server all start, list, inspect and kill runs through this.
 */

export class WorkflowNotFoundError extends Error {
  readonly code = 'not_found';
  constructor(id: string, version?: string) {
    super(
      version === undefined
        ? `no workflow '${id}' (see GET /api/workflows)`
        : `no workflow '${id}' version ${version}`,
    );
    this.name = 'WorkflowNotFoundError';
  }
}

export interface WorkflowInfo {
  id: string;
  version: string;
  description: string;
  file: string;
  models: Record<string, string>;
  limits: { spend: number; time: number; steps: number };
  approvals: string[];
  tools: string[];
  prefixHash: string;
  /** JSON Schema of the run input. */
  input: Record<string, unknown>;
  /** False for an old version kept loaded only because runs are pinned to it. */
  latest: boolean;
}

export type { InvalidWorkflow, RunInputError, RunNotFoundError, RunStateError };

export interface RunHostOptions {
  dir: string;
  runs: RunStore;
  /** Reload the folder when a file changes (development). */
  watch?: boolean;
  /** Resume the running runs nobody holds at start (default true). */
  recover?: boolean;
  leaseMs?: number;
  killPollMs?: number;
  /**
   * The runs queue: starts and resumes are enqueued and whichever worker is free runs them (on
   * both backends). Without one, runs run in the process that starts them (tests, benches).
   */
  queue?: RunQueue;
  /** This process's share of the queue's work. */
  dispatch?: DispatchOptions;
}

function loadOptions(rt: Runtime, mcp: McpPool) {
  return { mcp, mcpListTimeoutMs: rt.config.mcp.connectTimeoutMs };
}

export class RunHost implements RunsPort {
  private watcher?: FSWatcher;
  private reloadTimer?: NodeJS.Timeout;
  private recoverTimer?: NodeJS.Timeout;
  private generation = 0;

  private constructor(
    private readonly rt: Runtime,
    readonly executor: WorkflowExecutor,
    private set: WorkflowSet,
    private readonly opts: RunHostOptions,
    /** The connections to the workflows' MCP servers, shared across reloads, closed at shutdown. */
    readonly mcp: McpPool,
  ) {
    if (opts.queue) this.dispatcher = new Dispatcher(opts.queue, this, opts.dispatch);
  }

  /** The runs queue and this process's workers, when there is a queue. */
  private readonly dispatcher?: Dispatcher;

  static async open(rt: Runtime, opts: RunHostOptions): Promise<RunHost> {
    const executor = new WorkflowExecutor(rt, {
      runs: opts.runs,
      leaseMs: opts.leaseMs,
      killPollMs: opts.killPollMs,
    });
    // `mcp.runAs` (config), else $CHOKEPOINT_MCP_RUN_AS; as root the default is `nobody`.
    const runAs = resolveRunAs(
      (rt.config.mcp as { runAs?: string }).runAs ?? process.env.CHOKEPOINT_MCP_RUN_AS,
    );
    if (runAs) rt.log.debug('stdio MCP servers run as another user', { user: runAs.name, uid: runAs.uid });
    const mcp = new McpPool({
      runAs: runAs ?? null,
      connectTimeoutMs: rt.config.mcp.connectTimeoutMs,
      callTimeoutMs: rt.config.mcp.timeoutMs,
      log: (level, message, fields) => rt.log[level](message, fields),
    });
    const host = new RunHost(rt, executor, await loadWorkflows(opts.dir, loadOptions(rt, mcp)), opts, mcp);
    await host.checkPrefixes(host.set);
    host.report(host.set);
    host.retryMcpLater();
    if (opts.recover !== false) {
      await host.recover();
      // A replica that dies leaves its runs leased; whoever is alive picks them up after the lease.
      host.recoverTimer = setInterval(() => void host.recover().catch(() => {}), opts.leaseMs ?? 30_000);
      host.recoverTimer.unref();
    }
    if (opts.watch) host.watch();
    return host;
  }

  get runs(): RunStore {
    return this.executor.runs;
  }

  /** Every loaded workflow (latest version first per id) and every file that did not load. */
  workflows(): { workflows: WorkflowInfo[]; invalid: InvalidWorkflow[] } {
    const list = this.set
      .list()
      .sort((a, b) =>
        a.id === b.id
          ? b.version.localeCompare(a.version, 'en', { numeric: true })
          : a.id.localeCompare(b.id),
      );
    return {
      workflows: list.map((w) => this.info(w, this.set.get(w.id) === w)),
      invalid: this.set.invalid,
    };
  }

  workflow(id: string, version?: string): Workflow {
    const w = this.set.get(id, version);
    if (!w) throw new WorkflowNotFoundError(id, version);
    return w;
  }

  /**
   * Starts this process's workers on the queue, after giving the queue back the runs left
   * `running` (a crash, a stopped worker): idempotent by job id, so a run whose job is waiting or
   * being worked on is left alone. Called once whoever acts on stopped runs is listening.
   */
  async startWork(): Promise<void> {
    if (!this.dispatcher) return;
    let cursor: string | undefined;
    do {
      const page = await this.list({ state: 'running', limit: 500, cursor });
      cursor = page.next;
      for (const r of page.runs) await this.dispatcher.enqueue(r as RunRecord, 'recover');
    } while (cursor);
    this.dispatcher.start();
  }

  /** Waiting and active work on the runs queue (0 without one). */
  queueDepth(): Promise<number> {
    return this.dispatcher?.queue.depth() ?? Promise.resolve(0);
  }

  onChange(listener: (run: RunSummary) => void): () => void {
    this.executor.events.on('run', listener);
    return () => this.executor.events.off('run', listener);
  }

  onStopped(listener: (run: RunRecord) => Promise<void>): () => void {
    return this.dispatcher?.onStopped(listener) ?? (() => {});
  }

  journal(id: string): Promise<JournalEntry[]> {
    return this.runs.journal(id);
  }

  approvalTimeout(workflow: string, version: string): number | undefined {
    return this.set.get(workflow, version)?.approvalTimeout;
  }

  /** Starts a run of the latest (or the given) version; throws `RunInputError` naming the field. */
  async start(id: string, input: unknown, who: Starter, opts: { version?: string } = {}): Promise<RunRecord> {
    const w = this.workflow(id, opts.version);
    if (!this.dispatcher) return this.executor.start(w, input, who);
    const run = await this.executor.start(w, input, who, { launch: false });
    await this.dispatcher.enqueue(run, 'start');
    return run;
  }

  get(id: string): Promise<RunRecord | undefined> {
    return this.executor.get(id);
  }

  async mustGet(id: string): Promise<RunRecord> {
    const r = await this.executor.get(id);
    if (!r) throw new RunNotFoundError(id);
    return r;
  }

  list(filter: RunFilter = {}): Promise<{ runs: RunSummary[]; next?: string }> {
    return this.executor.list(filter);
  }

  wait(id: string, timeoutMs?: number): Promise<RunRecord> {
    return this.executor.wait(id, timeoutMs);
  }

  kill(id: string, by: Actor): Promise<RunRecord> {
    return this.executor.kill(id, by);
  }

  async resume(id: string, opts: ResumeOptions = {}): Promise<RunRecord> {
    const r = await this.mustGet(id);
    if (!this.dispatcher) return this.executor.resume(id, this.pinned(r), opts);
    const run = await this.executor.prepareResume(id, this.pinned(r), opts);
    await this.dispatcher.enqueue(run, 'resume');
    return run;
  }

  /** Applies a resume decision without running the run here (a worker `adopt`s it). */
  async prepareResume(id: string, opts: ResumeOptions = {}): Promise<RunRecord> {
    const r = await this.mustGet(id);
    return this.executor.prepareResume(id, this.pinned(r), opts);
  }

  /** The loaded workflow version a run is pinned to, if loaded. */
  loaded(id: string, version: string): Workflow | undefined {
    return this.set.get(id, version);
  }

  /** Runs a `running` run here from its last step (or waits while another process has it). */
  adopt(id: string): Promise<RunRecord> {
    return this.executor.adopt(id, (wf, v) => this.set.get(wf, v));
  }

  private pinned(r: RunRecord): Workflow {
    const w = this.set.get(r.workflow, r.version);
    if (!w) {
      throw new RunStateError(
        `run ${r.id} is pinned to ${r.workflow}@${r.version}, which is not loaded: restore that version's file to resume it`,
      );
    }
    return w;
  }

  end(id: string, state: 'denied' | 'expired', by: Actor): Promise<RunRecord> {
    return this.executor.end(id, state, by);
  }

  recover(): Promise<{ resumed: string[]; orphaned: RunSummary[] }> {
    return this.executor.recover((id, version) => this.set.get(id, version));
  }

  /** Loads the folder again. Versions that runs are pinned to stay loaded even if their file
   * changed or went away; a changed prompt under an old version number is refused. */
  async reload(): Promise<{ workflows: WorkflowInfo[]; invalid: InvalidWorkflow[] }> {
    const next = await loadWorkflows(this.opts.dir, {
      ...loadOptions(this.rt, this.mcp),
      fresh: ++this.generation,
    });
    await this.checkPrefixes(next);
    for (const old of this.set.list()) {
      if (next.get(old.id, old.version)) continue;
      const pinned =
        (await this.runs.list({ workflow: old.id, state: 'suspended', limit: 1000 })).runs.some(
          (r) => r.version === old.version,
        ) ||
        (await this.runs.list({ workflow: old.id, state: 'running', limit: 1000 })).runs.some(
          (r) => r.version === old.version,
        );
      if (pinned) {
        next.add(old, old.file);
        this.rt.log.warn('kept a removed workflow version loaded: runs are pinned to it', {
          workflow: old.id,
          version: old.version,
        });
      }
    }
    this.set = next;
    this.report(next);
    this.retryMcpLater();
    return this.workflows();
  }

  private mcpRetry?: NodeJS.Timeout;

  /** While a workflow waits for an MCP server that could not be reached, tries it again every
   * `mcp.retry` (without importing the files again); once it answers, the workflow loads. */
  private retryMcpLater(): void {
    clearTimeout(this.mcpRetry);
    if (this.set.awaitingMcp.length === 0 || this.closing) return;
    this.mcpRetry = setTimeout(() => void this.retryMcp(), this.rt.config.mcp.retryMs);
    this.mcpRetry.unref();
  }

  private async retryMcp(): Promise<void> {
    const set = this.set;
    try {
      const added = await set.retryMcp();
      if (set !== this.set || this.closing) return;
      if (added.length) {
        await this.checkPrefixes(set);
        this.rt.log.info('workflows loaded once their MCP servers answered', {
          workflows: added.map((w) => `${w.id}@${w.version}`),
        });
      }
    } catch (err) {
      this.rt.log.error('retrying MCP servers failed', { error: err });
    }
    if (set === this.set) this.retryMcpLater();
  }

  private closing?: Promise<void>;

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private stopping?: Promise<void>;

  /**
   * Stops working: the queue takes no new work and the runs this process is running are handed
   * back (left `running`, so the queue gives them to another worker or the next start). The
   * listeners of stopped runs are still called for runs that stop meanwhile.
   */
  stopWork(): Promise<void> {
    this.stopping ??= Promise.all([this.dispatcher?.close(), this.executor.close()]).then(() => {});
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.watcher?.close();
    clearTimeout(this.reloadTimer);
    clearInterval(this.recoverTimer);
    clearTimeout(this.mcpRetry);
    await this.stopWork();
    await this.runs.close();
    await this.mcp.close();
  }

  private info(w: Workflow & { file: string }, latest: boolean): WorkflowInfo {
    let input: Record<string, unknown> = {};
    try {
      const { $schema: _, ...rest } =
        (w.input as unknown as { toJSONSchema?: () => Record<string, unknown> }).toJSONSchema?.() ?? {};
      input = rest;
    } catch {
      input = {};
    }
    const prefix = freezePrefix(w);
    return {
      id: w.id,
      version: w.version,
      description: w.description,
      file: w.file,
      models: w.models as Record<string, string>,
      limits: w.limits,
      approvals: w.approvals,
      tools: prefix.tools.map((t) => t.name),
      prefixHash: prefix.hash,
      input,
      latest,
    };
  }

  /** A version whose prompt changed since its first run is not loaded (it would break caching
   * and the pinned runs): the file is listed as invalid, telling to bump the version. */
  private async checkPrefixes(set: WorkflowSet): Promise<void> {
    for (const w of set.list()) {
      const problems = await this.checkModels(w);
      if (problems.length) {
        set.remove(w.id, w.version);
        set.invalid.push({ file: w.file, problems });
        continue;
      }
      const hash = freezePrefix(w).hash;
      const known = await this.runs.recordPrefix(w.id, w.version, hash);
      if (known !== hash) {
        set.remove(w.id, w.version);
        set.invalid.push({
          file: w.file,
          problems: [
            {
              field: 'prefix',
              message: `${w.id} version ${w.version} already ran with prefix ${known}; this file's prefix is ${hash}. A changed prompt or tool list needs a new version`,
            },
          ],
        });
      }
    }
  }

  /** Every model a workflow names must be a routing class or a priced model, allowed by the
   * routing rules for runs started as `workflows.runAs`. */
  private async checkModels(w: Workflow): Promise<{ field: string; message: string }[]> {
    const problems: { field: string; message: string }[] = [];
    const classes = this.rt.config.routing.classes;
    const { team, env } = this.rt.config.workflows.runAs;
    for (const [step, wanted] of Object.entries(w.models as Record<string, string>)) {
      const model = classes[wanted]?.[0] ?? wanted;
      if (!this.rt.prices.lookup(model)) {
        const names = Object.keys(classes);
        problems.push({
          field: `models.${step}`,
          message: `'${wanted}' is neither a routing class${names.length ? ` (${names.join(', ')})` : ''} nor a model with a known price`,
        });
        continue;
      }
      try {
        await this.rt.router.route(wanted, { team, env, seat: 'workflow-check', workflow: w.id });
      } catch (err) {
        problems.push({ field: `models.${step}`, message: (err as Error).message });
      }
    }
    return problems;
  }

  private report(set: WorkflowSet): void {
    const names = set.list().map((w) => `${w.id}@${w.version}`);
    this.rt.log.info('workflows loaded', { dir: set.dir, workflows: names, invalid: set.invalid.length });
    for (const bad of set.invalid) {
      for (const p of bad.problems) {
        this.rt.log.error('invalid workflow file', { file: bad.file, field: p.field, problem: p.message });
      }
    }
  }

  private watch(): void {
    this.watcher = watch(this.opts.dir, () => {
      clearTimeout(this.reloadTimer);
      this.reloadTimer = setTimeout(() => {
        this.reload().catch((err) => this.rt.log.error('workflow reload failed', { error: err }));
      }, 150);
    });
    this.watcher.unref();
  }
}
