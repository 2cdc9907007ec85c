import { z } from 'zod';
import { APPROVAL_STATES } from '../../../store/approvals.ts';
import type { ApprovalsResponse } from '../../views/approvals.ts';
import { call, query } from '../api.ts';
import { body, readOnly, type ToolContext } from '../tool.ts';

/** `list_approvals`: the approval queue, `GET /api/approvals` with its filters and cursor. */
export function listApprovals(ctx: ToolContext): void {
  ctx.server.registerTool(
    'list_approvals',
    {
      title: 'List approvals',
      description:
        'The approval queue: items suspended runs wait in (pending by default), with why they stopped, ' +
        'spend, time and last messages. Decide them with decide_approval.',
      inputSchema: {
        state: z
          .enum(['all', ...APPROVAL_STATES] as [string, ...string[]])
          .optional()
          .describe('Default: pending'),
        workflow: z.string().optional(),
        team: z.string().optional(),
        reason: z.string().optional().describe('spend_box, time_box, step_cap, approval_required, …'),
        run: z.string().optional().describe('Only the items of this run'),
        limit: z.number().int().min(1).max(1000).optional(),
        cursor: z.string().optional(),
      },
      annotations: readOnly,
    },
    body(ctx, (a: Record<string, string | number | undefined>) =>
      call<ApprovalsResponse>(
        ctx.api,
        'GET',
        `/api/approvals${query({
          state: a.state,
          workflow: a.workflow,
          team: a.team,
          reason: a.reason,
          run: a.run,
          limit: a.limit,
          cursor: a.cursor,
        })}`,
      ),
    ),
  );
}
