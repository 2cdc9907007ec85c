import { chmodSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';

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
