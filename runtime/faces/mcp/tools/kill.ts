import { z } from 'zod';
import type { KillSwitchSetResponse } from '../../views/kill-switches.ts';
import type { RunResponse } from '../../views/runs.ts';
import { ApiRefusal, call } from '../api.ts';
import { body, type ToolContext } from '../tool.ts';

/** `kill`: one run at once, or a kill switch on a scope (every replica, from the next request). */
export function kill(ctx: ToolContext): void {
  ctx.server.registerTool(
    'kill',
    {
      title: 'Kill',
      description:
        'Operator role. With run: kills that run at once (its in-flight call aborted). With scope: flips the ' +
        'kill switch on global, team:<key>, env:<key>, seat:<key>, workflow:<id> or run:<id>: every call it ' +
        'covers is refused from the next request, on every replica. Audited under your token.',
      inputSchema: {
        run: z.string().optional().describe('A run id to kill'),
        scope: z.string().optional().describe('A scope to kill-switch'),
        reason: z.string().min(1).describe('Why (required; goes to the audit log)'),
      },
      annotations: { destructiveHint: true, openWorldHint: false },
    },
    body(ctx, async (a: { run?: string; scope?: string; reason: string }) => {
      if (Boolean(a.run) === Boolean(a.scope)) {
        throw new ApiRefusal(400, 'invalid_request', 'run', 'give exactly one of run (a run id) or scope');
      }
      if (a.run)
        return call<RunResponse>(ctx.api, 'POST', `/api/runs/${encodeURIComponent(a.run)}/kill`, {
          reason: a.reason,
        });
      return call<KillSwitchSetResponse>(ctx.api, 'POST', '/api/kill-switches', {
        scope: a.scope,
        reason: a.reason,
      });
    }),
  );
}
