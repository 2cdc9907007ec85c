import { z } from 'zod';
import type { DecisionResponse } from '../../views/approvals.ts';
import { call } from '../api.ts';
import { body, type ToolContext } from '../tool.ts';

/** `decide_approval`: one of the four decisions on a pending item, through the API (audited). */
export function decideApproval(ctx: ToolContext): void {
  ctx.server.registerTool(
    'decide_approval',
    {
      title: 'Decide an approval',
      description:
        'Decides a pending approval item, once (operator role; audited under your token): approve (resume; ' +
        'a gate lets the tool call run), extend (add spend and/or time, then resume), deny (a gate tells the ' +
        'model no; otherwise the run ends denied) or kill (the run ends killed).',
      inputSchema: {
        id: z.string().min(1).describe('The approval id (run_….N; see list_approvals)'),
        action: z.enum(['approve', 'extend', 'deny', 'kill']),
        reason: z.string().min(1).describe('Why (required; goes to the audit log)'),
        spend: z.string().optional().describe('extend: spend to add, e.g. "+$1.00"'),
        time: z.string().optional().describe('extend: time to add, e.g. "+10m"'),
      },
      annotations: { destructiveHint: true, openWorldHint: false },
    },
    body(ctx, (a: { id: string; action: string; reason: string; spend?: string; time?: string }) =>
      call<DecisionResponse>(ctx.api, 'POST', `/api/approvals/${encodeURIComponent(a.id)}/${a.action}`, {
        reason: a.reason,
        ...(a.spend !== undefined ? { spend: a.spend } : {}),
        ...(a.time !== undefined ? { time: a.time } : {}),
      }),
    ),
  );
}
