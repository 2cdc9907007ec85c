import type Database from 'better-sqlite3';
import {
  APPROVAL_STATES,
  type ApprovalChange,
  ApprovalConflictError,
  type ApprovalFilter,
  type ApprovalItem,
  ApprovalNotFoundError,
  type ApprovalState,
  type ApprovalStore,
  DECISION_STATE,
  type Decision,
  sameDecision,
} from '../../store/approvals.ts';
import type { AuditInput } from '../../store/port.ts';
import { prepareAudit } from '../../store/records.ts';
import { decodePosition, encodePosition } from '../cursor.ts';
import { migrate } from './money/schema.ts';
import { openSqlite } from './sqlite.ts';

/**
 * Approval items in SQLite, on this store's own connection to the file the other embedded stores
 * use (WAL, so they read while one writes). The item is kept whole as JSON beside the columns that
 * lists filter and order by. A decision is one conditional UPDATE (`… WHERE state = 'pending'`),
 * so of two decisions racing on an item, from this process or another sharing the file, exactly
 * one changes the row.
 *
 * Expiry: a sweep at `startExpiry` and one timer, armed for the next pending item due (re-armed
 * on open and decide, and at least every minute, for items another process opened). Change events
 * are in-process only.
 */

const SCHEMA = `
CREATE TABLE IF NOT EXISTS approvals (
  id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  kind TEXT NOT NULL,
  run_id TEXT NOT NULL,
  workflow TEXT NOT NULL,
  team TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approvals_state_created ON approvals (state, created_at, id);
CREATE INDEX IF NOT EXISTS approvals_created ON approvals (created_at, id);
CREATE INDEX IF NOT EXISTS approvals_state_expires ON approvals (state, expires_at);
CREATE INDEX IF NOT EXISTS approvals_run ON approvals (run_id, created_at, id);
`;

/** Longest the expiry timer sleeps, so items opened by another process sharing the file are seen. */
const MAX_SLEEP_MS = 60_000;

/** Newest first; default 50, at most 1,000. */
function approvalListLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return 50;
  return Math.min(Math.max(Math.floor(limit), 1), 1_000);
}

function decidedState(decision: Decision): ApprovalState {
  if (decision.action === 'expire') return 'expired';
  const state = DECISION_STATE[decision.action];
  if (!state) throw new Error(`unknown decision action: ${JSON.stringify(decision.action)}`);
  return state;
}

interface Row {
  body: string;
}

const FILTER_COLUMNS = [
  ['state', 'state'],
  ['workflow', 'workflow'],
  ['team', 'team'],
  ['reason', 'reason'],
  ['runId', 'run_id'],
] as const;

function prepare(db: Database.Database) {
  return {
    open: db.prepare<[string, string, string, string, string, string, string, number, number, string]>(
      `INSERT OR IGNORE INTO approvals
         (id, state, kind, run_id, workflow, team, reason, created_at, expires_at, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    get: db.prepare<[string], Row>('SELECT body FROM approvals WHERE id = ?'),
    decide: db.prepare<[string, string, string]>(
      `UPDATE approvals SET state = ?, body = ? WHERE id = ? AND state = 'pending'`,
    ),
    reopen: db.prepare<[string, string, string, string]>(
      `UPDATE approvals SET state = 'pending', body = ? WHERE id = ? AND state = ? AND body = ?`,
    ),
    counts: db.prepare<[], { state: string; n: number }>(
      'SELECT state, COUNT(*) AS n FROM approvals GROUP BY state',
    ),
    due: db.prepare<[number], { id: string }>(
      `SELECT id FROM approvals WHERE state = 'pending' AND expires_at <= ? ORDER BY expires_at, id`,
    ),
    nextDue: db.prepare<[number], { at: number }>(
      `SELECT expires_at AS at FROM approvals WHERE state = 'pending' AND expires_at > ?
       ORDER BY expires_at LIMIT 1`,
    ),
  };
}

export class SqliteApprovalStore implements ApprovalStore {
  readonly backend = 'embedded' as const;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly s: ReturnType<typeof prepare>;
  private readonly auditInsert: Database.Statement;
  private readonly listStatements = new Map<string, Database.Statement<unknown[], Row>>();
  private readonly listeners = new Set<(change: ApprovalChange) => void>();
  private onDue?: (id: string) => Promise<void>;
  /** Items handed to onDue (and not failed): not handed again while they stay pending. */
  private readonly fired = new Set<string>();
  private timer?: NodeJS.Timeout;
  private timerAt = Number.POSITIVE_INFINITY;
  private sweeping = false;
  private sweepAgain = false;
  private closed = false;

  constructor(path: string, opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
    this.db = openSqlite(path, { synchronous: 'NORMAL' });
    this.db.exec(SCHEMA);
    // The money store's audit table, in the same file, is written by `reopen` in its transaction.
    migrate(this.db);
    this.s = prepare(this.db);
    this.auditInsert = this.db.prepare('INSERT INTO audit (id, at, target, entry) VALUES (?, ?, ?, ?)');
  }

  async open(item: ApprovalItem): Promise<{ item: ApprovalItem; created: boolean }> {
    if (!APPROVAL_STATES.includes(item.state)) throw new Error(`unknown approval state: ${item.state}`);
    const created =
      this.s.open.run(
        item.id,
        item.state,
        item.kind,
        item.runId,
        item.workflow,
        item.identity.team,
        item.reason,
        item.createdAt,
        item.expiresAt,
        JSON.stringify(item),
      ).changes === 1;
    if (!created) return { item: (await this.get(item.id))!, created };
    if (item.state === 'pending') this.arm(item.expiresAt);
    this.emit({ id: item.id, state: item.state });
    return { item: JSON.parse(JSON.stringify(item)) as ApprovalItem, created };
  }

  async get(id: string): Promise<ApprovalItem | undefined> {
    const row = this.s.get.get(id);
    return row && (JSON.parse(row.body) as ApprovalItem);
  }

  async list(filter: ApprovalFilter = {}): Promise<{ items: ApprovalItem[]; next?: string }> {
    const limit = approvalListLimit(filter.limit);
    const where: string[] = [];
    const params: unknown[] = [];
    for (const [key, column] of FILTER_COLUMNS) {
      const value = filter[key];
      if (value) {
        where.push(`${column} = ?`);
        params.push(value);
      }
    }
    if (filter.cursor) {
      const c = decodePosition(filter.cursor, 'approval');
      where.push('(created_at, id) < (?, ?)');
      params.push(c.at, c.id);
    }
    const sql = `SELECT body FROM approvals ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at DESC, id DESC LIMIT ?`;
    let stmt = this.listStatements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare<unknown[], Row>(sql);
      this.listStatements.set(sql, stmt);
    }
    const rows = stmt.all(...params, limit + 1);
    const items = rows.slice(0, limit).map((r) => JSON.parse(r.body) as ApprovalItem);
    const last = items[items.length - 1];
    return rows.length > limit && last ? { items, next: encodePosition(last.createdAt, last.id) } : { items };
  }

  async counts(): Promise<Record<ApprovalState, number>> {
    const c = Object.fromEntries(APPROVAL_STATES.map((s) => [s, 0])) as Record<ApprovalState, number>;
    for (const { state, n } of this.s.counts.all()) c[state as ApprovalState] = n;
    return c;
  }

  async decide(id: string, decision: Decision): Promise<ApprovalItem> {
    const state = decidedState(decision);
    const item = await this.get(id);
    if (!item) throw new ApprovalNotFoundError(id);
    if (item.state !== 'pending') throw new ApprovalConflictError(item);
    // A pending item's body never changes (open never overwrites), so the body built from this
    // read is right whenever the conditional update below is the one that ends the pending state.
    const decided: ApprovalItem = { ...item, state, decision };
    if (this.s.decide.run(state, JSON.stringify(decided), id).changes === 0) {
      const now = await this.get(id);
      if (!now) throw new ApprovalNotFoundError(id);
      throw new ApprovalConflictError(now);
    }
    this.fired.delete(id);
    this.emit({ id, state });
    if (this.timerAt === item.expiresAt) this.arm(Number.POSITIVE_INFINITY, true); // armed for it
    return JSON.parse(JSON.stringify(decided)) as ApprovalItem;
  }

  async reopen(id: string, decision: Decision, audit?: AuditInput): Promise<ApprovalItem | undefined> {
    const entry = audit && prepareAudit(audit, this.now());
    const row = this.s.get.get(id);
    if (!row) return undefined;
    const item = JSON.parse(row.body) as ApprovalItem;
    if (item.state === 'pending' || !sameDecision(item.decision, decision)) return item;
    const { decision: _undone, ...rest } = item;
    const pending: ApprovalItem = { ...rest, state: 'pending' };
    // One transaction: the item pending again and its audit entry, or neither.
    const reopened = this.db
      .transaction(() => {
        if (this.s.reopen.run(JSON.stringify(pending), id, item.state, row.body).changes === 0) return false;
        if (entry) this.auditInsert.run(entry.id, entry.at, entry.target, JSON.stringify(entry));
        return true;
      })
      .immediate();
    if (!reopened) return this.get(id);
    this.arm(pending.expiresAt);
    this.emit({ id, state: 'pending' });
    return JSON.parse(JSON.stringify(pending)) as ApprovalItem;
  }

  async startExpiry(onDue: (id: string) => Promise<void>): Promise<void> {
    if (this.closed) throw new Error('approval store is closed');
    if (this.onDue) throw new Error('approval expiry is already started');
    this.onDue = onDue;
    this.arm(this.now());
  }

  subscribe(listener: (change: ApprovalChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.listeners.clear();
    if (this.db.open) this.db.close();
  }

  private emit(change: ApprovalChange): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch {
        // A failing listener must not fail the change that was made, nor the other listeners.
      }
    }
  }

  /**
   * Makes sure the timer fires by `at` (and within `MAX_SLEEP_MS`). `recompute`: the item the
   * timer was armed for is gone, so arm for whatever is due next instead.
   */
  private arm(at: number, recompute = false): void {
    if (!this.onDue || this.closed) return;
    if (recompute) {
      if (this.sweeping) return; // the running sweep arms when it ends
      at = this.s.nextDue.get(this.now())?.at ?? Number.POSITIVE_INFINITY;
    } else if (at >= this.timerAt) {
      return;
    }
    const now = this.now();
    const fireAt = Math.min(at, now + MAX_SLEEP_MS);
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = fireAt;
    this.timer = setTimeout(() => void this.sweep(), Math.max(0, fireAt - now));
    this.timer.unref();
  }

  /** Hands every pending item that is due to onDue, one at a time, then arms for the next. */
  private async sweep(): Promise<void> {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    if (this.sweeping) {
      this.sweepAgain = true;
      return;
    }
    this.sweeping = true;
    let now = this.now();
    try {
      do {
        this.sweepAgain = false;
        now = this.now();
        if (this.closed || !this.db.open) return;
        const due = this.s.due.all(now).map((r) => r.id);
        const still = new Set(due);
        for (const id of this.fired) if (!still.has(id)) this.fired.delete(id); // decided elsewhere
        for (const id of due) {
          if (this.closed) return;
          if (this.fired.has(id)) continue;
          this.fired.add(id);
          try {
            await this.onDue!(id);
          } catch {
            this.fired.delete(id); // tried again at the next sweep
          }
        }
      } while (this.sweepAgain && !this.closed);
    } catch {
      // The database went away under the sweep (closing): nothing to do.
    } finally {
      this.sweeping = false;
    }
    if (this.closed || !this.db.open) return;
    const next = this.s.nextDue.get(now)?.at ?? Number.POSITIVE_INFINITY;
    this.arm(Math.max(next, now + 1));
  }
}
