/**
 * The public workflow entry, `chokepoint/workflow`: everything a workflow file imports, and the
 * only module of Chokepoint it may import (the package's `exports` map names it). A workflow
 * folder of one's own needs nothing else: no package.json, no node_modules. The loader resolves
 * this entry (and `zod`, `xstate`) from the installed Chokepoint; `z`, `setup` and `assign` are
 * re-exported so a workflow builds its schemas and machines with the very copies the runtime
 * validates and runs them with.
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

export { assign, setup } from 'xstate';
export { z } from 'zod';
export {
  type AgentContext,
  type AgentSpec,
  afterModel,
  afterTool,
  callTool,
  defineAgent,
  type ToolLoopContext,
  toolResult,
} from './workflows/agent.ts';
export {
  type Block,
  defineWorkflow,
  type LocalTool,
  type McpServerSpec,
  type Message,
  type ModelInput,
  type ModelOutput,
  type Problem,
  runtimeActors,
  type ToolInput,
  type ToolOutput,
  type ToolUse,
  type Workflow,
  WorkflowDefinitionError,
  type WorkflowSpec,
} from './workflows/define.ts';
