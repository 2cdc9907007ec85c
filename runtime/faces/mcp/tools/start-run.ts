import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { RunResponse } from '../../views/runs.ts';
import { ApiRefusal, call, unwrap } from '../api.ts';
import { runUri } from '../resources.ts';
import { mcpRunView } from '../run-view.ts';
import { type Extra, failed, json, type ToolContext, toolError } from '../tool.ts';
import { followRun, progressLine } from '../watch.ts';

/**
 * `start_run`: starts a run. A plain call returns the run as started, or with `wait` follows it
 * (progress notifications) until it ends or suspends; called as an MCP task it returns at once
 * and the task follows the run (see tasks.ts).
 */

const startArgs = {
  workflow: z.string().min(1).describe('The workflow id (see list_workflows)'),
  input: z
    .record(z.string(), z.unknown())
    .describe("The run input: a JSON object matching the workflow's input schema"),
  version: z
    .union([z.string(), z.number().int()])
    .optional()
    .describe('Pin a loaded version (default: the latest)'),
  team: z.string().optional().describe('Run as this team (default: workflows.runAs)'),
  env: z.string().optional().describe('Run as this env (default: workflows.runAs)'),
  reason: z.string().optional().describe('Why (goes to the audit log)'),
  wait: z
    .union([z.boolean(), z.number().min(0)])
    .optional()
    .describe(
      'true: follow the run until it ends or suspends (progress notifications every few seconds and on ' +
        'every step), then return it; a number: at most that many seconds. Ignored when called as a task.',
    ),
  kill_on_cancel: z
    .boolean()
    .optional()
    .describe('When the client cancels a waiting call, kill the run too (default: the run goes on)'),
};
type StartArgs = z.infer<z.ZodObject<typeof startArgs>>;

/** The `POST /api/runs` body; the audit reason names the MCP client when none is given. */
function startBody(ctx: ToolContext, a: StartArgs) {
  const client = ctx.server.server.getClientVersion()?.name;
  return {
    workflow: a.workflow,
    input: a.input,
    ...(a.version !== undefined ? { version: a.version } : {}),
    ...(a.team ? { team: a.team } : {}),
    ...(a.env ? { env: a.env } : {}),
    reason: a.reason?.trim() || `started from an MCP client${client ? ` (${client})` : ''}`,
  };
}

/** The plain call: start, then (with wait) follow the run until it ends or suspends. */
async function startPlain(ctx: ToolContext, a: StartArgs, extra: Extra): Promise<CallToolResult> {
  const { api, rt } = ctx;
  const started = await call<RunResponse>(api, 'POST', '/api/runs', startBody(ctx, a));
  const id = started.run.id;
  const waitMs =
    a.wait === true ? ctx.maxWaitMs : typeof a.wait === 'number' ? Math.min(a.wait * 1000, ctx.maxWaitMs) : 0;
  if (!waitMs)
    return json({ ...(await mcpRunView(api, id)), follow: `get_run or the ${runUri(id)} resource` });
  const token = extra._meta?.progressToken;
  let progress = 0;
  const { stopped } = await followRun(rt, id, {
    signal: extra.signal,
    deadline: Date.now() + waitMs,
    pollMs: ctx.pollMs,
    progressMs: ctx.progressMs,
    onProgress: async (run) => {
      if (token === undefined) return;
      await extra
        .sendNotification({
          method: 'notifications/progress',
          params: { progressToken: token, progress: ++progress, message: await progressLine(rt, run) },
        })
        .catch(() => {});
    },
  });
  if (stopped === 'aborted') {
    // The client stopped waiting; the run goes on unless it asked otherwise.
    if (a.kill_on_cancel) {
      await api('POST', `/api/runs/${encodeURIComponent(id)}/kill`, {
        reason: 'the MCP client cancelled start_run (kill_on_cancel)',
      });
    }
    return json({ run: { id }, cancelled: true });
  }
  // The SDK's client handles a notification a microtask after it reads it, a response at once:
  // when both come in one read (stdio) the last progress would be dropped. Keep them apart.
  if (token !== undefined) await new Promise((r) => setTimeout(r, 25));
  return json(await mcpRunView(api, id));
}

export function startRun(ctx: ToolContext): void {
  const { tasks, api } = ctx;
  ctx.server.experimental.tasks.registerToolTask(
    'start_run',
    {
      title: 'Start a run',
      description:
        'Starts a run of a workflow (operator role). Without wait, returns the run as started; with wait: true, ' +
        'follows it until it ends (done, failed, killed …) or suspends (waiting for approval, with the approval ' +
        "id), reporting progress. Called as an MCP task it returns at once; the task's status follows the run " +
        '(working, input_required while it waits for a decision, completed, failed, cancelled) and tasks/cancel kills it.',
      inputSchema: startArgs,
      execution: { taskSupport: 'optional' },
      annotations: { destructiveHint: false, openWorldHint: true },
    },
    {
      createTask: async (args, extra) => {
        const a = args as StartArgs;
        const created = await extra.taskStore.createTask({ ttl: extra.taskRequestedTtl });
        const taskId = created.taskId;
        if (!tasks.isAugmented(taskId)) {
          // A plain call: do it all here and hand the SDK a finished task with the call's result.
          const result = await startPlain(ctx, a, extra).catch((err: unknown) =>
            failed(ctx, err, 'MCP start_run failed'),
          );
          tasks.settle(taskId, 'completed', result);
          return { task: (await tasks.getTask(taskId))! };
        }
        const res = await api<RunResponse>('POST', '/api/runs', startBody(ctx, a));
        if (res.status !== 201) {
          // Refused before the run started (a viewer, a bad input): the task fails with the reason.
          const message = refusalMessage(res);
          tasks.settle(taskId, 'failed', toolError(message), message);
        } else {
          tasks.bind(taskId, res.body.run.id);
        }
        return { task: (await tasks.getTask(taskId))! };
      },
      getTask: async (_args, extra) => (await tasks.getTask(extra.taskId))!,
      getTaskResult: async (_args, extra) => (await tasks.getTaskResult(extra.taskId)) as CallToolResult,
    },
  );
}

function refusalMessage(res: { status: number; body: unknown }): string {
  try {
    unwrap(res);
  } catch (err) {
    if (err instanceof ApiRefusal) return err.message;
  }
  return `HTTP ${res.status}`;
}
