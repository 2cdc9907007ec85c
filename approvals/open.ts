import type { Runtime } from '../runtime/runtime.ts';
import type { RunHost } from '../runtime/workflows/host.ts';
import { Approvals, HandedBackError } from './service.ts';
import { SessionBoxes } from './sessions.ts';

export interface OpenApprovalsOptions {
  /** Work on runs in this process (default: config `workers.enabled`). */
  workers?: boolean;
}

/**
 * The approval store and the runs queue of the runtime's backend (runtime/backends), wired to the
 * run host: embedded → SQLite items and an in-process queue; Redis → BullMQ (`approvals` queue for
 * items and their expiry, `runs` queue for workers), where starts and resumes go to whichever
 * worker is free. Sets `rt.approvals` and `rt.sessions`.
 */
export async function openApprovals(
  rt: Runtime,
  host: RunHost,
  opts: OpenApprovalsOptions = {},
): Promise<Approvals> {
  const { config } = rt;
  const onError = (err: unknown, work?: { runId: string }) => {
    if (err instanceof HandedBackError) return;
    rt.log.error('run work failed', { error: err, run: work?.runId });
  };
  const { backend } = rt;
  const store = backend.approvals;
  const lockMs = config.workflows.leaseMs;
  const queue = backend.runQueue({ lockMs, stalledMs: Math.max(500, Math.round(lockMs / 2)), onError });
  const approvals = new Approvals(rt, host, store, queue, {
    timeoutMs: config.approvals.timeoutMs,
    onTimeout: config.approvals.onTimeout,
    workers: opts.workers ?? config.workers.enabled,
    concurrency: config.workers.concurrency,
    perWorkflow: config.workers.perWorkflow,
    // Starts and resumes go through the runs queue on both backends (the embedded queue runs them
    // in this process), so concurrency limits and recovery behave the same.
    dispatch: true,
  });
  try {
    await approvals.start();
  } catch (err) {
    await approvals.close().catch(() => {});
    throw err;
  }
  rt.approvals = approvals;
  rt.sessions = new SessionBoxes(rt, backend.sessions, store, config.approvals.timeoutMs);
  return approvals;
}
