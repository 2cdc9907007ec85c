import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Services } from '../../compose.ts';
import type { Logger } from '../../log.ts';
import { type Api, ApiRefusal } from './api.ts';
import type { SessionTasks } from './tasks.ts';

/**
 * What every MCP tool gets: the runtime, its session's server, the operator API bound to the
 * session's operator, the session's tasks, a logger, and the follow timings. A tool file exports
 * one function taking this and registering its tool (see tools/).
 */
export interface ToolContext {
  rt: Services;
  server: McpServer;
  api: Api;
  tasks: SessionTasks;
  log: Logger;
  /** A waiting start_run reports progress at least this often (ms). */
  progressMs: number;
  /** How often a followed run is re-read (ms). */
  pollMs: number;
  /** The longest start_run waits with `wait: true` (ms). */
  maxWaitMs: number;
}

export type RegisterTool = (ctx: ToolContext) => void;

export type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export const readOnly = { readOnlyHint: true, openWorldHint: false } as const;

/** A value as a tool result: pretty JSON text, and the object itself as structured content. */
export function json(value: unknown): CallToolResult {
  const structured =
    value && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : { value };
  return { content: [{ type: 'text', text: JSON.stringify(value, null, 2) }], structuredContent: structured };
}

export function toolError(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

/** A failed tool body as a tool error: an API refusal with the API's message, anything else logged. */
export function failed(
  ctx: Pick<ToolContext, 'log'>,
  err: unknown,
  what = 'MCP tool failed',
): CallToolResult {
  if (err instanceof ApiRefusal) return toolError(err.message);
  ctx.log.error(what, { error: err });
  return toolError(`internal error: ${(err as Error).message}`);
}

/** A tool body: its value as JSON, an API refusal as a tool error with the API's message. */
export function body<A>(ctx: ToolContext, fn: (args: A, extra: Extra) => Promise<unknown>) {
  return async (args: A, extra: Extra): Promise<CallToolResult> => {
    try {
      return json(await fn(args, extra));
    } catch (err) {
      return failed(ctx, err);
    }
  };
}
