import type { RunHost } from '../../workflows/host.ts';

/**
 * `GET /api/workflows`: the workflows this server can run (latest version first, each with its
 * input JSON Schema, limits, gated tools and models) and the files that did not load. Served as
 * the run host describes them: already plain JSON (limits in µ$ and ms).
 */
export type WorkflowsResponse = ReturnType<RunHost['workflows']>;
