import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Moves WAL checkpoints off the hot path. SQLite's automatic checkpoint runs inside whichever commit
 * crosses the threshold and fsyncs there: a multi-millisecond stall for that one admit or settle.
 * Instead a worker thread with its own connection runs a PASSIVE checkpoint every second (PASSIVE
 * never blocks writers), and the main connection's auto-checkpoint stays on at a high threshold as a
 * backstop in case the worker is gone.
 */
const SOURCE = `
const { workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {}
}, workerData.everyMs);
`;

export const BACKSTOP_PAGES = 16_384;

export interface Checkpointer {
  stop(): Promise<void>;
}

export function startCheckpointer(path: string, everyMs = 1000): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(SOURCE, { eval: true, workerData: { path, everyMs, driver } });
  worker.unref();
  // A failed checkpointer only means the backstop checkpoints inside commits again.
  worker.on('error', () => {});
  return {
    stop: async () => {
      await worker.terminate();
    },
  };
}
