import { readFileSync } from 'node:fs';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  type CallToolResult,
  ErrorCode,
  McpError,
  type ServerNotification,
  type ServerRequest,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { Hono } from 'hono';
import { z } from 'zod';
import { APPROVAL_STATES } from '../../../approvals/port.ts';
import type { Operator } from '../../auth/operators.ts';
import { scopesOf } from '../../identity.ts';
import type { Runtime } from '../../runtime.ts';
import { RUN_STATES } from '../../workflows/run-store.ts';
import { type Api, ApiRefusal, call, inProcessApi, query, unwrap } from './api.ts';
import type { RunTasks } from './tasks.ts';
import { runView } from './views.ts';
import { followRun, onRunChange, progressLine } from './watch.ts';

/**
 * Chokepoint as an MCP server: one `McpServer` per session, bound to the runtime and to the
 * operator whose token opened the session. Every tool acts through the operator API in-process
 * (see api.ts), so roles, validation and audit are the API's.
 *
 * Tools: list_workflows, start_run (plain, with `wait` and progress notifications, or as an MCP
 * task), get_run, list_runs, list_approvals, decide_approval, get_spend, kill.
 * Resources (subscribable): chokepoint://runs/{id}, chokepoint://budgets/{scope}.
 */

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

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

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

const RUN_URI = /^chokepoint:\/\/runs\/([^/?#]+)$/;
const BUDGET_URI = /^chokepoint:\/\/budgets\/([^/?#]+)$/;

export const runUri = (id: string) => `chokepoint://runs/${id}`;
export const budgetUri = (scope: string) => `chokepoint://budgets/${scope}`;

type ResourceRef = { kind: 'run'; id: string } | { kind: 'budget'; scope: string };

function parseUri(uri: string): ResourceRef | undefined {
  const run = RUN_URI.exec(uri);
  if (run) return { kind: 'run', id: decodeURIComponent(run[1]!) };
  const budget = BUDGET_URI.exec(uri);
  if (budget) return { kind: 'budget', scope: decodeURIComponent(budget[1]!) };
  return undefined;
}

function json(value: unknown): CallToolResult {
  const structured =
    value && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : { value };
  return { content: [{ type: 'text', text: JSON.stringify(value, null, 2) }], structuredContent: structured };
}

function toolError(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

const INSTRUCTIONS = `Chokepoint runs agent workflows under budgets (spend box, time box, step cap) and
approval gates. list_workflows shows what can run and each workflow's input schema; start_run
starts a run (wait: true follows it, with progress, until it ends or suspends; as a task it
returns at once and the task follows the run). A suspended run waits for a human: list_approvals
shows the queue, decide_approval approves, extends, denies or kills (operator role). Runs and
budgets are also resources (chokepoint://runs/{id}, chokepoint://budgets/{scope}) you can
subscribe to.`;

export function createMcpServer(
  rt: Runtime,
  ctx: { app: Hono; operator: Operator; tasks: RunTasks; options?: McpOptions },
): ChokepointMcp {
  const progressMs = ctx.options?.progressMs ?? 2000;
  const pollMs = ctx.options?.pollMs ?? 500;
  const maxWaitMs = ctx.options?.maxWaitMs ?? 3_600_000;
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

  const log = rt.log.child({ mcp: ctx.operator.name });
  /** A tool body: its value as JSON, an API refusal as a tool error with the API's message. */
  const tool =
    <A>(fn: (args: A, extra: Extra) => Promise<unknown>) =>
    async (args: A, extra: Extra): Promise<CallToolResult> => {
      try {
        return json(await fn(args, extra));
      } catch (err) {
        if (err instanceof ApiRefusal) return toolError(err.message);
        log.error('MCP tool failed', { error: err });
        return toolError(`internal error: ${(err as Error).message}`);
      }
    };

  const readOnly = { readOnlyHint: true, openWorldHint: false } as const;

  server.registerTool(
    'list_workflows',
    {
      title: 'List workflows',
      description:
        'The workflows this server can run (latest version first), each with its input JSON Schema, ' +
        'limits (spend box in µ$, time box in ms, step cap), gated tools and models; and the files that did not load.',
      annotations: readOnly,
    },
    (extra) => tool(() => call(api, 'GET', '/api/workflows'))(undefined, extra),
  );

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

  const startBody = (a: StartArgs) => {
    const client = server.server.getClientVersion()?.name;
    return {
      workflow: a.workflow,
      input: a.input,
      ...(a.version !== undefined ? { version: a.version } : {}),
      ...(a.team ? { team: a.team } : {}),
      ...(a.env ? { env: a.env } : {}),
      reason: a.reason?.trim() || `started from an MCP client${client ? ` (${client})` : ''}`,
    };
  };

  /** The plain call: start, then (with wait) follow the run until it ends or suspends. */
  const startPlain = async (a: StartArgs, extra: Extra): Promise<CallToolResult> => {
    const started = await call<{ run: { id: string } }>(api, 'POST', '/api/runs', startBody(a));
    const id = started.run.id;
    const waitMs =
      a.wait === true ? maxWaitMs : typeof a.wait === 'number' ? Math.min(a.wait * 1000, maxWaitMs) : 0;
    if (!waitMs)
      return json({ ...(await runView(api, id)), follow: `get_run or the ${runUri(id)} resource` });
    const token = extra._meta?.progressToken;
    let progress = 0;
    const { stopped } = await followRun(rt, id, {
      signal: extra.signal,
      deadline: Date.now() + waitMs,
      pollMs,
      progressMs,
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
    return json(await runView(api, id));
  };

  server.experimental.tasks.registerToolTask(
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
          const result = await startPlain(a, extra).catch((err: unknown) => {
            if (err instanceof ApiRefusal) return toolError(err.message);
            log.error('MCP start_run failed', { error: err });
            return toolError(`internal error: ${(err as Error).message}`);
          });
          tasks.settle(taskId, 'completed', result);
          return { task: (await tasks.getTask(taskId))! };
        }
        const res = await api<{ run: { id: string }; error?: { message?: string } }>(
          'POST',
          '/api/runs',
          startBody(a),
        );
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

  server.registerTool(
    'get_run',
    {
      title: 'Get a run',
      description:
        'A run: state (and why it stopped), spend and time against its boxes, the approval it waits on, ' +
        'its last messages and output.',
      inputSchema: {
        id: z.string().min(1).describe('The run id (run_…)'),
        wait: z
          .number()
          .min(0)
          .max(300)
          .optional()
          .describe('Wait up to this many seconds for it to stop running'),
        journal: z.boolean().optional().describe('Include the full journal (every model and tool call)'),
      },
      annotations: readOnly,
    },
    tool((a: { id: string; wait?: number; journal?: boolean }) =>
      runView(api, a.id, { wait: a.wait, journal: a.journal }),
    ),
  );

  server.registerTool(
    'list_runs',
    {
      title: 'List runs',
      description: 'Runs, newest first, filtered by workflow, state and team; page with cursor.',
      inputSchema: {
        workflow: z.string().optional(),
        state: z.enum(RUN_STATES as [string, ...string[]]).optional(),
        team: z.string().optional(),
        limit: z.number().int().min(1).max(1000).optional(),
        cursor: z.string().optional().describe('The next cursor of the previous page'),
      },
      annotations: readOnly,
    },
    tool((a: Record<string, string | number | undefined>) =>
      call(
        api,
        'GET',
        `/api/runs${query({ workflow: a.workflow, state: a.state, team: a.team, limit: a.limit, cursor: a.cursor })}`,
      ),
    ),
  );

  server.registerTool(
    'list_approvals',
    {
      title: 'List approvals',
      description:
        'The approval queue: items suspended runs wait in (pending by default), with why they stopped, ' +
        'spend, time and last messages. Decide them with decide_approval.',
      inputSchema: {
        state: z
          .enum(['all', ...APPROVAL_STATES] as [string, ...string[]])
          .optional()
          .describe('Default: pending'),
        workflow: z.string().optional(),
        team: z.string().optional(),
        reason: z.string().optional().describe('spend_box, time_box, step_cap, approval_required, …'),
        run: z.string().optional().describe('Only the items of this run'),
        limit: z.number().int().min(1).max(1000).optional(),
        cursor: z.string().optional(),
      },
      annotations: readOnly,
    },
    tool((a: Record<string, string | number | undefined>) =>
      call(
        api,
        'GET',
        `/api/approvals${query({
          state: a.state,
          workflow: a.workflow,
          team: a.team,
          reason: a.reason,
          run: a.run,
          limit: a.limit,
          cursor: a.cursor,
        })}`,
      ),
    ),
  );

  server.registerTool(
    'decide_approval',
    {
      title: 'Decide an approval',
      description:
        'Decides a pending approval item, once (operator role; audited under your token): approve (resume; ' +
        'a gate lets the tool call run), extend (add spend and/or time, then resume), deny (a gate tells the ' +
        'model no; otherwise the run ends denied) or kill (the run ends killed).',
      inputSchema: {
        id: z.string().min(1).describe('The approval id (run_….N; see list_approvals)'),
        action: z.enum(['approve', 'extend', 'deny', 'kill']),
        reason: z.string().min(1).describe('Why (required; goes to the audit log)'),
        spend: z.string().optional().describe('extend: spend to add, e.g. "+$1.00"'),
        time: z.string().optional().describe('extend: time to add, e.g. "+10m"'),
      },
      annotations: { destructiveHint: true, openWorldHint: false },
    },
    tool((a: { id: string; action: string; reason: string; spend?: string; time?: string }) =>
      call(api, 'POST', `/api/approvals/${encodeURIComponent(a.id)}/${a.action}`, {
        reason: a.reason,
        ...(a.spend !== undefined ? { spend: a.spend } : {}),
        ...(a.time !== undefined ? { time: a.time } : {}),
      }),
    ),
  );

  server.registerTool(
    'get_spend',
    {
      title: 'Get spend',
      description:
        'Spend from the ledger grouped by team, env, seat, workflow, model or day over a period ' +
        '(default: the last 30 days), optionally within one scope (like GET /api/spend).',
      inputSchema: {
        by: z.enum(['team', 'env', 'seat', 'workflow', 'model', 'day']).optional().describe('Default: team'),
        since: z.string().optional().describe('ISO date/time or epoch ms'),
        until: z.string().optional().describe('ISO date/time or epoch ms (default: now)'),
        scope: z
          .string()
          .optional()
          .describe('global, team:<key>, env:<key>, seat:<key>, workflow:<id>, run:<id>'),
      },
      annotations: readOnly,
    },
    tool((a: Record<string, string | undefined>) =>
      call(api, 'GET', `/api/spend${query({ by: a.by, since: a.since, until: a.until, scope: a.scope })}`),
    ),
  );

  server.registerTool(
    'kill',
    {
      title: 'Kill',
      description:
        'Operator role. With run: kills that run at once (its in-flight call aborted). With scope: flips the ' +
        'kill switch on global, team:<key>, env:<key>, seat:<key>, workflow:<id> or run:<id>: every call it ' +
        'covers is refused from the next request, on every replica. Audited under your token.',
      inputSchema: {
        run: z.string().optional().describe('A run id to kill'),
        scope: z.string().optional().describe('A scope to kill-switch'),
        reason: z.string().min(1).describe('Why (required; goes to the audit log)'),
      },
      annotations: { destructiveHint: true, openWorldHint: false },
    },
    tool(async (a: { run?: string; scope?: string; reason: string }) => {
      if (Boolean(a.run) === Boolean(a.scope)) {
        throw new ApiRefusal(400, 'invalid_request', 'run', 'give exactly one of run (a run id) or scope');
      }
      if (a.run)
        return call(api, 'POST', `/api/runs/${encodeURIComponent(a.run)}/kill`, { reason: a.reason });
      return call(api, 'POST', '/api/kill-switches', { scope: a.scope, reason: a.reason });
    }),
  );

  // ---- resources ------------------------------------------------------------------------------

  const notFound = (err: unknown): never => {
    if (err instanceof ApiRefusal) {
      throw new McpError(err.status === 404 ? -32002 : ErrorCode.InvalidParams, err.message);
    }
    throw err;
  };

  server.registerResource(
    'run',
    new ResourceTemplate('chokepoint://runs/{id}', {
      list: async () => {
        const page = await call<{ runs: { id: string; workflow: string; state: string }[] }>(
          api,
          'GET',
          '/api/runs?limit=50',
        ).catch(() => ({ runs: [] }));
        return {
          resources: page.runs.map((r) => ({
            uri: runUri(r.id),
            name: `${r.workflow} ${r.id}`,
            description: `${r.workflow} run, ${r.state}`,
            mimeType: 'application/json',
          })),
        };
      },
    }),
    {
      title: 'Workflow run',
      description: 'A run: state, spend and time against its boxes, the approval it waits on, last messages',
      mimeType: 'application/json',
    },
    async (uri, vars) => {
      const id = decodeURIComponent(String(vars.id));
      const view = await runView(api, id).catch(notFound);
      return {
        contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(view, null, 2) }],
      };
    },
  );

  server.registerResource(
    'budget',
    new ResourceTemplate('chokepoint://budgets/{scope}', {
      list: async () => {
        const res = await call<{ budgets: { scope: string; spent_usd: string; ceiling_usd: string }[] }>(
          api,
          'GET',
          '/api/budgets',
        ).catch(() => ({ budgets: [] }));
        return {
          resources: res.budgets.map((b) => ({
            uri: budgetUri(b.scope),
            name: b.scope,
            description: `$${b.spent_usd} of $${b.ceiling_usd}`,
            mimeType: 'application/json',
          })),
        };
      },
    }),
    {
      title: 'Budget',
      description: 'A budget scope: ceiling, spent, reserved, window, state, and its recent audit entries',
      mimeType: 'application/json',
    },
    async (uri, vars) => {
      const scope = decodeURIComponent(String(vars.scope));
      const body = await call(api, 'GET', `/api/budgets/${encodeURIComponent(scope)}`).catch(notFound);
      return {
        contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(body, null, 2) }],
      };
    },
  );

  // ---- subscriptions --------------------------------------------------------------------------

  const subscribed = new Map<string, string>(); // uri → fingerprint of what was last seen
  const fingerprint = async (ref: ResourceRef): Promise<string> => {
    if (ref.kind === 'run') {
      const r = await rt.runs?.get(ref.id);
      return r ? `${r.state}|${r.steps}|${r.suspensions}|${r.updatedAt}` : 'gone';
    }
    const b = await rt.store.getBudget(ref.scope);
    return b ? `${b.state}|${b.spent}|${b.reserved}|${b.ceiling}|${b.updatedAt}` : 'none';
  };
  const updated = (uri: string) => {
    server.server.sendResourceUpdated({ uri }).catch(() => {});
  };
  /** Re-reads a subscribed resource; tells the client if it changed (or at once with force). */
  const check = async (uri: string, force = false) => {
    const ref = parseUri(uri);
    if (!ref || !subscribed.has(uri)) return;
    const fp = await fingerprint(ref).catch(() => subscribed.get(uri)!);
    if (!subscribed.has(uri)) return;
    if (force || fp !== subscribed.get(uri)) {
      subscribed.set(uri, fp);
      updated(uri);
    }
  };

  server.server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    const uri = req.params.uri;
    const ref = parseUri(uri);
    if (!ref) {
      throw new McpError(
        ErrorCode.InvalidParams,
        `cannot subscribe to ${uri}: expected chokepoint://runs/<id> or chokepoint://budgets/<scope>`,
      );
    }
    // Only what this operator may read: the same check as reading it.
    if (ref.kind === 'run') await runView(api, ref.id).catch(notFound);
    else await call(api, 'GET', `/api/budgets/${encodeURIComponent(ref.scope)}`).catch(notFound);
    subscribed.set(uri, await fingerprint(ref));
    return {};
  });
  server.server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    subscribed.delete(req.params.uri);
    return {};
  });

  // A run of this process changed state: its resource, and the budgets it spends from.
  const offRuns = onRunChange(rt, (r) => {
    if (subscribed.size === 0) return;
    void check(runUri(r.id));
    for (const scope of scopesOf(r.identity)) void check(budgetUri(scope));
  });
  // An approval item opened or was decided (in any process sharing the store): its run's resource.
  const offApprovals =
    rt.approvals?.store.subscribe((change) => {
      const dot = change.id.lastIndexOf('.');
      if (dot > 0) void check(runUri(change.id.slice(0, dot)), true);
    }) ?? (() => {});
  // Everything else (steps, spend, runs on other processes): re-read what is subscribed.
  let polling = false;
  const poll = setInterval(
    () => {
      if (polling || subscribed.size === 0) return;
      polling = true;
      void Promise.allSettled([...subscribed.keys()].map((uri) => check(uri))).finally(() => {
        polling = false;
      });
    },
    Math.max(pollMs, 250),
  );
  poll.unref();

  return {
    server,
    close() {
      clearInterval(poll);
      offRuns();
      offApprovals();
      tasks.dispose();
      subscribed.clear();
    },
  };
}

function refusalMessage(res: { status: number; body: unknown }): string {
  try {
    unwrap(res);
  } catch (err) {
    if (err instanceof ApiRefusal) return err.message;
  }
  return `HTTP ${res.status}`;
}
