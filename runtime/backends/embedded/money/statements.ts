import type Database from 'better-sqlite3';

/** Budgets and kill switches of one identity are read in one statement: at most six scopes. */
export const MAX_SCOPES = 6;

export interface BudgetRow {
  id: string;
  scope: string;
  kind: string;
  owner: string;
  ceiling: unknown;
  window_spec: string;
  frozen: unknown;
  reserved: unknown;
  window_key: string;
  spent: unknown;
  created_at: number;
  updated_at: number;
}

export interface ReservationRow {
  id: string;
  amount: unknown;
  scopes: string;
  identity: string;
  label: string;
  created_at: number;
  expires_at: number;
  status: 'open' | 'settled' | 'released' | 'expired';
  entry: string | null;
  /** Rate limit holds (runtime/store/rates.ts `holdsText`); null when none. */
  rates?: string | null;
  /** The calls charged from it (call-set.ts); null on a row older than the column (lease_calls). */
  calls?: string | null;
}

export interface KillRow {
  scope: string;
  reason: string;
  actor: string;
  at: number;
}

/** Every statement the store runs on the hot path, prepared once when the store opens. */
export function prepareStatements(db: Database.Database) {
  const inList = Array(MAX_SCOPES).fill('?').join(', ');
  return {
    budgetsIn: db.prepare(`SELECT * FROM budgets WHERE scope IN (${inList})`),
    budgetById: db.prepare('SELECT * FROM budgets WHERE id = ?'),
    budgetByScope: db.prepare('SELECT * FROM budgets WHERE scope = ?'),
    budgetsAll: db.prepare('SELECT * FROM budgets ORDER BY scope'),
    budgetsOfKind: db.prepare('SELECT * FROM budgets WHERE kind = ? ORDER BY scope'),
    insertBudget: db.prepare(
      `INSERT OR IGNORE INTO budgets (id, scope, kind, owner, ceiling, window_spec, created_at, updated_at)
       VALUES (@id, @scope, @kind, @owner, @ceiling, @window, @now, @now)`,
    ),
    /** One statement for every budget of the identity (unused slots are ''). */
    reserveIn: db.prepare(
      `UPDATE budgets SET reserved = reserved + ?, updated_at = ? WHERE id IN (${inList})`,
    ),
    charge: db.prepare(
      `UPDATE budgets SET
         spent = CASE WHEN window_key = @key THEN spent + @cost ELSE @cost END,
         window_key = @key, reserved = MAX(0, reserved - @release), updated_at = @now
       WHERE id = @id`,
    ),
    /** `charge` for every calendar/total budget in one window (unused id slots are ''). */
    chargeIn: db.prepare(
      `UPDATE budgets SET
         spent = CASE WHEN window_key = ? THEN spent + ? ELSE ? END,
         window_key = ?, reserved = MAX(0, reserved - ?), updated_at = ?
       WHERE id IN (${inList})`,
    ),
    bucketSum: db.prepare(
      'SELECT COALESCE(SUM(spent), 0) AS s FROM budget_buckets WHERE budget_id = ? AND bucket >= ?',
    ),
    bucketAdd: db.prepare(
      `INSERT INTO budget_buckets (budget_id, bucket, spent) VALUES (?, ?, ?)
       ON CONFLICT (budget_id, bucket) DO UPDATE SET spent = spent + excluded.spent`,
    ),
    bucketPrune: db.prepare('DELETE FROM budget_buckets WHERE budget_id = ? AND bucket < ?'),
    setCeiling: db.prepare('UPDATE budgets SET ceiling = ?, updated_at = ? WHERE id = ?'),
    setFrozen: db.prepare('UPDATE budgets SET frozen = ?, updated_at = ? WHERE id = ?'),
    killsIn: db.prepare(`SELECT * FROM kills WHERE scope IN (${inList})`),
    killsAll: db.prepare('SELECT * FROM kills ORDER BY at, scope'),
    killGet: db.prepare('SELECT * FROM kills WHERE scope = ?'),
    killPut: db.prepare(
      `INSERT INTO kills (scope, reason, actor, at) VALUES (@scope, @reason, @actor, @at)
       ON CONFLICT (scope) DO UPDATE SET reason = excluded.reason, actor = excluded.actor, at = excluded.at`,
    ),
    killDelete: db.prepare('DELETE FROM kills WHERE scope = ?'),
    resGet: db.prepare('SELECT * FROM reservations WHERE id = ?'),
    resInsert: db.prepare(
      `INSERT INTO reservations (id, amount, scopes, identity, label, created_at, expires_at, status, calls)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'open', '')`,
    ),
    resClose: db.prepare(
      `INSERT INTO reservations (id, amount, scopes, identity, label, created_at, expires_at, status, closed_at, entry)
       VALUES (@id, 0, '[]', '{}', '{}', @now, @now, @status, @now, @entry)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, closed_at = excluded.closed_at,
         entry = excluded.entry`,
    ),
    /** A lease after a step: what it still holds, and its expiry moved (null: unchanged). */
    resUpdate: db.prepare(
      "UPDATE reservations SET amount = ?, expires_at = COALESCE(?, expires_at) WHERE id = ? AND status = 'open'",
    ),
    resExpired: db.prepare(
      "SELECT * FROM reservations WHERE status = 'open' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
    ),
    /** When the next open reservation falls due (null: none open). */
    resNextDue: db.prepare("SELECT MIN(expires_at) AS t FROM reservations WHERE status = 'open'"),
    /** Open reservations holding one scope (scopes is a JSON array of strings). */
    resOfScope: db.prepare(
      "SELECT * FROM reservations WHERE status = 'open' AND EXISTS (SELECT 1 FROM json_each(reservations.scopes) WHERE value = ?)",
    ),
    resForget: db.prepare("DELETE FROM reservations WHERE status <> 'open' AND closed_at < ?"),
    ledgerInsert: db.prepare(
      `INSERT INTO ledger (id, at, day, team, env, seat, workflow, run, kind, name, outcome, cost,
         t_input, t_cw5m, t_cw1h, t_cr, t_out, entry)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    auditInsert: db.prepare('INSERT INTO audit (id, at, target, entry) VALUES (?, ?, ?, ?)'),
    ping: db.prepare('SELECT MAX(version) AS v FROM schema_version'),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
