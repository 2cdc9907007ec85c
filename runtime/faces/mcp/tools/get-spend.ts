import { z } from 'zod';
import type { SpendResponse } from '../../views/spend.ts';
import { call, query } from '../api.ts';
import { body, readOnly, type ToolContext } from '../tool.ts';

/** `get_spend`: the ledger grouped by one dimension over a period, as `GET /api/spend` answers. */
export function getSpend(ctx: ToolContext): void {
  ctx.server.registerTool(
    'get_spend',
    {
      title: 'Get spend',
      description:
        'Spend from the ledger grouped by team, env, seat, workflow, model or day over a period ' +
        '(default: the last 30 days), optionally within one scope (like GET /api/spend).',
      inputSchema: {
        by: z
          .enum(['team', 'env', 'seat', 'workflow', 'model', 'provider', 'day'])
          .optional()
          .describe('Default: team'),
        since: z.string().optional().describe('ISO date/time or epoch ms'),
        until: z.string().optional().describe('ISO date/time or epoch ms (default: now)'),
        scope: z
          .string()
          .optional()
          .describe('global, team:<key>, env:<key>, seat:<key>, workflow:<id>, run:<id>'),
      },
      annotations: readOnly,
    },
    body(ctx, (a: Record<string, string | undefined>) =>
      call<SpendResponse>(
        ctx.api,
        'GET',
        `/api/spend${query({ by: a.by, since: a.since, until: a.until, scope: a.scope })}`,
      ),
    ),
  );
}
