import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { MessagesBody } from '../gateway/messages.ts';
import type { Block, LocalTool, Message, Workflow } from './define.ts';

/**
 * Prompt assembly belongs to the runtime. A workflow version's prefix (tools + system) is frozen
 * once, hashed, and placed before the run's messages on every call, with two `cache_control`
 * breakpoints: at the end of the prefix (shared by every run of the version) and on the last
 * message (moving: each call reads what the previous call of the run wrote). A workflow never
 * touches the prefix; an attempt is a `prefix_drift` error.
 */

const EPHEMERAL = Object.freeze({ type: 'ephemeral' as const });

export interface ToolDefinition {
  name: string;
  description: string;
  input_schema: Record<string, unknown>;
}

export interface FrozenPrefix {
  readonly workflow: string;
  readonly version: string;
  readonly tools: readonly ToolDefinition[];
  readonly system: readonly Block[];
  /** sha256 of the canonical tools + system, 16 hex chars; recorded per workflow version. */
  readonly hash: string;
}

export class PrefixDriftError extends Error {
  readonly code = 'prefix_drift';
  constructor(message: string) {
    super(`prefix_drift: ${message}`);
    this.name = 'PrefixDriftError';
  }
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

function jsonSchemaOf(schema: LocalTool['input_schema']): Record<string, unknown> {
  if (typeof (schema as z.ZodType).safeParse !== 'function') return schema as Record<string, unknown>;
  const { $schema: _, ...rest } = z.toJSONSchema(schema as z.ZodType) as Record<string, unknown>;
  return rest;
}

/** A workflow with MCP servers whose tools were never listed: it cannot be run (fail closed). */
export class McpNotConnectedError extends Error {
  readonly code = 'invalid_workflow';
  constructor(w: Workflow) {
    super(
      `${w.id}@${w.version} uses MCP servers (${w.mcp.map((s) => s.name).join(', ')}) whose tools were never listed: load it from the workflows folder (or connectMcp) before running it`,
    );
    this.name = 'McpNotConnectedError';
  }
}

/** The frozen prefix of a workflow version: the tool list the model sees (its local tools in
 * order, then the allowed tools of its MCP servers sorted by name), then the system blocks, the
 * last of which carries the prefix breakpoint. */
export function freezePrefix(w: Workflow): FrozenPrefix {
  if (w.mcp.length > 0 && !w.mcpTools) throw new McpNotConnectedError(w);
  const local = w.prefix.tools.map((name) => ({
    name,
    description: w.tools[name]!.description,
    input_schema: jsonSchemaOf(w.tools[name]!.input_schema),
  }));
  const mcp = Object.values(w.mcpTools ?? {})
    .map((t) => ({ name: t.name, description: t.description, input_schema: t.input_schema }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const tools = [...local, ...mcp];
  const system: Block[] = w.prefix.system.map((text, i, all) =>
    i === all.length - 1 ? { type: 'text', text, cache_control: EPHEMERAL } : { type: 'text', text },
  );
  const hash = createHash('sha256')
    .update(JSON.stringify({ tools, system: w.prefix.system }))
    .digest('hex')
    .slice(0, 16);
  return deepFreeze({ workflow: w.id, version: w.version, tools, system, hash });
}

/** Prefix hashes by workflow version: the first one seen is the version's, forever. */
export class PrefixRegistry {
  private readonly hashes = new Map<string, string>();

  record(prefix: FrozenPrefix): void {
    const key = `${prefix.workflow}@${prefix.version}`;
    const known = this.hashes.get(key);
    if (known === undefined) this.hashes.set(key, prefix.hash);
    else if (known !== prefix.hash) {
      throw new PrefixDriftError(
        `${key} was frozen with prefix ${known}, now ${prefix.hash}: a changed prompt is a new version`,
      );
    }
  }

  hashOf(workflow: string, version: string): string | undefined {
    return this.hashes.get(`${workflow}@${version}`);
  }
}

/** Refuses a model input that tries to bring its own system prompt or tools. */
export function refuseOwnPrefix(prefix: FrozenPrefix, input: object): void {
  for (const key of ['system', 'tools'] as const) {
    if (key in input) {
      throw new PrefixDriftError(
        `the machine passed '${key}' to the model actor; ${prefix.workflow}@${prefix.version}'s prefix is frozen (${prefix.hash}) and only a new version may change it`,
      );
    }
  }
}

function withBreakpoint(m: Message): Message {
  const blocks: Block[] =
    typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : [...m.content];
  if (blocks.length === 0) return m;
  blocks[blocks.length - 1] = { ...blocks[blocks.length - 1]!, cache_control: EPHEMERAL };
  return { role: m.role, content: blocks };
}

function withoutBreakpoints(m: Message): Message {
  if (typeof m.content === 'string' || !m.content.some((b) => 'cache_control' in b)) return m;
  return {
    role: m.role,
    content: m.content.map((b) => {
      if (!('cache_control' in b)) return b;
      const { cache_control: _, ...rest } = b;
      return rest as Block;
    }),
  };
}

/** The request for one model call of a run: frozen prefix + the run's messages, breakpoints placed. */
export function assemble(
  prefix: FrozenPrefix,
  messages: readonly Message[],
  opts: { model: string; maxTokens: number; toolChoice?: 'auto' | 'any' | { tool: string } },
): MessagesBody {
  if (messages.length === 0) throw new Error('a model call needs at least one message');
  const body = messages.map((m, i) =>
    i === messages.length - 1 ? withBreakpoint(m) : withoutBreakpoints(m),
  );
  return {
    model: opts.model,
    max_tokens: opts.maxTokens,
    ...(prefix.tools.length ? { tools: prefix.tools.map((t) => ({ ...t })) } : {}),
    ...(prefix.tools.length && opts.toolChoice && opts.toolChoice !== 'auto'
      ? {
          tool_choice:
            opts.toolChoice === 'any' ? { type: 'any' } : { type: 'tool', name: opts.toolChoice.tool },
        }
      : {}),
    system: prefix.system.map((b) => ({ ...b })),
    messages: body,
  } as MessagesBody;
}
