import type { Runtime } from '../runtime/runtime.ts';
import type { RunHost } from '../runtime/workflows/host.ts';
import { Approvals } from './service.ts';

/**
 * Approvals over the backend's approval store (embedded → SQLite items; Redis → BullMQ's
 * `approvals` queue for items and their expiry), listening to the runs through their port.
 * Started: items are opened for suspensions a crash left without one, expiry runs.
 */
export async function openApprovals(rt: Runtime, runs: RunHost): Promise<Approvals> {
  const { config, backend } = rt;
  const store = backend.approvals;
  const deps = { money: rt.store, log: rt.log, now: rt.now, ...(rt.traces ? { traces: rt.traces } : {}) };
  const approvals = new Approvals(deps, runs, store, {
    timeoutMs: config.approvals.timeoutMs,
    onTimeout: config.approvals.onTimeout,
  });
  try {
    await approvals.start();
  } catch (err) {
    await approvals.close().catch(() => {});
    throw err;
  }
  return approvals;
}
