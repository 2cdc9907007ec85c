import { z } from 'zod';
import { RUN_STATES } from '../../../store/runs.ts';
import type { RunsResponse } from '../../views/runs.ts';
import { call, query } from '../api.ts';
import { body, readOnly, type ToolContext } from '../tool.ts';

/** `list_runs`: `GET /api/runs` with its filters and cursor. */
export function listRuns(ctx: ToolContext): void {
  ctx.server.registerTool(
    'list_runs',
    {
      title: 'List runs',
      description: 'Runs, newest first, filtered by workflow, state and team; page with cursor.',
      inputSchema: {
        workflow: z.string().optional(),
        state: z.enum(RUN_STATES as [string, ...string[]]).optional(),
        team: z.string().optional(),
        limit: z.number().int().min(1).max(1000).optional(),
        cursor: z.string().optional().describe('The next cursor of the previous page'),
      },
      annotations: readOnly,
    },
    body(ctx, (a: Record<string, string | number | undefined>) =>
      call<RunsResponse>(
        ctx.api,
        'GET',
        `/api/runs${query({ workflow: a.workflow, state: a.state, team: a.team, limit: a.limit, cursor: a.cursor })}`,
      ),
    ),
  );
}
