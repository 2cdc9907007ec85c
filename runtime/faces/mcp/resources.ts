import { ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { BudgetsResponse } from '../views/budgets.ts';
import type { RunsResponse } from '../views/runs.ts';
import { ApiRefusal, call } from './api.ts';
import { mcpRunView } from './run-view.ts';
import type { ToolContext } from './tool.ts';

/**
 * Runs and budgets as MCP resources (`chokepoint://runs/{id}`, `chokepoint://budgets/{scope}`),
 * read through the operator API as the session's operator; subscriptions.ts keeps them fresh.
 */

const RUN_URI = /^chokepoint:\/\/runs\/([^/?#]+)$/;
const BUDGET_URI = /^chokepoint:\/\/budgets\/([^/?#]+)$/;

export const runUri = (id: string) => `chokepoint://runs/${id}`;
export const budgetUri = (scope: string) => `chokepoint://budgets/${scope}`;

export type ResourceRef = { kind: 'run'; id: string } | { kind: 'budget'; scope: string };

export function parseUri(uri: string): ResourceRef | undefined {
  const run = RUN_URI.exec(uri);
  if (run) return { kind: 'run', id: decodeURIComponent(run[1]!) };
  const budget = BUDGET_URI.exec(uri);
  if (budget) return { kind: 'budget', scope: decodeURIComponent(budget[1]!) };
  return undefined;
}

/** An API refusal as the MCP error for a resource: -32002 (not found) or invalid params. */
export const notFound = (err: unknown): never => {
  if (err instanceof ApiRefusal) {
    throw new McpError(err.status === 404 ? -32002 : ErrorCode.InvalidParams, err.message);
  }
  throw err;
};

/** Reads a resource as the session's operator (what a subscription checks first, too). */
export function readResource(ctx: Pick<ToolContext, 'api'>, ref: ResourceRef): Promise<unknown> {
  if (ref.kind === 'run') return mcpRunView(ctx.api, ref.id).catch(notFound);
  return call(ctx.api, 'GET', `/api/budgets/${encodeURIComponent(ref.scope)}`).catch(notFound);
}

const asJson = (uri: URL, body: unknown) => ({
  contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(body, null, 2) }],
});

export function registerResources(ctx: ToolContext): void {
  const { server, api } = ctx;
  server.registerResource(
    'run',
    new ResourceTemplate('chokepoint://runs/{id}', {
      list: async () => {
        const page = await call<RunsResponse>(api, 'GET', '/api/runs?limit=50').catch(() => ({ runs: [] }));
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
    async (uri, vars) =>
      asJson(uri, await readResource(ctx, { kind: 'run', id: decodeURIComponent(String(vars.id)) })),
  );

  server.registerResource(
    'budget',
    new ResourceTemplate('chokepoint://budgets/{scope}', {
      list: async () => {
        const res = await call<BudgetsResponse>(api, 'GET', '/api/budgets').catch(() => ({ budgets: [] }));
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
    async (uri, vars) =>
      asJson(uri, await readResource(ctx, { kind: 'budget', scope: decodeURIComponent(String(vars.scope)) })),
  );
}
