import type { ReconcileSchedule } from '../reconcile/schedule.ts';
import type { Runtime } from '../runtime.ts';
import { Reconciler, type ReconcileSettings } from './service.ts';

export interface ReconcileService {
  reconciler: Reconciler;
  /** The daily job, when on (`reconcile.schedule` and a way to fetch the provider's reports). */
  schedule?: ReconcileSchedule;
  close(): Promise<void>;
}

/**
 * Opens the reconciler on the runtime's backend (its reconciliations store) and, unless told not
 * to, starts the daily job (the backend's kind: a timer embedded, a BullMQ job scheduler on Redis).
 */
export async function openReconciliation(
  rt: Runtime,
  settings: ReconcileSettings,
  opts: { schedule?: boolean; catchUpMs?: number } = {},
): Promise<ReconcileService> {
  const reconciler = new Reconciler(rt, rt.backend.reconciliations, settings);
  let schedule: ReconcileSchedule | undefined;
  if ((opts.schedule ?? true) && settings.schedule) {
    if (!reconciler.providerReports()) {
      rt.log.info(
        'daily reconciliation is off: no Admin API key to fetch the provider report (set ANTHROPIC_ADMIN_KEY); `chokepoint reconcile --report FILE` still works',
      );
    } else {
      const o = {
        at: settings.at,
        everyMs: settings.everyMs,
        now: rt.now,
        log: rt.log,
        catchUpMs: opts.catchUpMs,
      };
      schedule = await rt.backend.reconcileSchedule(reconciler, o);
    }
  }
  return {
    reconciler,
    schedule,
    async close() {
      // The store is the backend's: it closes it.
      await schedule?.close();
    },
  };
}
