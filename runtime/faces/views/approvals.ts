import { requestOfItem } from '../../../approvals/request.ts';
import type { ApprovalItem, ApprovalState, DecisionAction } from '../../store/approvals.ts';
import type { RunLimits, RunState } from '../../store/runs.ts';
import { type IsoTime, iso, type UsdAmount, usdAmount } from './format.ts';

/** What a human decides on: an approval item as `/api/approvals` serves it. */
export interface ApprovalView {
  id: string;
  kind: 'run' | 'session';
  state: ApprovalState;
  run: string;
  workflow: string;
  version: string;
  startedBy: { team: string; env: string; seat: string };
  reason: string;
  summary: string;
  detail: Record<string, unknown>;
  spent: UsdAmount;
  spendByModel: Record<string, UsdAmount>;
  elapsedMs: number;
  steps: number;
  cacheHitRate: number | null;
  lastMessages: { role: string; text: string }[];
  /** The run's input as JSON (cut at 1,000 characters); null on items that predate it. */
  inputJson: string | null;
  /** The conversation's first user message: the request itself, however long the run went on. */
  firstUserMessage: string | null;
  createdAt: IsoTime;
  expiresAt: IsoTime;
  decision: DecisionView | null;
}

export interface DecisionView {
  action: DecisionAction | 'expire';
  actor: string;
  reason: string;
  at: IsoTime;
  addSpend?: UsdAmount;
  addTimeMs?: number;
}

export function approvalView(a: ApprovalItem): ApprovalView {
  const spendByModel: Record<string, UsdAmount> = {};
  const request = requestOfItem(a);
  for (const [model, m] of Object.entries(a.context.spendByModel)) spendByModel[model] = usdAmount(m);
  return {
    id: a.id,
    kind: a.kind,
    state: a.state,
    run: a.runId,
    workflow: a.workflow,
    version: a.version,
    startedBy: { team: a.identity.team, env: a.identity.env, seat: a.identity.seat },
    reason: a.reason,
    summary: a.summary,
    detail: a.detail,
    spent: usdAmount(a.context.spent),
    spendByModel,
    elapsedMs: a.context.elapsedMs,
    steps: a.context.steps,
    cacheHitRate: a.context.cacheHitRate ?? null,
    lastMessages: a.context.lastMessages,
    inputJson: request.inputJson ?? null,
    firstUserMessage: request.firstUserMessage ?? null,
    createdAt: iso(a.createdAt),
    expiresAt: iso(a.expiresAt),
    decision: a.decision
      ? {
          action: a.decision.action,
          actor: a.decision.actor,
          reason: a.decision.reason,
          at: iso(a.decision.at),
          ...(a.decision.addSpend ? { addSpend: usdAmount(a.decision.addSpend) } : {}),
          ...(a.decision.addTime ? { addTimeMs: a.decision.addTime } : {}),
        }
      : null,
  };
}

/** `GET /api/approvals`. */
export interface ApprovalsResponse {
  approvals: ApprovalView[];
  next?: string;
}

/** `GET /api/approvals/:id`. */
export interface ApprovalResponse {
  approval: ApprovalView;
}

/**
 * `POST /api/approvals/:id/<decision>`: the item, and the run it moved on, its limits raw (µ$,
 * ms) as the executor holds them.
 */
export interface DecisionResponse {
  approval: ApprovalView;
  run?: { id: string; state: RunState; limits: RunLimits };
}
