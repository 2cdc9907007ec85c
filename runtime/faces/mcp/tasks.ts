import type {
  CreateTaskOptions,
  TaskStore,
} from '@modelcontextprotocol/sdk/experimental/tasks/interfaces.js';
import type { CallToolResult, Request, RequestId, Result, Task } from '@modelcontextprotocol/sdk/types.js';
import type { Operator } from '../../auth/operators.ts';
import type { Services } from '../../compose.ts';
import { newId } from '../../ids.ts';
import type { RunRecord } from '../../store/runs.ts';
import type { Api } from './api.ts';
import { mcpRunView } from './run-view.ts';
import { onRunChange } from './watch.ts';

/**
 * `start_run` as an MCP task (spec 2025-11-25, the SDK's experimental tasks): the task is the
 * run. Its status is read from the run each time it is asked for: `working` while the run runs,
 * `input_required` while it waits in the approval queue, then `completed` (done), `cancelled`
 * (killed) or `failed` (failed, denied, expired). `tasks/result` answers with the run; `tasks/cancel`
 * kills the run through the operator API (so it needs the operator role and is audited).
 *
 * The SDK calls a task tool's `createTask` for plain (not task-augmented) calls too, and then
 * polls the store until the task is terminal. The store tells the two apart by the request's
 * `task` field: a plain call's entry is private to that call (never listed), is made terminal by
 * the tool before it returns, and is dropped once the SDK has read its result.
 */

const DAY = 86_400_000;
const MIN_TTL = 60_000;
const MAX_TTL = 7 * DAY;
const PAGE = 50;

interface Fixed {
  status: Task['status'];
  statusMessage?: string;
  result: CallToolResult;
}

interface Entry {
  taskId: string;
  /** The operator (token name) that created it: every session of that operator sees it. */
  owner: string;
  /** The session store that created it (gets its status notifications). */
  session: SessionTasks;
  /** A task-augmented call; false for a plain call going through the SDK's task path. */
  augmented: boolean;
  runId?: string;
  createdAt: number;
  ttl: number | null;
  pollInterval: number;
  /** Set when the task's outcome does not come from a run (refused before the run started). */
  fixed?: Fixed;
  fixedAt?: number;
  timer?: NodeJS.Timeout;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The task status that mirrors a run's state, with a line saying why. */
export function taskStatusOf(run: RunRecord | undefined): { status: Task['status']; message: string } {
  if (!run) return { status: 'failed', message: 'the run is gone from the run store' };
  const d = run.detail ?? {};
  switch (run.state) {
    case 'running':
      return { status: 'working', message: `run ${run.id} running: ${run.steps} steps` };
    case 'suspended':
      return {
        status: 'input_required',
        message:
          `run ${run.id} suspended (${run.reason ?? 'unknown'}): waiting for a decision on approval ` +
          `${run.id}.${run.suspensions} (decide_approval, the inbox or \`chokepoint approvals\`)`,
      };
    case 'done':
      return { status: 'completed', message: `run ${run.id} done in ${run.steps} steps` };
    case 'killed':
      return {
        status: 'cancelled',
        message: `run ${run.id} killed${d.by ? ` by ${String(d.by)}` : ''}${d.why ? `: ${String(d.why)}` : ''}`,
      };
    case 'failed':
      return { status: 'failed', message: `run ${run.id} failed: ${run.error ?? run.reason ?? 'error'}` };
    default:
      return {
        status: 'failed',
        message: `run ${run.id} ${run.state}${d.by ? ` by ${String(d.by)}` : ''}${d.why ? `: ${String(d.why)}` : ''}`,
      };
  }
}

/** The task entries of one server (shared by its sessions). */
export class RunTasks {
  readonly entries = new Map<string, Entry>();

  constructor(
    readonly rt: Services,
    readonly opts: { pollMs?: number; defaultTtlMs?: number } = {},
  ) {}

  /** The task store of one MCP session, acting as its operator. */
  session(operator: Operator, api: Api): SessionTasks {
    return new SessionTasks(this, operator, api);
  }

  drop(taskId: string): void {
    const e = this.entries.get(taskId);
    if (e?.timer) clearTimeout(e.timer);
    this.entries.delete(taskId);
  }

  close(): void {
    for (const e of this.entries.values()) if (e.timer) clearTimeout(e.timer);
    this.entries.clear();
  }
}

export class SessionTasks implements TaskStore {
  /** Sends `notifications/tasks/status` to this session (set by the server). */
  notify?: (task: Task) => void;
  private readonly sent = new Map<string, string>();
  private readonly off: () => void;

  constructor(
    private readonly shared: RunTasks,
    readonly operator: Operator,
    private readonly api: Api,
  ) {
    this.off = onRunChange(shared.rt, (r) => {
      for (const e of shared.entries.values()) {
        if (e.session !== this || e.runId !== r.id || !e.augmented) continue;
        void this.getTask(e.taskId)
          .then((task) => {
            if (!task || this.sent.get(task.taskId) === task.status) return;
            this.sent.set(task.taskId, task.status);
            this.notify?.(task);
          })
          .catch(() => {});
      }
    });
  }

  dispose(): void {
    this.off();
  }

  private entry(taskId: string): Entry | undefined {
    const e = this.shared.entries.get(taskId);
    return e && e.owner === this.operator.name ? e : undefined;
  }

  /** Whether this task came from a task-augmented call (false: a plain call). */
  isAugmented(taskId: string): boolean {
    return this.entry(taskId)?.augmented ?? false;
  }

  /** The task is this run from now on. */
  bind(taskId: string, runId: string): void {
    const e = this.entry(taskId);
    if (e) e.runId = runId;
  }

  /** Ends a task whose outcome does not come from a run (a plain call, or a refused start). */
  settle(taskId: string, status: Task['status'], result: CallToolResult, statusMessage?: string): void {
    const e = this.entry(taskId);
    if (!e) return;
    e.fixed = { status, result, ...(statusMessage ? { statusMessage } : {}) };
    e.fixedAt = Date.now();
  }

  async createTask(
    params: CreateTaskOptions,
    _requestId: RequestId,
    request: { method: string; params?: Request['params'] },
    _sessionId?: string,
  ): Promise<Task> {
    const augmented = Boolean((request.params as { task?: unknown } | undefined)?.task);
    const asked = params.ttl ?? this.shared.opts.defaultTtlMs ?? DAY;
    const ttl = asked === null ? null : Math.min(MAX_TTL, Math.max(MIN_TTL, asked));
    const taskId = newId('task');
    const e: Entry = {
      taskId,
      owner: this.operator.name,
      session: this,
      augmented,
      createdAt: Date.now(),
      ttl,
      pollInterval: params.pollInterval ?? this.shared.opts.pollMs ?? 1000,
    };
    // A plain call's entry lives as long as the call; a task's as long as its ttl.
    const life = augmented ? ttl : 10 * 60_000;
    if (life !== null) {
      e.timer = setTimeout(() => this.shared.drop(taskId), life);
      e.timer.unref();
    }
    this.shared.entries.set(taskId, e);
    return this.taskOf(e);
  }

  async getTask(taskId: string): Promise<Task | null> {
    const e = this.entry(taskId);
    return e ? this.taskOf(e) : null;
  }

  private async taskOf(e: Entry): Promise<Task> {
    const base = {
      taskId: e.taskId,
      ttl: e.ttl,
      createdAt: iso(e.createdAt),
      pollInterval: e.pollInterval,
    };
    if (e.fixed) {
      return {
        ...base,
        status: e.fixed.status,
        lastUpdatedAt: iso(e.fixedAt ?? e.createdAt),
        ...(e.fixed.statusMessage ? { statusMessage: e.fixed.statusMessage } : {}),
      };
    }
    if (!e.runId) {
      return {
        ...base,
        status: 'working',
        lastUpdatedAt: iso(e.createdAt),
        statusMessage: 'starting the run',
      };
    }
    const run = await this.shared.rt.runs?.get(e.runId);
    const { status, message } = taskStatusOf(run);
    return { ...base, status, statusMessage: message, lastUpdatedAt: iso(run?.updatedAt ?? e.createdAt) };
  }

  async storeTaskResult(taskId: string, status: 'completed' | 'failed', result: Result): Promise<void> {
    this.settle(taskId, status, result as CallToolResult);
  }

  async getTaskResult(taskId: string): Promise<Result> {
    const e = this.entry(taskId);
    if (!e) throw new Error(`no task ${taskId}`);
    if (e.fixed) {
      // A plain call's result is read once, by the SDK, to answer the call.
      if (!e.augmented) this.shared.drop(taskId);
      return e.fixed.result;
    }
    if (!e.runId) throw new Error(`task ${taskId} has no result yet`);
    const view = await mcpRunView(this.api, e.runId);
    const { status } = taskStatusOf(await this.shared.rt.runs?.get(e.runId));
    return {
      content: [{ type: 'text', text: JSON.stringify(view, null, 2) }],
      structuredContent: view,
      ...(status === 'completed' ? {} : { isError: true }),
    };
  }

  /**
   * `tasks/cancel` (the SDK checks the task is not terminal, then sets `cancelled` here): the run
   * is killed through the operator API, as this session's operator. A refusal (a viewer token)
   * becomes the JSON-RPC error of tasks/cancel, with the API's message naming the role.
   */
  async updateTaskStatus(taskId: string, status: Task['status'], statusMessage?: string): Promise<void> {
    const e = this.entry(taskId);
    if (!e) throw new Error(`no task ${taskId}`);
    if (e.runId && !e.fixed) {
      if (status !== 'cancelled') return; // the run's state is the task's status
      const res = await this.api<{ error?: { message?: string } }>(
        'POST',
        `/api/runs/${encodeURIComponent(e.runId)}/kill`,
        { reason: 'cancelled from an MCP client (tasks/cancel)' },
      );
      // 409: the run ended meanwhile; its state says how.
      if (res.status >= 300 && res.status !== 409) {
        throw new Error(res.body.error?.message ?? `could not kill run ${e.runId} (HTTP ${res.status})`);
      }
      return;
    }
    const result: CallToolResult = e.fixed?.result ?? {
      content: [{ type: 'text', text: statusMessage ?? status }],
      isError: status !== 'completed',
    };
    this.settle(taskId, status, result, statusMessage);
  }

  async listTasks(cursor?: string): Promise<{ tasks: Task[]; nextCursor?: string }> {
    const mine = [...this.shared.entries.values()]
      .filter((e) => e.owner === this.operator.name && e.augmented)
      .sort((a, b) => b.createdAt - a.createdAt || b.taskId.localeCompare(a.taskId));
    let start = 0;
    if (cursor) {
      const at = mine.findIndex((e) => e.taskId === cursor);
      if (at < 0) throw new Error(`invalid cursor ${JSON.stringify(cursor)}`);
      start = at + 1;
    }
    const page = mine.slice(start, start + PAGE);
    const tasks = await Promise.all(page.map((e) => this.taskOf(e)));
    return {
      tasks,
      ...(start + PAGE < mine.length ? { nextCursor: page[page.length - 1]!.taskId } : {}),
    };
  }
}
