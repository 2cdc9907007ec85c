import type { Readable, Writable } from 'node:stream';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Hono } from 'hono';
import type { Operator } from '../../auth/operators.ts';
import type { Services } from '../../compose.ts';
import { createMcpServer, type McpOptions } from './server.ts';
import { RunTasks } from './tasks.ts';

/**
 * `chokepoint mcp --embedded`: the MCP server on stdio, in this process, over a runtime opened
 * here (the configured store and the workflows folder). Resolves when stdin ends.
 */
export function serveStdio(
  rt: Services,
  app: Hono,
  operator: Operator,
  opts: { stdin?: Readable; stdout?: Writable; options?: McpOptions } = {},
): Promise<void> {
  const stdin = opts.stdin ?? process.stdin;
  const tasks = new RunTasks(rt, { pollMs: 1000 });
  const mcp = createMcpServer(rt, { app, operator, tasks, options: opts.options });
  const transport = new StdioServerTransport(stdin, opts.stdout ?? process.stdout);
  return new Promise<void>((resolve, reject) => {
    transport.onclose = () => {
      mcp.close();
      tasks.close();
      resolve();
    };
    stdin.once('end', () => void transport.close());
    mcp.server.connect(transport).catch(reject);
  });
}
