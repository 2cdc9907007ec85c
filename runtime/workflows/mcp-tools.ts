import type { McpPool, McpServerConfig, McpToolInfo } from '../../adapters/mcp/client.ts';
import { MCP_SEPARATOR, type McpToolBinding, type Problem, TOOL_NAME, type Workflow } from './define.ts';

/**
 * The workflow side of MCP tools. At load, each of a workflow's MCP servers is connected (through
 * the shared pool) and asked for its tools; the allowed ones (names or globs in the entry's
 * `tools`) become the workflow's `mcpTools`, named `<server>__<tool>` for the model, and go into
 * the frozen prefix. A server that cannot be reached, an allow-list entry that matches nothing, a
 * name the model could not use: the workflow does not load, each problem naming its field.
 */

/** `*` any run of characters, `?` one; everything else literal. */
export function globMatch(pattern: string, name: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === name;
  const re = pattern
    .replace(/[.+^${}()|[\]\\/-]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name);
}

/** The JSON Schema as the model sees it: without `$schema`, keys sorted (a stable prefix hash). */
function canonicalSchema(schema: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _, ...rest } = schema ?? {};
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(
      Object.keys(v as object)
        .sort()
        .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
    );
  };
  return sort({ type: 'object', ...rest }) as Record<string, unknown>;
}

export function serverConfig(s: Workflow['mcp'][number]): McpServerConfig {
  return s.stdio
    ? {
        name: s.name,
        stdio: {
          command: s.stdio.command,
          ...(s.stdio.args ? { args: s.stdio.args } : {}),
          ...(s.stdio.env ? { env: s.stdio.env } : {}),
          ...(s.stdio.cwd ? { cwd: s.stdio.cwd } : {}),
        },
      }
    : { name: s.name, http: { url: s.http!.url, ...(s.http!.headers ? { headers: s.http!.headers } : {}) } };
}

/**
 * Connects a workflow's MCP servers and binds their allowed tools. Returns the workflow with
 * `mcpTools` set, or every problem found (a workflow without `mcp` comes back unchanged).
 */
export async function connectMcp(
  w: Workflow,
  pool: McpPool,
  opts: { listTimeoutMs?: number } = {},
): Promise<
  | { ok: true; workflow: Workflow }
  | {
      ok: false;
      problems: Problem[];
      /** Some server could not be reached: trying again later may succeed. */
      unreachable: boolean;
    }
> {
  if (w.mcp.length === 0) return { ok: true, workflow: w };
  const problems: Problem[] = [];
  const bindings: McpToolBinding[] = [];
  let unreachable = false;
  await Promise.all(
    w.mcp.map(async (server, i) => {
      const connection = pool.get(serverConfig(server));
      let listed: McpToolInfo[];
      try {
        listed = await connection.listTools(opts.listTimeoutMs ? { timeoutMs: opts.listTimeoutMs } : {});
      } catch (err) {
        unreachable = true;
        problems.push({
          field: `mcp.${i}.${server.stdio ? 'stdio' : 'http'}`,
          message: `cannot list the tools of MCP server '${server.name}': ${(err as Error).message}`,
        });
        return;
      }
      const names = listed.map((t) => t.name).sort();
      server.tools.forEach((pattern, j) => {
        if (!listed.some((t) => globMatch(pattern, t.name))) {
          problems.push({
            field: `mcp.${i}.tools.${j}`,
            message: `'${pattern}' matches no tool of MCP server '${server.name}' (it has: ${names.join(', ') || 'none'})`,
          });
        }
      });
      const allowed = listed.filter((t) => server.tools.some((p) => globMatch(p, t.name)));
      for (const key of Object.keys(server.price?.perTool ?? {})) {
        if (!allowed.some((t) => t.name === key)) {
          problems.push({
            field: `mcp.${i}.price.perTool.${key}`,
            message: `'${key}' is not an allowed tool of MCP server '${server.name}'`,
          });
        }
      }
      for (const t of allowed) {
        const name = `${server.name}${MCP_SEPARATOR}${t.name}`;
        if (!TOOL_NAME.test(name)) {
          problems.push({
            field: `mcp.${i}.tools`,
            message: `tool '${t.name}' of MCP server '${server.name}' would be '${name}' to the model, which is not a valid tool name (1-64 of A-Z a-z 0-9 _ -): leave it out of the allow-list or shorten the server name`,
          });
          continue;
        }
        const tool = t.name;
        bindings.push({
          name,
          server: server.name,
          tool,
          description: t.description ?? '',
          input_schema: canonicalSchema(t.inputSchema),
          price: server.price?.perTool?.[tool] ?? server.price?.perCall ?? 0,
          ...(server.timeout ? { timeoutMs: server.timeout } : {}),
          call: (args, callOpts) => connection.callTool(tool, args, callOpts),
        });
      }
    }),
  );
  const byName = Object.fromEntries(
    bindings.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((b) => [b.name, b]),
  );
  if (!unreachable) {
    w.approvals.forEach((a, i) => {
      if (Object.hasOwn(w.tools, a) || Object.hasOwn(byName, a)) return;
      problems.push({
        field: `approvals.${i}`,
        message: `no tool named '${a}': the MCP tools this workflow may use are ${Object.keys(byName).join(', ') || 'none'}`,
      });
    });
  }
  if (problems.length) {
    return {
      ok: false,
      problems: problems.sort((a, b) => (a.field < b.field ? -1 : a.field > b.field ? 1 : 0)),
      unreachable,
    };
  }
  return { ok: true, workflow: { ...w, mcpTools: Object.freeze(byName) } };
}

/** Cuts a result to `max` UTF-8 bytes (on a character boundary) with a note saying so. */
export function truncateResult(content: string, max: number): string {
  const total = Buffer.byteLength(content, 'utf8');
  if (total <= max) return content;
  const buf = Buffer.from(content, 'utf8');
  let end = max;
  // Step back out of a multi-byte character (continuation bytes are 10xxxxxx).
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return `${buf.subarray(0, end).toString('utf8')}\n[truncated: ${end} of ${total} bytes]`;
}
