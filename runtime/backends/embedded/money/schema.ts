import type Database from 'better-sqlite3';

/**
 * 2: `reservations.calls` (the calls charged from a lease, call-set.ts). A Chokepoint that knows
 * only version 1 would look for those calls in `lease_calls` alone and charge a replayed call
 * twice, so it must refuse the file rather than open it.
 */
export const SCHEMA_VERSION = 2;

/**
 * The embedded store's tables. Money columns are integer µ$. Budgets keep the spend of their current
 * calendar window in `spent` (with `window_key` naming that window: a row from an older window reads
 * as 0) and rolling spend in `budget_buckets`. Reservations stay as tombstones after they close so a
 * second settle of the same id is a no-op; ledger and audit are append-only.
 */
const V1 = `
CREATE TABLE budgets (
  id TEXT PRIMARY KEY,
  scope TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  owner TEXT NOT NULL,
  ceiling INTEGER NOT NULL,
  window_spec TEXT NOT NULL,
  frozen INTEGER NOT NULL DEFAULT 0,
  reserved INTEGER NOT NULL DEFAULT 0,
  window_key TEXT NOT NULL DEFAULT '',
  spent INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX budgets_kind ON budgets (kind, scope);

CREATE TABLE budget_buckets (
  budget_id TEXT NOT NULL,
  bucket INTEGER NOT NULL,
  spent INTEGER NOT NULL,
  PRIMARY KEY (budget_id, bucket)
) WITHOUT ROWID;

CREATE TABLE reservations (
  id TEXT PRIMARY KEY,
  amount INTEGER NOT NULL,
  scopes TEXT NOT NULL,
  identity TEXT NOT NULL,
  label TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  status TEXT NOT NULL,
  closed_at INTEGER,
  entry TEXT
);
CREATE INDEX reservations_open ON reservations (expires_at) WHERE status = 'open';
CREATE INDEX reservations_closed ON reservations (closed_at) WHERE status <> 'open';

CREATE TABLE kills (
  scope TEXT PRIMARY KEY,
  reason TEXT NOT NULL,
  actor TEXT NOT NULL,
  at INTEGER NOT NULL
);

CREATE TABLE ledger (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  at INTEGER NOT NULL,
  day TEXT NOT NULL,
  team TEXT NOT NULL,
  env TEXT NOT NULL,
  seat TEXT NOT NULL,
  workflow TEXT,
  run TEXT,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  outcome TEXT NOT NULL,
  cost INTEGER NOT NULL,
  t_input INTEGER NOT NULL,
  t_cw5m INTEGER NOT NULL,
  t_cw1h INTEGER NOT NULL,
  t_cr INTEGER NOT NULL,
  t_out INTEGER NOT NULL,
  entry TEXT NOT NULL
);
CREATE INDEX ledger_at ON ledger (at);
CREATE INDEX ledger_team ON ledger (team, at);
CREATE INDEX ledger_env ON ledger (env, at);
CREATE INDEX ledger_seat ON ledger (seat, at);
CREATE INDEX ledger_workflow ON ledger (workflow, at) WHERE workflow IS NOT NULL;
CREATE INDEX ledger_run ON ledger (run, at) WHERE run IS NOT NULL;

CREATE TABLE audit (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  at INTEGER NOT NULL,
  target TEXT NOT NULL,
  entry TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_target ON audit (target, at);
`;

/**
 * Added after version 1, without a version of its own (an older Chokepoint ignores it): one row
 * per request id whose expired charge reconciliation corrected, so it is corrected once.
 */
const CORRECTIONS = `
CREATE TABLE IF NOT EXISTS corrections (
  request_id TEXT PRIMARY KEY,
  expired_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  entry TEXT NOT NULL
);
`;

/**
 * Added after version 1 as well: the calls charged from each budget lease, so a lease step
 * repeated (a batch retried, a journal replayed) charges its call once (lease-steps.ts). Since the
 * `reservations.calls` column, only for what that column cannot hold: a call not named by a number,
 * a lease with no row, a row from before the column.
 */
const LEASE_CALLS = `
CREATE TABLE IF NOT EXISTS lease_calls (
  lease TEXT NOT NULL,
  call TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (lease, call)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lease_calls_at ON lease_calls (at);
`;

/** Creates the schema on a fresh file, checks the version of an existing one. */
export function migrate(db: Database.Database): void {
  db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
    const current = row.v ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new Error(
        `the store file has schema version ${current}, newer than this Chokepoint (${SCHEMA_VERSION}): upgrade Chokepoint`,
      );
    }
    if (current < 1) db.exec(V1);
    db.exec(CORRECTIONS);
    db.exec(LEASE_CALLS);
    // Added after version 1 as well: a reservation's rate limit holds (runtime/store/rates.ts).
    const columns = db.prepare("SELECT name FROM pragma_table_info('reservations')").all() as {
      name: string;
    }[];
    if (!columns.some((c) => c.name === 'rates')) db.exec('ALTER TABLE reservations ADD COLUMN rates TEXT');
    // Version 2: the calls charged from a lease (call-set.ts); null on a row from before: its
    // calls are in lease_calls.
    if (!columns.some((c) => c.name === 'calls')) db.exec('ALTER TABLE reservations ADD COLUMN calls TEXT');
    if (current < SCHEMA_VERSION) {
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SCHEMA_VERSION);
    }
  }).immediate();
}
