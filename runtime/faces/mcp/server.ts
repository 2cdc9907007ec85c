import { readFileSync } from 'node:fs';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ServerNotification } from '@modelcontextprotocol/sdk/types.js';
import type { Hono } from 'hono';
import type { Operator } from '../../auth/operators.ts';
import type { Services } from '../../compose.ts';
import { type Api, inProcessApi } from './api.ts';
import { registerResources } from './resources.ts';
import { watchSubscriptions } from './subscriptions.ts';
import type { RunTasks } from './tasks.ts';
import type { RegisterTool, ToolContext } from './tool.ts';
import { decideApproval } from './tools/decide-approval.ts';
import { getRun } from './tools/get-run.ts';
import { getSpend } from './tools/get-spend.ts';
import { kill } from './tools/kill.ts';
import { listApprovals } from './tools/list-approvals.ts';
import { listRuns } from './tools/list-runs.ts';
import { listWorkflows } from './tools/list-workflows.ts';
import { startRun } from './tools/start-run.ts';

/**
 * Chokepoint as an MCP server: one `McpServer` per session, bound to the runtime and to the
 * operator whose token opened the session. Every tool acts through the operator API in-process
 * (see api.ts), so roles, validation and audit are the API's.
 *
 * Tools (one file each in tools/): list_workflows, start_run (plain, with `wait` and progress
 * notifications, or as an MCP task), get_run, list_runs, list_approvals, decide_approval,
 * get_spend, kill. Resources (subscribable, resources.ts and subscriptions.ts):
 * chokepoint://runs/{id}, chokepoint://budgets/{scope}.
 */

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** Every tool, in the order clients list them. */
const TOOLS: RegisterTool[] = [
  listWorkflows,
  startRun,
  getRun,
  listRuns,
  listApprovals,
  decideApproval,
  getSpend,
  kill,
];

export interface McpOptions {
  /** A waiting start_run reports progress at least this often (ms; default 2000). */
  progressMs?: number;
  /** How often a followed run or a subscribed resource is re-read (ms; default 500). */
  pollMs?: number;
  /** The longest start_run waits with `wait: true` (ms; default 1 hour). */
  maxWaitMs?: number;
}

export interface ChokepointMcp {
  server: McpServer;
  /** Stops watching (subscriptions, task notifications); the transport is closed by its owner. */
  close(): void;
}

const INSTRUCTIONS = `Chokepoint runs agent workflows under budgets (spend box, time box, step cap) and
approval gates. list_workflows shows what can run and each workflow's input schema; start_run
starts a run (wait: true follows it, with progress, until it ends or suspends; as a task it
returns at once and the task follows the run). A suspended run waits for a human: list_approvals
shows the queue, decide_approval approves, extends, denies or kills (operator role). Runs and
budgets are also resources (chokepoint://runs/{id}, chokepoint://budgets/{scope}) you can
subscribe to.`;

export function createMcpServer(
  rt: Services,
  ctx: { app: Hono; operator: Operator; tasks: RunTasks; options?: McpOptions },
): ChokepointMcp {
  const api: Api = inProcessApi(ctx.app, ctx.operator);
  const tasks = ctx.tasks.session(ctx.operator, api);
  const server = new McpServer(
    { name: 'chokepoint', title: 'Chokepoint', version: pkg.version },
    {
      instructions: INSTRUCTIONS,
      capabilities: {
        tools: { listChanged: false },
        resources: { subscribe: true, listChanged: false },
        tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } },
      },
      taskStore: tasks,
    },
  );
  tasks.notify = (task) => {
    server.server
      .notification({ method: 'notifications/tasks/status', params: task } as ServerNotification)
      .catch(() => {});
  };
  const tool: ToolContext = {
    rt,
    server,
    api,
    tasks,
    log: rt.log.child({ mcp: ctx.operator.name }),
    progressMs: ctx.options?.progressMs ?? 2000,
    pollMs: ctx.options?.pollMs ?? 500,
    maxWaitMs: ctx.options?.maxWaitMs ?? 3_600_000,
  };
  for (const register of TOOLS) register(tool);
  registerResources(tool);
  const stopWatching = watchSubscriptions(tool);
  return {
    server,
    close() {
      stopWatching();
      tasks.dispose();
    },
  };
}
