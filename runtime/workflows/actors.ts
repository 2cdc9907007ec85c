import { newId } from '../ids.ts';
import type { Block, ModelInput, ModelOutput, ToolInput, ToolOutput, ToolUse } from './define.ts';
import { journalKey, type LiveRun, never, type RunControl, runBudget } from './live-run.ts';
import { assemble, PrefixDriftError, refuseOwnPrefix } from './prompt.ts';
import { refusedTool, runTool, toolOf } from './tool-calls.ts';

/**
 * The `model` and `tool` actors a workflow's machine is given. Both go through the call path's
 * one metered path (`rt.calls`): a model call with the run as its identity and the run's spend
 * box provisioned as the `run:<id>` budget; a tool call checked against kill switches, the
 * allow-list and approval gates, then metered (tool-calls.ts). Limits belong to the runtime:
 * hitting the spend box, the time box or the step cap SUSPENDS the run (reason and numbers
 * recorded; the call that would pass the limit is not made). A completed call is journaled
 * before the machine sees its result, so a resumed run never calls (or bills) twice.
 */
export async function modelActor(c: RunControl, run: LiveRun, input: ModelInput): Promise<ModelOutput> {
  const key = journalKey('model', input);
  const hit = run.journal.get(key);
  if (hit) return hit.result as ModelOutput;
  try {
    refuseOwnPrefix(run.prefix, input);
  } catch (err) {
    if (err instanceof PrefixDriftError) return c.failDrift(run, err.message);
    throw err;
  }
  const limit = c.limitHit(run);
  if (limit) return c.halt(run, 'suspended', limit);
  const { workflow, record } = run;
  const body = assemble(run.prefix, input.messages, {
    model: workflow.models[input.step ?? 'default'] ?? workflow.models.default,
    maxTokens: input.maxTokens ?? 1024,
    toolChoice: input.toolChoice,
  });
  // Not tied to the actor's signal: only `halt` aborts a model call (a kill; see there).
  const controller = new AbortController();
  run.controller = controller;
  // The call and its journal entry are one in-flight unit: a halt waits for both, so a call
  // that completed (and was billed) is journaled even if the run stopped meanwhile, and a
  // resume answers it from the journal instead of paying for it again.
  const unit = (async () => {
    const result = await c.rt.calls.collect({
      identity: record.identity,
      requestId: newId('req'),
      body,
      streamKey: `run:${record.id}`,
      driftPolicy: 'refuse',
      signal: controller.signal,
      provision: { [`run:${record.id}`]: runBudget(record) },
    });
    if (!result.ok) return { result };
    const content = (result.answer.content ?? []) as Block[];
    const output: ModelOutput = {
      message: { role: 'assistant', content },
      text: content
        .filter((b) => b.type === 'text')
        .map((b) => b.text as string)
        .join(''),
      toolUses: content.filter((b): b is ToolUse & Block => b.type === 'tool_use'),
      stopReason: String(result.answer.stop_reason ?? ''),
      model: result.record.model,
    };
    await c.journaled(run, {
      key,
      kind: 'model',
      name: result.record.model,
      result: output,
      ledgerId: result.record.ledgerId,
    });
    return { result, output };
  })();
  const { result, output } = await inflight(run, 'model', unit);
  if (run.halted) return never();
  if (output) return output;
  if (result.ok) throw new Error('model call answered nothing');
  if ('refusal' in result) {
    const refusal = result.refusal;
    if (refusal.code === 'budget_exhausted') {
      const scope = refusal.budget?.scope;
      return c.halt(run, 'suspended', scope === `run:${record.id}` ? 'spend_box' : 'budget_exhausted', {
        budget: scope,
        message: refusal.message,
        ...(refusal.amount === undefined ? {} : { nextCallMax: refusal.amount }),
      });
    }
    if (refusal.code === 'killed')
      return c.halt(run, 'killed', 'kill_switch', refusal.envelope().chokepoint as Record<string, unknown>);
    if (refusal.code === 'prefix_drift') return c.failDrift(run, refusal.message);
    throw new Error(`model call failed (${refusal.code}): ${refusal.message}`);
  }
  throw new Error(`model call failed (${result.error.code}): ${result.error.message}`);
}

export async function toolActor(
  c: RunControl,
  run: LiveRun,
  input: ToolInput,
  signal: AbortSignal,
): Promise<ToolOutput> {
  const key = journalKey('tool', input);
  const hit = run.journal.get(key);
  if (hit) return hit.result as ToolOutput;
  const limit = c.limitHit(run);
  if (limit) return c.halt(run, 'suspended', limit);
  const { record } = run;
  const kill = await c.rt.store.killedBy(record.identity);
  if (kill) {
    return c.halt(run, 'killed', kill.scope === `run:${record.id}` ? 'killed' : 'kill_switch', {
      scope: kill.scope,
      by: kill.actor,
      why: kill.reason,
    });
  }
  // The allow-list: the workflow's own tools and the allowed tools of its MCP servers. Anything
  // else is refused without a call; the model is told so and may carry on.
  const tool = toolOf(run.workflow, input.name);
  if (!tool) {
    const content = `tool not allowed: '${input.name}' is not one of this workflow's tools`;
    return refusedTool(c, run, key, input.name, 'tool_not_allowed', content);
  }
  if (run.workflow.approvals.includes(input.name) && !record.grants.includes(key)) {
    if (!record.grants.includes(`deny:${key}`)) {
      return c.halt(run, 'suspended', 'approval_required', {
        tool: input.name,
        input: input.input,
        key,
        ...(tool.mcp ? { server: tool.mcp.server } : {}),
      });
    }
    const content = `A human refused this call to ${input.name}; do not retry it.`;
    return refusedTool(c, run, key, input.name, 'approval_denied', content);
  }
  // The tool call, its ledger entry and its journal entry are one in-flight unit (see
  // modelActor): a tool that completed while the run was stopping is journaled, so a resume never
  // runs a consequential call twice; one cut short by the stop (an error) is run again on resume.
  const controller = new AbortController();
  signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
  run.controller = controller;
  const { output, refusal } = await inflight(run, 'tool', runTool(c, run, key, input, tool, controller));
  if (run.halted) return never();
  if (refusal?.code === 'killed' && refusal.kill) {
    const k = refusal.kill;
    return c.halt(run, 'killed', k.scope === `run:${record.id}` ? 'killed' : 'kill_switch', {
      scope: k.scope,
      by: k.actor,
      why: k.reason,
    });
  }
  if (refusal?.code === 'budget_exhausted') {
    // A priced tool is admitted like a model call: the run stops before passing a box.
    const scope = refusal.budget?.scope;
    return c.halt(run, 'suspended', scope === `run:${record.id}` ? 'spend_box' : 'budget_exhausted', {
      budget: scope,
      message: refusal.message,
      nextCallMax: refusal.amount,
      tool: input.name,
    });
  }
  // Enforcement could not decide: the run fails (closed), as on a model call.
  if (refusal) throw refusal;
  if (!output) return never();
  return output;
}

/** Marks a unit as the run's call in flight until it settles (a halt waits for it). */
async function inflight<T>(run: LiveRun, kind: 'model' | 'tool', unit: Promise<T>): Promise<T> {
  run.inflight = unit;
  run.inflightKind = kind;
  try {
    return await unit;
  } finally {
    run.inflight = undefined;
    run.inflightKind = undefined;
    run.controller = undefined;
  }
}
