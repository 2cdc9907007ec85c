import type { ApprovalResponse } from '../views/approvals.ts';
import type { JournalView, RunDetailResponse } from '../views/runs.ts';
import { type Api, call } from './api.ts';

/**
 * What MCP clients see of a run: the API's run (as `GET /api/runs/:id` serves it, see
 * runtime/faces/views/runs.ts), its spend and time against its boxes, the approval it waits on
 * (if suspended) and its last messages.
 */

const LAST_MESSAGES = 4;
const MESSAGE_CHARS = 600;

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** A journal entry as one line of conversation: the model's answer and tool calls, or a tool's result. */
export function messageOf(e: JournalView): { role: string; text: string; at: string | null } {
  if (e.kind === 'tool') {
    const r = e.result as { content?: unknown } | undefined;
    const text = typeof r?.content === 'string' ? r.content : JSON.stringify(r?.content ?? r ?? '');
    return { role: `tool ${e.name}`, text: truncate(text, MESSAGE_CHARS), at: e.at };
  }
  const r = e.result as { text?: string; toolUses?: { name: string; input: unknown }[] } | undefined;
  const calls = (r?.toolUses ?? []).map((u) => `→ ${u.name}(${truncate(JSON.stringify(u.input), 120)})`);
  return {
    role: 'assistant',
    text: truncate([r?.text ?? '', ...calls].filter(Boolean).join(' '), MESSAGE_CHARS),
    at: e.at,
  };
}

/** The run as MCP tools and the `chokepoint://runs/{id}` resource return it. */
export async function mcpRunView(api: Api, id: string, opts: { journal?: boolean; wait?: number } = {}) {
  const detail = await call<RunDetailResponse>(
    api,
    'GET',
    `/api/runs/${encodeURIComponent(id)}${opts.wait ? `?wait=${opts.wait}` : ''}`,
  );
  const { run, journal, spend } = detail;
  const clock = run.clockStart ? Date.parse(run.clockStart) : Date.now();
  const elapsed = Math.max(0, (run.endedAt ? Date.parse(run.endedAt) : Date.now()) - clock);
  let approval: Record<string, unknown> | undefined;
  if (run.state === 'suspended') {
    const approvalId = `${run.id}.${run.suspensions}`;
    const item = await api<ApprovalResponse>('GET', `/api/approvals/${encodeURIComponent(approvalId)}`);
    approval =
      item.status === 200
        ? {
            id: approvalId,
            state: item.body.approval.state,
            reason: item.body.approval.reason,
            summary: item.body.approval.summary,
            expiresAt: item.body.approval.expiresAt,
          }
        : { id: approvalId, state: 'opening' };
  }
  return {
    run,
    spend,
    time: {
      elapsed_ms: elapsed,
      limit_ms: run.limits.time_ms,
      remaining_ms: Math.max(0, run.limits.time_ms - elapsed),
    },
    ...(approval ? { approval } : {}),
    last_messages: journal.slice(-LAST_MESSAGES).map(messageOf),
    ...(opts.journal ? { journal } : {}),
  };
}

export type McpRunView = Awaited<ReturnType<typeof mcpRunView>>;
