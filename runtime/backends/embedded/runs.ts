import type Database from 'better-sqlite3';
import {
  type JournalEntry,
  listLimit,
  RUN_STATES,
  type RunFilter,
  type RunRecord,
  type RunState,
  type RunStore,
  type RunSummary,
  summary,
} from '../../store/runs.ts';
import { decodeCursor, encodeCursor } from '../cursor.ts';
import { openSqlite } from './sqlite.ts';

/**
 * Runs in SQLite, on its own connection to the file the money store uses. The record is kept whole
 * as JSON beside the columns that lists filter and order by; the journal is one row per completed
 * call; a lease is one row per claimed run, taken by a single conditional upsert so two processes
 * sharing the file can never both hold it.
 */

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  workflow TEXT NOT NULL,
  state TEXT NOT NULL,
  team TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_state_started ON runs (state, started_at, id);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at, id);
CREATE INDEX IF NOT EXISTS runs_workflow_started ON runs (workflow, started_at, id);

CREATE TABLE IF NOT EXISTS run_journal (
  run_id TEXT NOT NULL,
  key TEXT NOT NULL,
  seq INTEGER NOT NULL,
  entry TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_journal_order ON run_journal (run_id, seq);

CREATE TABLE IF NOT EXISTS run_leases (
  run_id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  until INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS workflow_prefixes (
  workflow TEXT NOT NULL,
  version TEXT NOT NULL,
  hash TEXT NOT NULL,
  PRIMARY KEY (workflow, version)
) WITHOUT ROWID;
`;

interface Row {
  record: string;
}

function prepare(db: Database.Database) {
  return {
    save: db.prepare<[string, string, string, string, number, string]>(
      `INSERT INTO runs (id, workflow, state, team, started_at, record) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET workflow = excluded.workflow, state = excluded.state,
         team = excluded.team, started_at = excluded.started_at, record = excluded.record`,
    ),
    get: db.prepare<[string], Row>('SELECT record FROM runs WHERE id = ?'),
    counts: db.prepare<[], { state: string; n: number }>(
      'SELECT state, COUNT(*) AS n FROM runs GROUP BY state',
    ),
    journal: db.prepare<[string], { entry: string }>(
      'SELECT entry FROM run_journal WHERE run_id = ? ORDER BY seq',
    ),
    append: db.prepare<{ run: string; key: string; entry: string }>(
      `INSERT OR IGNORE INTO run_journal (run_id, key, seq, entry)
       VALUES (@run, @key, (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_journal WHERE run_id = @run), @entry)`,
    ),
    claim: db.prepare<{ run: string; owner: string; until: number; now: number }>(
      `INSERT INTO run_leases (run_id, owner, until) VALUES (@run, @owner, @until)
       ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, until = excluded.until
       WHERE run_leases.owner = excluded.owner OR run_leases.until <= @now`,
    ),
    renew: db.prepare<[number, string, string]>(
      'UPDATE run_leases SET until = ? WHERE run_id = ? AND owner = ?',
    ),
    unclaim: db.prepare<[string, string]>('DELETE FROM run_leases WHERE run_id = ? AND owner = ?'),
    recordPrefix: db.prepare<[string, string, string]>(
      'INSERT OR IGNORE INTO workflow_prefixes (workflow, version, hash) VALUES (?, ?, ?)',
    ),
    prefix: db.prepare<[string, string], { hash: string }>(
      'SELECT hash FROM workflow_prefixes WHERE workflow = ? AND version = ?',
    ),
    sizeOf: db.prepare<[string, string], { n: number }>(
      `SELECT COALESCE((SELECT LENGTH(CAST(record AS BLOB)) FROM runs WHERE id = ?), 0)
            + COALESCE((SELECT SUM(LENGTH(CAST(entry AS BLOB))) FROM run_journal WHERE run_id = ?), 0) AS n`,
    ),
  };
}

export class SqliteRunStore implements RunStore {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly s: ReturnType<typeof prepare>;
  private readonly renewAll: (owner: string, runIds: string[], until: number) => string[];
  /** One prepared statement per filter shape, made the first time the shape is asked for. */
  private readonly listStatements = new Map<string, Database.Statement<unknown[], Row>>();

  constructor(path: string, opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
    this.db = openSqlite(path, { synchronous: 'NORMAL' });
    this.db.exec(SCHEMA);
    this.s = prepare(this.db);
    this.renewAll = this.db.transaction((owner: string, runIds: string[], until: number) =>
      runIds.filter((id) => this.s.renew.run(until, id, owner).changes === 0),
    );
  }

  async save(run: RunRecord): Promise<void> {
    this.s.save.run(run.id, run.workflow, run.state, run.identity.team, run.startedAt, JSON.stringify(run));
  }

  async get(id: string): Promise<RunRecord | undefined> {
    const row = this.s.get.get(id);
    return row && (JSON.parse(row.record) as RunRecord);
  }

  async list(filter: RunFilter = {}): Promise<{ runs: RunSummary[]; next?: string }> {
    const limit = listLimit(filter.limit);
    const where: string[] = [];
    const params: unknown[] = [];
    for (const column of ['state', 'workflow', 'team'] as const) {
      const value = filter[column];
      if (value) {
        where.push(`${column} = ?`);
        params.push(value);
      }
    }
    if (filter.cursor) {
      const c = decodeCursor(filter.cursor);
      where.push('(started_at, id) < (?, ?)');
      params.push(c.startedAt, c.id);
    }
    const sql = `SELECT record FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY started_at DESC, id DESC LIMIT ?`;
    let stmt = this.listStatements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare<unknown[], Row>(sql);
      this.listStatements.set(sql, stmt);
    }
    const rows = stmt.all(...params, limit + 1);
    const runs = rows.slice(0, limit).map((r) => summary(JSON.parse(r.record) as RunRecord));
    const last = runs[runs.length - 1];
    return rows.length > limit && last
      ? { runs, next: encodeCursor({ startedAt: last.startedAt, id: last.id }) }
      : { runs };
  }

  async counts(): Promise<Record<RunState, number>> {
    const c = Object.fromEntries(RUN_STATES.map((s) => [s, 0])) as Record<RunState, number>;
    for (const { state, n } of this.s.counts.all()) c[state as RunState] = n;
    return c;
  }

  async journal(runId: string): Promise<JournalEntry[]> {
    return this.s.journal.all(runId).map((r) => JSON.parse(r.entry) as JournalEntry);
  }

  async appendJournal(runId: string, entry: JournalEntry): Promise<void> {
    this.s.append.run({ run: runId, key: entry.key, entry: JSON.stringify(entry) });
  }

  async claim(runId: string, owner: string, leaseMs: number): Promise<boolean> {
    const now = this.now();
    return this.s.claim.run({ run: runId, owner, until: now + leaseMs, now }).changes === 1;
  }

  async renew(owner: string, runIds: string[], leaseMs: number): Promise<string[]> {
    if (runIds.length === 0) return [];
    return this.renewAll(owner, runIds, this.now() + leaseMs);
  }

  async unclaim(runId: string, owner: string): Promise<void> {
    this.s.unclaim.run(runId, owner);
  }

  async recordPrefix(workflow: string, version: string, hash: string): Promise<string> {
    this.s.recordPrefix.run(workflow, version, hash);
    return this.s.prefix.get(workflow, version)!.hash;
  }

  async sizeOf(runId: string): Promise<number> {
    return this.s.sizeOf.get(runId, runId)?.n ?? 0;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
