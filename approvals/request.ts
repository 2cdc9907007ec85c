import type { ApprovalItem } from '../runtime/store/approvals.ts';
import type { RunRecord } from '../runtime/store/runs.ts';

/**
 * What the run was asked to do, kept on its approval item so the human deciding sees the request
 * itself, not only the last few turns: the run's input (as JSON) and the first user message of
 * the conversation the run keeps (`context.messages` of its machine: `defineAgent` and the
 * tool-loop helpers keep one). Both are cut to a size an inbox card can show.
 */
export interface RunRequest {
  /** The run's input as JSON, at most {@link REQUEST_CHARS} characters. */
  inputJson?: string;
  /** The text of the conversation's first user message, at most {@link REQUEST_CHARS} characters. */
  firstUserMessage?: string;
}

/**
 * The item's context with the request. Stored whole with the item (both stores keep the item as
 * JSON); items opened before it existed have none.
 */
export type ContextWithRequest = ApprovalItem['context'] & { request?: RunRequest };

export const REQUEST_CHARS = 1_000;

export function requestOf(run: Pick<RunRecord, 'input' | 'snapshot'>): RunRequest {
  const out: RunRequest = {};
  if (run.input !== undefined) {
    const json = safeJson(run.input);
    if (json !== undefined) out.inputJson = clip(json);
  }
  const first = firstUserText(run.snapshot);
  if (first) out.firstUserMessage = clip(first);
  return out;
}

/** The request an item carries (none on items opened before it was kept). */
export function requestOfItem(item: ApprovalItem): RunRequest {
  return (item.context as ContextWithRequest).request ?? {};
}

function firstUserText(snapshot: unknown): string | undefined {
  const messages = (snapshot as { context?: { messages?: unknown } } | undefined)?.context?.messages;
  if (!Array.isArray(messages)) return undefined;
  const first = messages.find((m) => (m as { role?: unknown } | null)?.role === 'user') as
    | { content?: unknown }
    | undefined;
  if (!first) return undefined;
  const { content } = first;
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return undefined;
  // Blocks: the text ones (a first turn that is only tool results or images has no text to show).
  const text = content
    .filter((b): b is { type: 'text'; text: string } => b?.type === 'text' && typeof b.text === 'string')
    .map((b) => b.text)
    .join('\n');
  return text || undefined;
}

function safeJson(v: unknown): string | undefined {
  try {
    return JSON.stringify(v);
  } catch {
    return undefined;
  }
}

function clip(s: string): string {
  return s.length > REQUEST_CHARS ? `${s.slice(0, REQUEST_CHARS - 1)}…` : s;
}
