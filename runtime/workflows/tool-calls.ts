import { performance } from 'node:perf_hooks';
import type { MeteredWork } from '../gateway/metered.ts';
import type { Refusal } from '../gateway/refusal.ts';
import { newId } from '../ids.ts';
import type { LocalTool, McpToolBinding, ToolInput, ToolOutput, Workflow } from './define.ts';
import { type LiveRun, type RunControl, runBudget } from './live-run.ts';
import { truncateResult } from './mcp-tools.ts';

/**
 * One tool call of a run, metered through the call path (`rt.calls.metered`): a priced MCP tool
 * is admitted like a model call (its price reserved on every budget, or refused as a value), run
 * with its timeout and the run's abort signal, settled and ledgered; a local tool is run and
 * ledgered. Every completed call is journaled with its ledger id.
 */

/** A tool the workflow may call: one of its own, or an allowed tool of one of its MCP servers. */
export type AllowedTool = { local: LocalTool; mcp?: undefined } | { mcp: McpToolBinding; local?: undefined };

/** What a tool call's in-flight unit ends with: its output, a refusal, or neither (cut short by a stop). */
export interface ToolUnit {
  output?: ToolOutput;
  refusal?: Refusal;
}

export function toolOf(workflow: Workflow, name: string): AllowedTool | undefined {
  if (Object.hasOwn(workflow.tools, name)) return { local: workflow.tools[name]! };
  if (workflow.mcpTools && Object.hasOwn(workflow.mcpTools, name)) return { mcp: workflow.mcpTools[name]! };
  return undefined;
}

/** A call refused before it was made (not allowed, denied by a human): ledgered, journaled, told. */
export async function refusedTool(
  c: RunControl,
  run: LiveRun,
  key: string,
  name: string,
  code: string,
  content: string,
): Promise<ToolOutput> {
  const output = { content, isError: true };
  const done = await c.rt.calls.metered(
    { identity: run.record.identity, requestId: newId('req'), name, price: 0 },
    async () => ({ value: output, outcome: 'refused', code, cost: 0 }),
  );
  return journal(c, run, key, name, output, done.ok ? done.ledgerId : undefined);
}

export async function runTool(
  c: RunControl,
  run: LiveRun,
  key: string,
  input: ToolInput,
  tool: AllowedTool,
  controller: AbortController,
): Promise<ToolUnit> {
  const started = performance.now();
  const { record } = run;
  const price = tool.mcp?.price ?? 0;
  const done = await c.rt.calls.metered<{ output: ToolOutput; journal: boolean }>(
    {
      identity: record.identity,
      requestId: newId('req'),
      name: tool.mcp?.name ?? input.name,
      price,
      ...(price > 0 ? { provision: { [`run:${record.id}`]: runBudget(record) } } : {}),
      started,
    },
    () =>
      tool.mcp
        ? mcpCall(c, run, key, input, tool.mcp, controller)
        : localCall(run, input, tool.local!, controller),
  );
  if (!done.ok) return { refusal: done.refusal };
  const { output, journal: keep } = done.value;
  if (!keep) return {};
  return { output: await journal(c, run, key, tool.mcp?.name ?? input.name, output, done.ledgerId) };
}

async function journal(
  c: RunControl,
  run: LiveRun,
  key: string,
  name: string,
  output: ToolOutput,
  ledgerId: string | undefined,
): Promise<ToolOutput> {
  await c.journaled(run, { key, kind: 'tool', name, result: output, ledgerId });
  return output;
}

type Work = MeteredWork<{ output: ToolOutput; journal: boolean }>;

/** A local tool: input validated, run with the abort signal. */
async function localCall(
  run: LiveRun,
  input: ToolInput,
  tool: LocalTool,
  controller: AbortController,
): Promise<Work> {
  let output: ToolOutput;
  try {
    const schema = tool.input_schema as { safeParse?: (v: unknown) => { success: boolean; data?: unknown } };
    const parsed = schema.safeParse ? schema.safeParse(input.input) : { success: true, data: input.input };
    if (!parsed.success) throw new Error(`invalid input for ${input.name}: ${JSON.stringify(input.input)}`);
    const value = await tool.run(parsed.data as never, { runId: run.record.id, signal: controller.signal });
    output = { content: typeof value === 'string' ? value : JSON.stringify(value), isError: false };
  } catch (err) {
    output = { content: (err as Error).message, isError: true };
    // Cut short by the stop: neither recorded nor journaled (a resume runs it again).
    const stopped = run.halted;
    return {
      value: { output, journal: !stopped },
      outcome: 'error',
      code: 'tool_error',
      cost: 0,
      record: !stopped,
      bytes: bytesOf(output),
    };
  }
  return { value: { output, journal: true }, outcome: 'ok', cost: 0, bytes: bytesOf(output) };
}

/**
 * An MCP tool: called with the server's timeout and the run's abort signal (kill, time box), its
 * result cut to `mcp.maxResultBytes`. A call that was sent may have been carried out (and
 * billed): only one never sent is free.
 */
async function mcpCall(
  c: RunControl,
  run: LiveRun,
  key: string,
  input: ToolInput,
  tool: McpToolBinding,
  controller: AbortController,
): Promise<Work> {
  const { record } = run;
  const args = input.input;
  if (typeof args !== 'object' || args === null || Array.isArray(args)) {
    const output = {
      content: `invalid input for ${tool.name}: expected an object of arguments`,
      isError: true,
    };
    return { value: { output, journal: true }, outcome: 'error', code: 'invalid_input', cost: 0 };
  }
  const config = c.rt.config.mcp;
  let result: Awaited<ReturnType<McpToolBinding['call']>> | undefined;
  let failure: (Error & { kind?: string }) | undefined;
  try {
    // The same key on every attempt of this call (the journal key is a content address of it):
    // a server that honours it does not carry out twice a call a time box or kill cut short.
    result = await tool.call(args as Record<string, unknown>, {
      signal: controller.signal,
      timeoutMs: tool.timeoutMs ?? config.timeoutMs,
      idempotencyKey: `${record.id}/${key}`,
    });
  } catch (err) {
    failure = err as Error & { kind?: string };
  }
  if (!result) {
    const kind = failure?.kind;
    const code = controller.signal.aborted ? 'aborted' : (MCP_FAILURE_CODES[kind ?? ''] ?? 'mcp_error');
    const output = { content: `${tool.name} failed: ${failure?.message ?? 'no result'}`, isError: true };
    // Cut short by the stop: recorded, not journaled (a resume makes the call again).
    const value = { output, journal: !run.halted };
    return { value, outcome: 'error', code, cost: kind === 'unreachable' ? 0 : tool.price };
  }
  const output = { content: truncateResult(result.content, config.maxResultBytes), isError: result.isError };
  return {
    value: { output, journal: true },
    outcome: result.isError ? 'error' : 'ok',
    code: result.isError ? 'tool_error' : undefined,
    bytes: result.bytes,
    cost: tool.price,
  };
}

function bytesOf(output: ToolOutput): number {
  return Buffer.byteLength(output.content ?? '', 'utf8');
}

/** Ledger codes of MCP calls that brought no result, by the client's failure kind. */
const MCP_FAILURE_CODES: Record<string, string> = {
  unreachable: 'mcp_unreachable',
  timeout: 'tool_timeout',
  aborted: 'aborted',
  disconnected: 'mcp_disconnected',
  protocol: 'mcp_error',
};
