import type { Runtime } from '../runtime.ts';
import type { RunQueue } from '../store/run-queue.ts';
import { type DispatchOptions, HandedBackError } from './dispatch.ts';
import { RunHost } from './host.ts';

/**
 * The runs queue of the runtime's backend: Redis → BullMQ (`runs` queue, whichever worker is free
 * takes starts and resumes; a dead worker's job is handed on by the stalled-job check); embedded →
 * an in-process queue (no other process to hand work to).
 */
export function openRunQueue(rt: Runtime): RunQueue {
  const onError = (err: unknown, work?: { runId: string }) => {
    if (err instanceof HandedBackError) return;
    rt.log.error('run work failed', { error: err, run: work?.runId });
  };
  const lockMs = rt.config.workflows.leaseMs;
  return rt.backend.runQueue({ lockMs, stalledMs: Math.max(500, Math.round(lockMs / 2)), onError });
}

export interface OpenRunHostOptions {
  dir?: string;
  watch?: boolean;
  recover?: boolean;
  killPollMs?: number;
  /** Take work from the runs queue in this process (default: config `workers.enabled`). */
  workers?: boolean;
  /** Run runs where they start, without the queue (benchmarks of the executor alone). */
  noQueue?: boolean;
}

/**
 * Loads the workflows folder over the backend's run store and the runs queue. Work starts with
 * `startWork`, once whoever acts on stopped runs listens.
 */
export async function openRunHost(rt: Runtime, opts: OpenRunHostOptions = {}): Promise<RunHost> {
  const queue = opts.noQueue ? undefined : openRunQueue(rt);
  const dispatch: DispatchOptions = {
    workers: opts.workers ?? rt.config.workers.enabled,
    concurrency: rt.config.workers.concurrency,
    perWorkflow: rt.config.workers.perWorkflow,
  };
  try {
    return await RunHost.open(rt, {
      dir: opts.dir ?? rt.config.workflowsDir,
      runs: rt.backend.runs,
      watch: opts.watch ?? rt.config.workflows.watch,
      recover: opts.recover,
      leaseMs: rt.config.workflows.leaseMs,
      killPollMs: opts.killPollMs,
      ...(queue ? { queue, dispatch } : {}),
    });
  } catch (err) {
    await queue?.close(false);
    throw err;
  }
}
