import { call } from '../api.ts';
import { body, readOnly, type ToolContext } from '../tool.ts';

/** `list_workflows`: what this server can run, as `GET /api/workflows` answers. */
export function listWorkflows(ctx: ToolContext): void {
  ctx.server.registerTool(
    'list_workflows',
    {
      title: 'List workflows',
      description:
        'The workflows this server can run (latest version first), each with its input JSON Schema, ' +
        'limits (spend box in µ$, time box in ms, step cap), gated tools and models; and the files that did not load.',
      annotations: readOnly,
    },
    (extra) => body(ctx, () => call(ctx.api, 'GET', '/api/workflows'))(undefined, extra),
  );
}
