import { type AnyStateMachine, fromPromise } from 'xstate';
import { z } from 'zod';
import { parseDuration } from '../config/schema.ts';
import { isScopeKey } from '../identity.ts';
import { type Micros, tryParseUsd } from '../money.ts';

/**
 * Workflow definitions: what a file in the workflows folder default-exports (through the public
 * entry, runtime/workflow.ts, `chokepoint/workflow`). A workflow is data plus an
 * XState v5 machine; the machine reaches models and tools only through the actors the runtime
 * provides (`model`, `tool`), so the runtime owns every call: identity, budgets, limits, ledger.
 */

export type Block = { type: string; [key: string]: unknown };
export interface Message {
  role: 'user' | 'assistant';
  content: string | Block[];
}
export interface ToolUse {
  type: 'tool_use';
  id: string;
  name: string;
  input: Record<string, unknown>;
}

/** What a machine passes to the runtime's `model` actor. The prefix (system + tools) is never
 * part of it: the runtime adds the frozen prefix itself. */
export interface ModelInput {
  messages: Message[];
  /** Which entry of `models` to use (default: `default`). */
  step?: string;
  maxTokens?: number;
  /** `auto` (default), `any` (the model must call some tool) or a tool name it must call. */
  toolChoice?: 'auto' | 'any' | { tool: string };
}
export interface ModelOutput {
  /** The assistant message, ready to append to the conversation. */
  message: { role: 'assistant'; content: Block[] };
  text: string;
  toolUses: ToolUse[];
  stopReason: string;
  model: string;
}
export interface ToolInput {
  name: string;
  input: unknown;
  /** The model's tool_use id, when the call answers one. */
  toolUseId?: string;
}
export interface ToolOutput {
  content: string;
  isError: boolean;
}

/** The actors the runtime provides. A machine invokes them by name (`src: 'model'`). */
export const RUNTIME_ACTORS = ['model', 'tool'] as const;

const providedByRuntime = (name: string) => () =>
  Promise.reject(new Error(`the '${name}' actor is provided by the runtime: run the workflow through it`));

/**
 * Typed placeholders for the runtime actors, for custom machines:
 * `setup({ actors: runtimeActors }).createMachine({ invoke: { src: 'model', ... } })`.
 * The executor replaces them with `machine.provide({ actors: { model, tool } })`.
 */
export const runtimeActors = {
  model: fromPromise<ModelOutput, ModelInput>(providedByRuntime('model')),
  tool: fromPromise<ToolOutput, ToolInput>(providedByRuntime('tool')),
};

/** A local tool: a function the runtime runs for the model (tools of MCP servers: `mcp`). */
export interface LocalTool<I = unknown> {
  description: string;
  /** A zod schema (validated before `run`, shown to the model as JSON Schema) or a JSON Schema. */
  input_schema: z.ZodType<I> | Record<string, unknown>;
  run(input: I, ctx: { runId: string; signal: AbortSignal }): unknown;
}

/**
 * A tool of an MCP server that a loaded workflow may call: made by the loader once the server
 * listed its tools (the allowed ones only). The runtime calls `call`; the machine only names it.
 */
export interface McpToolBinding {
  /** The name the model sees and `approvals` uses: `<server>__<tool>`. */
  name: string;
  /** The `mcp` entry's name. */
  server: string;
  /** The tool's own name on the server. */
  tool: string;
  description: string;
  input_schema: Record<string, unknown>;
  /** What one call costs (µ$), admitted against the run's budgets before the call; 0: free. */
  price: Micros;
  /** The server entry's per-call timeout (default: config `mcp.timeout`). */
  timeoutMs?: number;
  /** Calls the tool; throws (with a `kind`: unreachable, timeout, aborted, …) when there is no result. */
  call(
    args: Record<string, unknown>,
    opts: { signal: AbortSignal; timeoutMs: number; idempotencyKey?: string },
  ): Promise<{ content: string; isError: boolean; bytes: number }>;
}

export interface Problem {
  field: string;
  message: string;
}

/** A definition that does not validate: every problem, each naming its field. */
export class WorkflowDefinitionError extends Error {
  readonly code = 'invalid_workflow';
  constructor(readonly problems: Problem[]) {
    super(`invalid workflow: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
    this.name = 'WorkflowDefinitionError';
  }
}

const isZod = (v: unknown): v is z.ZodType =>
  typeof v === 'object' && v !== null && typeof (v as z.ZodType).safeParse === 'function';
const isMachine = (v: unknown): v is AnyStateMachine =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as AnyStateMachine).provide === 'function' &&
  typeof (v as AnyStateMachine).getInitialSnapshot === 'function';

const spend = z.union([z.string(), z.number()]).transform((v, ctx): Micros => {
  const micros = tryParseUsd(v);
  if (micros === undefined || micros <= 0) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a dollar amount like "$2.00", got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return micros;
});
const time = z.string().transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration like "30s" or "10m", got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return ms;
});
export const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const toolName = z.string().regex(TOOL_NAME, 'tool names are 1-64 of A-Z a-z 0-9 _ -');

/** Between an MCP server's name and its tool's in the name the model sees: `tickets__search`. */
export const MCP_SEPARATOR = '__';
const SERVER_NAME = /^[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*$/;

const price = z.union([z.string(), z.number()]).transform((v, ctx): Micros => {
  const micros = tryParseUsd(v);
  if (micros === undefined || micros < 0) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a dollar amount like "$0.001", got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return micros;
});

/** One MCP server a workflow may use, and which of its tools. */
const mcpServer = z
  .strictObject(
    {
      name: z
        .string({ error: 'required: a short name for the server, e.g. "tickets"' })
        .max(32, 'at most 32 characters')
        .regex(
          SERVER_NAME,
          "letters and digits, with single '-' or '_' between them (the model sees <name>__<tool>)",
        ),
      stdio: z
        .strictObject(
          {
            command: z.string({ error: 'required: the program that starts the server' }).min(1),
            args: z.array(z.string()).optional(),
            env: z.record(z.string(), z.string(), { error: 'expected {NAME: "value"}' }).optional(),
            cwd: z.string().min(1).optional(),
          },
          { error: 'expected {command, args?, env?, cwd?}' },
        )
        .optional(),
      http: z
        .strictObject(
          {
            url: z.url({
              protocol: /^https?$/,
              error: 'expected an http(s) URL, e.g. "http://127.0.0.1:3001/mcp"',
            }),
            headers: z.record(z.string(), z.string(), { error: 'expected {header: "value"}' }).optional(),
          },
          { error: 'expected {url, headers?}' },
        )
        .optional(),
      /** The allow-list: tool names on the server, or globs (`search_*`). */
      tools: z
        .array(
          z
            .string()
            .min(1)
            .regex(/^[A-Za-z0-9_.\-/*?]+$/, 'a tool name or a glob of A-Z a-z 0-9 _ . - / * ?'),
          { error: 'required: the allow-list, e.g. ["search_*", "create_ticket"]' },
        )
        .min(1, 'list at least one tool: the workflow may call only the tools listed'),
      /** A price per call for every tool of the server (`perCall`) and/or some (`perTool`). */
      price: z
        .strictObject(
          { perCall: price.optional(), perTool: z.record(z.string(), price).optional() },
          { error: 'expected {perCall?: "$0.001", perTool?: {tool: "$0.01"}}' },
        )
        .optional(),
      /** Per-call timeout, e.g. "30s" (default: config `mcp.timeout`). */
      timeout: time.optional(),
    },
    { error: 'expected {name, stdio: {command, …} | http: {url, …}, tools: [...]}' },
  )
  .superRefine((s, ctx) => {
    if ((s.stdio === undefined) === (s.http === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [s.stdio ? 'http' : 'stdio'],
        message: s.stdio
          ? 'give one transport: stdio or http, not both'
          : 'required: how to reach the server, stdio: {command, args?} or http: {url}',
      });
    }
  });

export type McpServerSpec = z.input<typeof mcpServer>;

const localTool = z.strictObject({
  description: z.string().min(1, 'required: what the tool does, for the model'),
  input_schema: z.custom<LocalTool['input_schema']>(
    (v) => typeof v === 'object' && v !== null,
    'expected a zod schema or a JSON Schema object',
  ),
  run: z.custom<LocalTool['run']>((v) => typeof v === 'function', 'expected a function run(input)'),
});

/** The workflow definition schema: validation, the `Workflow` type and error messages. */
export const workflowSchema = z
  .strictObject({
    id: z
      .string({ error: 'required: the workflow id, e.g. "triage"' })
      .refine(isScopeKey, "use letters, digits, '.', '_', '@' or '-' (at most 128)"),
    version: z.union([z.string().min(1), z.number().int().nonnegative()], {
      error: 'required: a version such as 1 or "2026-05-01"',
    }),
    description: z.string({ error: 'required: one line saying what the workflow does' }).min(1),
    input: z.custom<z.ZodType>(isZod, 'expected a zod schema for the run input'),
    prefix: z.strictObject(
      {
        system: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
        /** Names of entries in `tools` the model sees (default: all of them). */
        tools: z.array(toolName).optional(),
      },
      { error: 'required: {system, tools?}, the frozen prompt prefix' },
    ),
    tools: z.record(toolName, localTool).default({}),
    models: z
      .looseObject({ default: z.string({ error: 'required: a model class or model id' }).min(1) })
      .catchall(z.string().min(1)),
    limits: z.strictObject(
      {
        spend,
        time,
        steps: z.number({ error: 'required: the most model and tool calls a run may make' }).int().positive(),
      },
      { error: 'required: {spend: "$2.00", time: "10m", steps: 50}' },
    ),
    approvals: z.array(toolName).default([]),
    /** How long a suspended run's approval item waits for a human (default: config `approvals.timeout`). */
    approvalTimeout: time.optional(),
    /** MCP servers the workflow may use and the allow-list of their tools. */
    mcp: z.array(mcpServer, { error: 'expected a list of MCP servers' }).default([]),
    machine: z
      .custom<AnyStateMachine>(isMachine, 'expected an XState v5 machine (setup(...).createMachine)')
      .superRefine((machine, ctx) => {
        for (const src of unknownActors(machine)) {
          ctx.addIssue({
            code: 'custom',
            message: `invokes actor '${src}', which neither the runtime (${RUNTIME_ACTORS.join(', ')}) nor the machine provides`,
          });
        }
      }),
  })
  .superRefine((w, ctx) => {
    const tools = Object.keys(w.tools);
    w.prefix.tools?.forEach((t, i) => {
      if (!tools.includes(t)) {
        ctx.addIssue({
          code: 'custom',
          path: ['prefix', 'tools', i],
          message: `no tool named '${t}' in tools`,
        });
      }
    });
    const servers = w.mcp.map((s) => s.name);
    const ofServer = (t: string) => servers.find((s) => t.startsWith(`${s}${MCP_SEPARATOR}`));
    w.approvals.forEach((t, i) => {
      // An MCP tool's name is checked against the server's allowed tools when it is loaded.
      if (!tools.includes(t) && !ofServer(t)) {
        ctx.addIssue({
          code: 'custom',
          path: ['approvals', i],
          message: `no tool named '${t}' in tools${servers.length ? ` or of an MCP server (named <server>${MCP_SEPARATOR}<tool>: ${servers.join(', ')})` : ''}`,
        });
      }
    });
    for (const t of tools) {
      const server = ofServer(t);
      if (server) {
        ctx.addIssue({
          code: 'custom',
          path: ['tools', t],
          message: `'${t}' looks like a tool of MCP server '${server}' (<server>${MCP_SEPARATOR}<tool>): rename the local tool`,
        });
      }
    }
    const seen = new Set<string>();
    w.mcp.forEach((s, i) => {
      if (seen.has(s.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['mcp', i, 'name'],
          message: `duplicate: another MCP server is named '${s.name}'`,
        });
      }
      seen.add(s.name);
    });
  });

export type WorkflowSpec = z.input<typeof workflowSchema>;
type Parsed = z.output<typeof workflowSchema>;
/** A validated workflow: limits in µ$ / ms, `prefix.system` as blocks, `prefix.tools` resolved. */
export interface Workflow extends Omit<Parsed, 'version' | 'prefix'> {
  version: string;
  prefix: { system: string[]; tools: string[] };
  /** The allowed tools of its MCP servers by model-visible name, once loaded (see `connectMcp`). */
  mcpTools?: Readonly<Record<string, McpToolBinding>>;
}

/** Actor names a machine invokes that nothing provides. */
export function unknownActors(machine: AnyStateMachine): string[] {
  const provided = new Set<string>([...RUNTIME_ACTORS, ...Object.keys(machine.implementations.actors ?? {})]);
  const missing = new Set<string>();
  const visit = (node: AnyStateMachine['root']) => {
    for (const inv of node.invoke) {
      if (typeof inv.src === 'string' && !provided.has(inv.src)) missing.add(inv.src);
    }
    for (const child of Object.values(node.states ?? {})) visit(child as AnyStateMachine['root']);
  };
  visit(machine.root);
  return [...missing];
}

const pathOf = (path: PropertyKey[]) => (path.length ? path.map(String).join('.') : '(definition)');

/** Validates a definition, returning every problem (never throwing). */
export function validateWorkflow(
  value: unknown,
): { ok: true; workflow: Workflow } | { ok: false; problems: Problem[] } {
  const r = workflowSchema.safeParse(value);
  if (!r.success) {
    return {
      ok: false,
      problems: r.error.issues.map((i) => ({ field: pathOf(i.path), message: i.message })),
    };
  }
  const w = r.data;
  return {
    ok: true,
    workflow: {
      ...w,
      version: String(w.version),
      prefix: {
        system: typeof w.prefix.system === 'string' ? [w.prefix.system] : w.prefix.system,
        tools: w.prefix.tools ?? Object.keys(w.tools),
      },
    },
  };
}

/**
 * Defines a workflow: the default export of a file in the workflows folder. Throws a
 * `WorkflowDefinitionError` listing every problem by field.
 *
 * @example
 * import { defineWorkflow, runtimeActors, setup, z } from 'chokepoint/workflow';
 *
 * export default defineWorkflow({
 *   id: 'summarise', version: 1, description: 'Summarises a document',
 *   input: z.object({ text: z.string() }),
 *   prefix: { system: 'You summarise documents in three bullet points.' },
 *   models: { default: 'cheap' },
 *   limits: { spend: '$0.50', time: '2m', steps: 4 },
 *   machine: setup({ actors: runtimeActors }).createMachine({
 *     initial: 'ask',
 *     states: {
 *       ask: { invoke: { src: 'model', input: ({ context }) => ({ messages: context.messages }),
 *                        onDone: 'done' } },
 *       done: { type: 'final' },
 *     },
 *   }),
 * });
 */
export function defineWorkflow(spec: WorkflowSpec): Workflow {
  const r = validateWorkflow(spec);
  if (!r.ok) throw new WorkflowDefinitionError(r.problems);
  Object.defineProperty(r.workflow, DEFINED, { value: true });
  return r.workflow;
}

// A registered symbol, not a WeakSet of this module: a workflow may reach the loader through
// another copy of this file (one imported anew with a workflow's own files), and validating its
// parsed definition again would read its limits, already µ$ and ms, as dollars and durations.
const DEFINED = Symbol.for('chokepoint.definedWorkflow');

/** True for what `defineWorkflow` returned (already validated: limits are µ$ and ms). */
export function isDefinedWorkflow(value: unknown): value is Workflow {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[DEFINED] === true;
}
