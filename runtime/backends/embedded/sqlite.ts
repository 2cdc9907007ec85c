import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { privateDir, privateFile } from '../../store/data-dir.ts';

/**
 * A connection to the embedded backend's file, set up the way every table in it expects: WAL (so
 * readers never block the writer), and waiting up to 5 s for another connection's write lock
 * instead of failing at once. `synchronous: 'NORMAL'` for the stores on the hot path: under WAL a
 * power cut may lose the last transactions but never corrupts the file. The file and its `-wal`
 * and `-shm` are 0600 in a 0700 folder (SQLite creates the latter with the file's mode).
 */
/** The page size of a new file. */
export const PAGE_SIZE = 16_384;

export function openSqlite(path: string, opts: { synchronous?: 'NORMAL' } = {}): Database.Database {
  const file = path !== ':memory:' && path !== '';
  if (file) privateDir(dirname(path));
  const db = new Database(path);
  if (file) privateFile(path);
  // The timeout first: switching to WAL may need a lock another process holds for a moment.
  db.pragma('busy_timeout = 5000');
  // A new file gets 16 KiB pages (an existing one keeps its own): a lease batch writes a few
  // hundred ledger rows of ~700 bytes, and SQLite writes the WAL and checkpoints a page per system
  // call, so bigger pages are fewer calls for the same bytes.
  if (file) db.pragma(`page_size = ${PAGE_SIZE}`);
  db.pragma('journal_mode = WAL');
  if (opts.synchronous) db.pragma(`synchronous = ${opts.synchronous}`);
  // Statement journals in memory: a lease batch inserts up to 256 ledger rows a statement inside
  // its transaction, and SQLite keeps such a statement's undo pages in a temporary file once they
  // pass 64 KiB — ~0.6 file writes a call under load, for pages that never need to reach a disk
  // (the WAL is what makes a commit durable).
  db.pragma('temp_store = MEMORY');
  if (file) for (const extra of ['-wal', '-shm']) privateFile(`${path}${extra}`);
  return db;
}
