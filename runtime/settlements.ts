import { appendFileSync, existsSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import type { Logger } from './log.ts';
import { privateDir } from './store/data-dir.ts';
import type { LedgerEntry, LedgerInput, MoneyStore, Reservation } from './store/port.ts';

/** What keeping settlements needs of the core. */
interface Core {
  store: MoneyStore;
  log: Logger;
  now(): number;
  config: { dataDir: string };
}

type Kept = { op: 'settle' | 'release'; reservationId: string; entry: LedgerInput };

/**
 * Nothing lost: a settlement (or release) the store cannot take after four tries is kept on disk
 * (`file`, 0600 in the private data folder) and applied as soon as the store answers again —
 * retried every second, before any sweep, so the reservations it closes are settled rather than
 * expired. Reservations a crashed caller never settled are charged their worst case by the sweep
 * every 10 s (admit also sweeps a few per call; this catches the rest when traffic is quiet).
 */
export function keepSettlements(rt: Core, file: string) {
  const { store, log } = rt;

  /** The store's answer; on a failure three more tries (50, 200, 800 ms apart), then kept on disk. */
  function retryOrKeep(op: () => Promise<LedgerEntry>, record: Kept): Promise<LedgerEntry | undefined> {
    // The first try with no async step of its own (every call settles through here).
    let first: Promise<LedgerEntry>;
    try {
      first = op();
    } catch (err) {
      first = Promise.reject(err);
    }
    return first.catch(() => retryLater(op, record));
  }

  async function retryLater(op: () => Promise<LedgerEntry>, record: Kept): Promise<LedgerEntry | undefined> {
    for (let attempt = 1; attempt < 4; attempt++) {
      await new Promise((r) => setTimeout(r, 50 * 4 ** (attempt - 1)));
      try {
        return await op();
      } catch (err) {
        if (attempt === 3) {
          privateDir(rt.config.dataDir);
          appendFileSync(file, `${JSON.stringify({ ...record, at: rt.now() })}\n`);
          log.error('store refused a settlement; kept on disk for replay', {
            error: err,
            reservationId: record.reservationId,
            file,
          });
          return undefined;
        }
      }
    }
    return undefined;
  }

  let replaying: Promise<void> | undefined;
  const replay = () => {
    if (!existsSync(file)) return Promise.resolve();
    replaying ??= replayUnsettled(rt, file).finally(() => {
      replaying = undefined;
    });
    return replaying;
  };
  const replayer = setInterval(() => void replay().catch(() => {}), 1_000);
  replayer.unref();
  const sweeper = setInterval(() => {
    replay()
      .then(() => store.sweepExpired())
      .then((n) => n && log.info('expired reservations charged their worst case', { count: n }))
      .catch((err) => log.warn('reservation sweep failed', { error: err }));
  }, 10_000);
  sweeper.unref();

  return {
    settle: (r: Reservation, entry: LedgerInput) =>
      retryOrKeep(() => store.settle(r.id, entry), { op: 'settle', reservationId: r.id, entry }),
    release: (r: Reservation, entry: LedgerInput) =>
      retryOrKeep(() => store.release(r.id, entry), { op: 'release', reservationId: r.id, entry }),
    replay,
    async stop() {
      clearInterval(sweeper);
      clearInterval(replayer);
      await replaying?.catch(() => {});
    },
  };
}

/**
 * Settlements kept on disk while the store was down: applied at start and, while the process runs,
 * as soon as the store answers again. One that still fails is kept for the next try.
 */
async function replayUnsettled(rt: Pick<Core, 'store' | 'log'>, file: string): Promise<void> {
  if (!existsSync(file)) return;
  const work = `${file}.replaying`;
  // A previous replay that died midway left its work file: take it up first.
  if (!existsSync(work)) renameSync(file, work);
  const lines = readFileSync(work, 'utf8').split('\n').filter(Boolean);
  let done = 0;
  const kept: string[] = [];
  for (const line of lines) {
    const rec = JSON.parse(line) as { op: 'settle' | 'release'; reservationId: string; entry: LedgerInput };
    const fn = rec.op === 'settle' ? rt.store.settle : rt.store.release;
    try {
      await fn.call(rt.store, rec.reservationId, rec.entry);
      done++;
    } catch {
      kept.push(line);
    }
  }
  if (kept.length) appendFileSync(file, `${kept.join('\n')}\n`);
  unlinkSync(work);
  if (done) rt.log.info('applied settlements kept while the store was down', { done, kept: kept.length });
}
