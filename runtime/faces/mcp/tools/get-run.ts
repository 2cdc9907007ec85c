import { z } from 'zod';
import { mcpRunView } from '../run-view.ts';
import { body, readOnly, type ToolContext } from '../tool.ts';

/** `get_run`: a run with its spend and time against its boxes, the approval it waits on, its last messages. */
export function getRun(ctx: ToolContext): void {
  ctx.server.registerTool(
    'get_run',
    {
      title: 'Get a run',
      description:
        'A run: state (and why it stopped), spend and time against its boxes, the approval it waits on, ' +
        'its last messages and output.',
      inputSchema: {
        id: z.string().min(1).describe('The run id (run_…)'),
        wait: z
          .number()
          .min(0)
          .max(300)
          .optional()
          .describe('Wait up to this many seconds for it to stop running'),
        journal: z.boolean().optional().describe('Include the full journal (every model and tool call)'),
      },
      annotations: readOnly,
    },
    body(ctx, (a: { id: string; wait?: number; journal?: boolean }) =>
      mcpRunView(ctx.api, a.id, { wait: a.wait, journal: a.journal }),
    ),
  );
}
