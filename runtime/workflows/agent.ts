import { assign, setup } from 'xstate';
import type { z } from 'zod';
import {
  type Block,
  defineWorkflow,
  type LocalTool,
  type McpServerSpec,
  type Message,
  type ModelOutput,
  runtimeActors,
  type ToolInput,
  type ToolOutput,
  type ToolUse,
  type Workflow,
} from './define.ts';

/**
 * The tool-using agent loop: `defineAgent` for the common case, and the pieces a hand-written
 * machine uses for its own loop (`callTool`, `afterModel`, `afterTool`), so an example with its
 * own states does not copy the message bookkeeping.
 */

/** The tool_result block that answers `use` with the `tool` actor's output. */
export function toolResult(use: ToolUse, out: ToolOutput): Block {
  return {
    type: 'tool_result',
    tool_use_id: use.id,
    content: out.content,
    ...(out.isError ? { is_error: true } : {}),
  };
}

/** What a hand-written tool loop keeps: the conversation and the tool call being run. */
export interface ToolLoopContext {
  messages: Message[];
  use?: ToolUse;
}

/**
 * The `tool` actor's input for the tool call the model asked for (`context.use`).
 *
 * @example
 * running: { invoke: { src: 'tool', input: callTool, onDone: { target: 'thinking', actions: 'answered' } } }
 */
export function callTool({ context }: { context: ToolLoopContext }): ToolInput {
  const use = context.use;
  if (!use) throw new Error('callTool: no tool call to run (the model asked for none; see afterModel)');
  return { name: use.name, input: use.input, toolUseId: use.id };
}

/**
 * After a `model` invocation: the conversation with the model's message appended, and the first
 * tool call it asked for in `use` (undefined when it asked for none).
 *
 * @example
 * setup({
 *   actors: runtimeActors,
 *   actions: {
 *     remember: assign(({ context, event }) => afterModel(context, event)),
 *     answered: assign(({ context, event }) => afterTool(context, event)),
 *   },
 * })
 */
export function afterModel(context: ToolLoopContext, event: unknown): ToolLoopContext {
  const out = outputOf<ModelOutput>(event, 'afterModel', 'model', (o) => Array.isArray(o.toolUses));
  return { messages: [...context.messages, out.message], use: out.toolUses[0] };
}

/**
 * After a `tool` invocation: the conversation with the tool's result appended as the user turn
 * the model reads next, and `use` cleared (see `afterModel` for the example).
 */
export function afterTool(context: ToolLoopContext, event: unknown): ToolLoopContext {
  const out = outputOf<ToolOutput>(event, 'afterTool', 'tool', (o) => typeof o.content === 'string');
  if (!context.use) throw new Error('afterTool: no tool call in progress (use it after callTool)');
  return {
    messages: [...context.messages, { role: 'user', content: [toolResult(context.use, out)] }],
    use: undefined,
  };
}

/** The done event's output of a runtime actor; a clear error when the helper sits elsewhere
 * (an action typed by hand cannot check this, and a wrong one would corrupt the conversation). */
function outputOf<T>(event: unknown, helper: string, actor: string, ok: (o: T) => boolean): T {
  const out = (event as { output?: T } | undefined)?.output;
  if (typeof out !== 'object' || out === null || !ok(out)) {
    throw new Error(
      `${helper}: expected the output of the '${actor}' actor (use it in that invoke's onDone)`,
    );
  }
  return out;
}

export interface AgentSpec<I extends z.ZodType> {
  id: string;
  version: string | number;
  description: string;
  input: I;
  system: string | string[];
  // biome-ignore lint/suspicious/noExplicitAny: each tool takes its own input type
  tools?: Record<string, LocalTool<any>>;
  /** Model class or model id for every turn (default `cheap`). */
  model?: string;
  limits: { spend: string; time: string; steps: number };
  approvals?: string[];
  /** MCP servers whose (allowed) tools the agent may call, as `<server>__<tool>`. */
  mcp?: McpServerSpec[];
  /** How long an approval item waits for a human, e.g. "4h" (default: config `approvals.timeout`). */
  approvalTimeout?: string;
  /** Output tokens per turn (default 1024). */
  maxTokens?: number;
  /** The first user message (default: the input as JSON). */
  task?: (input: z.output<I>) => string;
  /** `any`: the model must call a tool every turn (an agent that works until it calls
   * `finishTool`). Default `auto`: the loop ends when the model answers without a tool call. */
  toolChoice?: 'auto' | 'any';
  /** A tool the model calls to finish; its input becomes the run's `result`. Added to the
   * tools (last, with a `report` string input) unless defined. */
  finishTool?: string;
}

export interface AgentContext {
  messages: Message[];
  pending: ToolUse[];
  results: Block[];
  answer: string;
  result?: unknown;
}

/**
 * The common case: a tool-using agent loop (think → tool calls → think … → done). Each turn
 * invokes the runtime's `model` actor; each requested tool is run through the `tool` actor and
 * its result goes back to the model. The run's output is the final answer's text.
 *
 * @example
 * import { defineAgent, z } from 'chokepoint/workflow';
 *
 * export default defineAgent({
 *   id: 'weather', version: 1, description: 'Answers weather questions',
 *   input: z.object({ question: z.string() }),
 *   system: 'You answer weather questions; use get_weather.',
 *   tools: { get_weather: { description: 'Weather for a city',
 *     input_schema: z.object({ city: z.string() }), run: ({ city }) => `Sunny in ${city}` } },
 *   limits: { spend: '$0.20', time: '1m', steps: 6 },
 *   task: (i) => i.question,
 * });
 */
export function defineAgent<I extends z.ZodType>(spec: AgentSpec<I>): Workflow {
  const task = spec.task ?? ((i: unknown) => JSON.stringify(i));
  const maxTokens = spec.maxTokens ?? 1024;
  const toolChoice = spec.toolChoice ?? 'auto';
  const finish = spec.finishTool;
  const tools = { ...(spec.tools ?? {}) } as Record<string, LocalTool>;
  if (finish && !tools[finish]) {
    tools[finish] = {
      description: 'Call this once the task is complete, with your final report.',
      input_schema: { type: 'object', properties: { report: { type: 'string' } }, required: ['report'] },
      run: () => 'finished',
    };
  }
  const finishing = (uses: ToolUse[]) => (finish ? uses.find((u) => u.name === finish) : undefined);
  const machine = setup({
    types: {
      context: {} as AgentContext,
      input: {} as z.output<I>,
      output: {} as { answer: string; result?: unknown },
    },
    actors: runtimeActors,
  }).createMachine({
    id: spec.id,
    context: ({ input }) => ({
      messages: [{ role: 'user', content: task(input) }],
      pending: [],
      results: [],
      answer: '',
    }),
    initial: 'thinking',
    states: {
      thinking: {
        invoke: {
          src: 'model',
          input: ({ context }) => ({ step: 'think', messages: context.messages, maxTokens, toolChoice }),
          onDone: [
            {
              guard: ({ event }) => finishing(event.output.toolUses) !== undefined,
              target: 'done',
              actions: assign(({ context, event }) => {
                const input = finishing(event.output.toolUses)!.input;
                return {
                  messages: [...context.messages, event.output.message],
                  answer: typeof input.report === 'string' ? input.report : event.output.text,
                  result: input,
                };
              }),
            },
            {
              guard: ({ event }) => event.output.toolUses.length > 0,
              target: 'acting',
              actions: assign(({ context, event }) => ({
                messages: [...context.messages, event.output.message],
                pending: event.output.toolUses,
                results: [],
              })),
            },
            {
              target: 'done',
              actions: assign(({ context, event }) => ({
                messages: [...context.messages, event.output.message],
                answer: event.output.text,
              })),
            },
          ],
        },
      },
      acting: {
        invoke: {
          src: 'tool',
          input: ({ context }) => {
            const use = context.pending[0]!;
            return { name: use.name, input: use.input, toolUseId: use.id };
          },
          onDone: {
            target: 'next',
            actions: assign(({ context, event }) => ({
              pending: context.pending.slice(1),
              results: [...context.results, toolResult(context.pending[0]!, event.output)],
            })),
          },
        },
      },
      next: {
        always: [
          { guard: ({ context }) => context.pending.length > 0, target: 'acting' },
          {
            target: 'thinking',
            actions: assign(({ context }) => ({
              messages: [...context.messages, { role: 'user' as const, content: context.results }],
              results: [],
            })),
          },
        ],
      },
      done: { type: 'final' },
    },
    output: ({ context }) =>
      context.result === undefined
        ? { answer: context.answer }
        : { answer: context.answer, result: context.result },
  });
  return defineWorkflow({
    id: spec.id,
    version: spec.version,
    description: spec.description,
    input: spec.input,
    prefix: { system: spec.system },
    tools,
    models: { default: spec.model ?? 'cheap' },
    limits: spec.limits,
    approvals: spec.approvals ?? [],
    ...(spec.mcp ? { mcp: spec.mcp } : {}),
    ...(spec.approvalTimeout ? { approvalTimeout: spec.approvalTimeout } : {}),
    machine,
  });
}
