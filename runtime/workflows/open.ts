import type { Runtime } from '../runtime.ts';
import { RunHost } from './host.ts';
import type { RunStore } from './run-store.ts';

/** The durable run store of the runtime's backend (runtime/backends). */
export async function openRunStore(rt: Runtime): Promise<RunStore> {
  return rt.backend.runs;
}

/** Loads the workflows folder, opens the run store and recovers runs a crash left behind. */
export async function openRunHost(
  rt: Runtime,
  opts: { dir?: string; watch?: boolean; recover?: boolean; killPollMs?: number } = {},
): Promise<RunHost> {
  const runs = await openRunStore(rt);
  const host = await RunHost.open(rt, {
    dir: opts.dir ?? rt.config.workflowsDir,
    runs,
    watch: opts.watch ?? rt.config.workflows.watch,
    recover: opts.recover,
    leaseMs: rt.config.workflows.leaseMs,
    killPollMs: opts.killPollMs,
  });
  rt.runs = host;
  return host;
}
