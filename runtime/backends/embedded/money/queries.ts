import type { AuditQuery, LedgerEntry, LedgerQuery, SpendQuery, SpendRow } from '../../../store/port.ts';
import { StoreInputError } from '../../../store/port.ts';
import { checkRange, checkScope, NO_PROVIDER, NO_WORKFLOW } from '../../../store/records.ts';
import { SpendTally } from '../../../store/spend.ts';
import { dayKey } from '../../../store/windows.ts';

/** SQL for the ledger, audit and spend queries; the store prepares each distinct text once. */
export interface Query {
  sql: string;
  args: unknown[];
}

/** `team:payments` → `team = 'payments'`; `global` matches everything. */
function scopeFilter(scope: string | undefined, where: string[], args: unknown[]): void {
  if (!scope || scope === 'global') return;
  const { kind, key } = checkScope(scope);
  // A provider is not a column: it is in the entry (and model entries without one are anthropic's).
  where.push(kind === 'provider' ? `${GROUP.provider} = ?` : `${kind} = ?`);
  args.push(key);
}

function timeFilter(since: number | undefined, until: number | undefined, where: string[], args: unknown[]) {
  if (since !== undefined) where.push('at >= ?') && args.push(since);
  if (until !== undefined) where.push('at < ?') && args.push(until);
}

const whereClause = (where: string[]) => (where.length ? `WHERE ${where.join(' AND ')}` : '');

export function ledgerQuery(q: LedgerQuery, limit: number): Query {
  const where: string[] = [];
  const args: unknown[] = [];
  scopeFilter(q.scope, where, args);
  if (q.run !== undefined) where.push('run = ?') && args.push(q.run);
  if (q.kind) where.push('kind = ?') && args.push(q.kind);
  if (q.outcome) where.push('outcome = ?') && args.push(q.outcome);
  timeFilter(q.since, q.until, where, args);
  args.push(limit);
  return { sql: `SELECT entry FROM ledger ${whereClause(where)} ORDER BY at DESC, seq DESC LIMIT ?`, args };
}

export function auditQuery(q: AuditQuery, limit: number): Query {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q.target !== undefined) where.push('target = ?') && args.push(q.target);
  timeFilter(q.since, q.until, where, args);
  args.push(limit);
  return { sql: `SELECT entry FROM audit ${whereClause(where)} ORDER BY at DESC, seq DESC LIMIT ?`, args };
}

const GROUP = {
  team: 'team',
  env: 'env',
  seat: 'seat',
  workflow: `COALESCE(workflow, '${NO_WORKFLOW}')`,
  model: "CASE kind WHEN 'model' THEN name ELSE 'tool:' || name END",
  provider: `CASE kind WHEN 'model' THEN COALESCE(json_extract(entry, '$.provider'), 'anthropic') ELSE '${NO_PROVIDER}' END`,
  day: 'day',
} as const;

/** Spend counts the calls that reached a provider and their corrections, as records.countsAsSpend
 * (a correction is no call: records.callsOf). */
export function spendQuery(q: SpendQuery): Query {
  const group = GROUP[q.by];
  if (!group) throw new StoreInputError('invalid', `cannot group spend by ${String(q.by)}`);
  checkRange(q.since, q.until);
  const where = ["outcome IN ('ok', 'error', 'expired', 'corrected')"];
  const args: unknown[] = [];
  timeFilter(q.since, q.until, where, args);
  scopeFilter(q.scope, where, args);
  if (q.provider !== undefined) where.push(`${GROUP.provider} = ?`) && args.push(q.provider);
  const sql = `SELECT ${group} AS key, SUM(cost) AS cost,
      SUM(CASE outcome WHEN 'corrected' THEN 0 ELSE 1 END) AS calls,
      SUM(CASE outcome WHEN 'corrected' THEN 1 ELSE 0 END) AS xn,
      SUM(CASE outcome WHEN 'corrected' THEN cost ELSE 0 END) AS xc, SUM(t_input) AS input,
      SUM(t_cw5m) AS cw5m, SUM(t_cw1h) AS cw1h, SUM(t_cr) AS cr, SUM(t_out) AS output
    FROM ledger ${whereClause(where)} GROUP BY 1`;
  return { sql, args };
}

/** The rows of a spend query, summed into spend rows (most expensive first). */
export function spendRows(rows: Record<string, number>[]): SpendRow[] {
  const tally = new SpendTally();
  for (const r of rows) {
    tally.add(
      String(r.key),
      r.cost ?? 0,
      r.calls ?? 0,
      {
        input: r.input ?? 0,
        cacheWrite5m: r.cw5m ?? 0,
        cacheWrite1h: r.cw1h ?? 0,
        cacheRead: r.cr ?? 0,
        output: r.output ?? 0,
      },
      { count: r.xn ?? 0, cost: r.xc ?? 0 },
    );
  }
  return tally.result();
}

/** A ledger entry as the values of the `ledger` table's insert (columns for queries, the whole entry
 * as JSON: `json` when the caller has it already, a leased call's). */
export function ledgerRow(e: LedgerEntry, timeZone: string, json?: string): unknown[] {
  const t = e.tokens;
  return [
    e.id,
    e.at,
    dayKey(e.at, timeZone),
    e.identity.team,
    e.identity.env,
    e.identity.seat,
    e.identity.workflow ?? null,
    e.identity.run ?? null,
    e.kind,
    e.name,
    e.outcome,
    e.cost,
    t.input,
    t.cacheWrite5m,
    t.cacheWrite1h,
    t.cacheRead,
    t.output,
    json ?? JSON.stringify(e),
  ];
}
