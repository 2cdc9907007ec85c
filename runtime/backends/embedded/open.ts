import { join } from 'node:path';
import type { Config } from '../../config/load.ts';
import type { Logger } from '../../log.ts';
import { timerSchedule } from '../../reconcile/schedule.ts';
import { privateDir } from '../../store/data-dir.ts';
import { Closers } from '../closers.ts';
import type { Backend } from '../ports.ts';
import { SqliteAlarms } from './alarms.ts';
import { localBroadcast } from './broadcast.ts';
import { SqliteKeys } from './keys.ts';
import { openEmbeddedStore } from './money/store.ts';
import { SqliteReconStore } from './reconciliations.ts';

/** The one file of the embedded backend, in the data folder (0700; the file and its WAL 0600). */
export function embeddedFile(dataDir: string): string {
  return join(dataDir, 'chokepoint.db');
}

/**
 * The embedded backend: every port in one SQLite file (each store with its own connection to it,
 * set up by sqlite.ts), the runs queue in this process, and a broadcast heard only by this process.
 * One process.
 */
export async function openEmbeddedBackend(
  config: Config,
  opts: { now: () => number; log: Logger },
): Promise<Backend> {
  const { now } = opts;
  // The stores opened on first use are loaded with the backend, not with every module that imports
  // it: a CLI command that opens nothing starts without them.
  const [
    { SqliteBatchStore },
    { SqliteApprovalStore },
    { LocalRunQueue },
    { SqliteRunStore },
    { SqliteSessionStore },
    { SqliteWebSessions },
  ] = await Promise.all([
    import('./batches.ts'),
    import('./approvals.ts'),
    import('./run-queue.ts'),
    import('./runs.ts'),
    import('./sessions.ts'),
    import('./web-sessions.ts'),
  ]);
  privateDir(config.dataDir);
  const file = embeddedFile(config.dataDir);
  const closers = new Closers();
  const money = openEmbeddedStore(file, {
    defaults: config.budgets.defaults,
    timeZone: config.budgets.timeZone,
    reservationTtlMs: config.store.reservationTtlMs,
    now,
  });
  closers.add(() => money.close());
  try {
    const keys = closers.once('keys', () => new SqliteKeys(file));
    const alarms = closers.once('alarms', () => new SqliteAlarms(file));
    const reconciliations = closers.once('reconciliations', () => new SqliteReconStore(file));
    return {
      kind: 'embedded',
      money,
      keys,
      alarms,
      broadcast: localBroadcast(),
      reconciliations,
      get runs() {
        return closers.once('runs', () => new SqliteRunStore(file, { now }));
      },
      get approvals() {
        return closers.once('approvals', () => new SqliteApprovalStore(file, { now }));
      },
      get sessions() {
        return closers.once('sessions', () => new SqliteSessionStore(file));
      },
      get webSessions() {
        return closers.once('web sessions', () => new SqliteWebSessions(file, config.dataDir));
      },
      get batches() {
        return closers.once('batches', () => new SqliteBatchStore(file));
      },
      runQueue: (o) => new LocalRunQueue({ onError: o.onError }),
      reconcileSchedule: async (rec, o) => timerSchedule(rec, o),
      close: () => closers.close(),
    };
  } catch (err) {
    void closers.close().catch(() => {});
    throw err;
  }
}
