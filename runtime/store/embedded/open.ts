import { chmodSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/** What Chokepoint keeps in its data folder. */
const DATA_FILES =
  /^(chokepoint\.db(-wal|-shm|-journal)?|admin-token|session-secret|unsettled\.jsonl(\.\S+)?)$/;

/**
 * The data folder holds the ledger, the admin token and session secrets: it is created 0700, and
 * an existing one this process owns is tightened to 0700 when it holds only Chokepoint's files
 * (never a shared folder such as /tmp that `dataDir` happens to name), so no other user on the
 * host — a stdio MCP server run as `nobody` included — can read what is inside.
 */
export function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    const st = statSync(dir);
    if ((st.mode & 0o077) === 0 || (st.mode & 0o1000) !== 0 || st.uid !== process.getuid?.()) return;
    if (!readdirSync(dir).every((name) => DATA_FILES.test(name))) return;
    chmodSync(dir, st.mode & 0o700);
  } catch {
    // not ours to change (or a platform without modes): left as it is
  }
}

/** A file in the data folder readable and writable by this user only. */
export function privateFile(path: string): void {
  try {
    if (existsSync(path) && (statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  } catch {
    // not ours to change: left as it is
  }
}

/**
 * A connection to the embedded backend's file, set up the way every table in it expects: WAL (so
 * readers never block the writer), and waiting up to 5 s for another connection's write lock
 * instead of failing at once. `synchronous: 'NORMAL'` for the stores on the hot path: under WAL a
 * power cut may lose the last transactions but never corrupts the file. The file and its `-wal`
 * and `-shm` are 0600 in a 0700 folder (SQLite creates the latter with the file's mode).
 */
export function openSqlite(path: string, opts: { synchronous?: 'NORMAL' } = {}): Database.Database {
  const file = path !== ':memory:' && path !== '';
  if (file) privateDir(dirname(path));
  const db = new Database(path);
  if (file) privateFile(path);
  // The timeout first: switching to WAL may need a lock another process holds for a moment.
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  if (opts.synchronous) db.pragma(`synchronous = ${opts.synchronous}`);
  if (file) for (const extra of ['-wal', '-shm']) privateFile(`${path}${extra}`);
  return db;
}
