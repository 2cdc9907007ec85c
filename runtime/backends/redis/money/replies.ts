import type { ScopeKind } from '../../../identity.ts';
import type { AuditEntry, Budget, BudgetState, SpendDimension, TokenCounts } from '../../../store/port.ts';
import {
  CorruptRecordError,
  modelKey,
  NO_PROVIDER,
  type PreparedEntry,
  providerKey,
  storedJson,
  storedMicros,
} from '../../../store/records.ts';
import { type SpendTally, workflowKey } from '../../../store/spend.ts';
import { isWindowSpec } from '../../../store/windows.ts';
import type { RedisClient } from '../connection.ts';
import { indexMemberOf } from './keys.ts';

/** Turning what Redis holds (script replies, rollup hashes, indexed streams) back into port records. */

/** Rollup fields: identity and model joined by US, then RS and the metric. */
const US = '\x1f';
const RS = '\x1e';

/** An audit entry's JSON without before/after; the script adds them. */
export function auditHead(entry: AuditEntry): string {
  const { before: _b, after: _a, ...head } = entry;
  return JSON.stringify(head);
}

export function rollupField(e: PreparedEntry): string {
  const id = e.identity;
  return [id.team, id.env, id.seat, workflowKey(id), modelKey(e), providerKey(e)].join(US);
}

/** `xn`, `xc`: corrections of expired charges in the group and their (signed) sum. */
const METRICS = ['cost', 'calls', 'input', 'cw5m', 'cw1h', 'cr', 'out', 'xn', 'xc'] as const;
const ROLLUP_DIMENSION: Record<Exclude<SpendDimension, 'day'>, number> = {
  team: 0,
  env: 1,
  seat: 2,
  workflow: 3,
  model: 4,
  provider: 5,
};

export function addRollup(
  tally: SpendTally,
  day: string,
  fields: Record<string, string>,
  by: SpendDimension,
  filter: { kind: ScopeKind; key?: string } | undefined,
  provider?: string,
): void {
  const groups = new Map<string, Record<(typeof METRICS)[number], number>>();
  for (const [field, value] of Object.entries(fields)) {
    const [tuple, metric] = field.split(RS) as [string, (typeof METRICS)[number]];
    if (!METRICS.includes(metric)) throw new CorruptRecordError(`spend rollup field in ${day}`, field);
    let g = groups.get(tuple);
    if (!g) {
      g = { cost: 0, calls: 0, input: 0, cw5m: 0, cw1h: 0, cr: 0, out: 0, xn: 0, xc: 0 };
      groups.set(tuple, g);
    }
    g[metric] +=
      metric === 'xc'
        ? storedSigned(value, `spend rollup ${day}`)
        : storedMicros(value, `spend rollup ${day}`);
  }
  for (const [tuple, g] of groups) {
    const parts = tuple.split(US);
    // Rollups written before the provider mix have five parts: their model calls were Anthropic's.
    if (parts.length === 5) parts.push(parts[4]!.startsWith('tool:') ? NO_PROVIDER : 'anthropic');
    if (parts.length !== 6) throw new CorruptRecordError(`spend rollup key in ${day}`, tuple);
    if (filter && filter.kind !== 'global' && parts[ROLLUP_DIMENSION[filter.kind as 'team']] !== filter.key) {
      continue;
    }
    if (provider !== undefined && parts[ROLLUP_DIMENSION.provider] !== provider) continue;
    const key = by === 'day' ? day : parts[ROLLUP_DIMENSION[by]]!;
    const tokens: TokenCounts = {
      input: g.input,
      cacheWrite5m: g.cw5m,
      cacheWrite1h: g.cw1h,
      cacheRead: g.cr,
      output: g.out,
    };
    tally.add(key, g.cost, g.calls, tokens, { count: g.xn, cost: g.xc });
  }
}

/** A signed µ$ sum (the corrections of a group may credit more than they debit). */
function storedSigned(value: unknown, what: string): number {
  const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new CorruptRecordError(what, value);
  return n;
}

const STATES: readonly BudgetState[] = ['active', 'exhausted', 'frozen'];

/** A budget as the scripts reply it (see budgetReply in includes/budget.lua), checked. */
export function budgetFrom(reply: unknown): Budget {
  if (!Array.isArray(reply) || reply.length !== 12) throw new CorruptRecordError('budget reply', reply);
  const [id, scope, owner, ceiling, window, state, spent, reserved, start, resets, createdAt, updatedAt] =
    reply.map(String) as [string, ...string[]];
  if (!isWindowSpec(window) || !STATES.includes(state as BudgetState)) {
    throw new CorruptRecordError(`budget ${scope}`, reply);
  }
  return {
    id,
    scope: scope!,
    owner: owner!,
    ceiling: storedMicros(ceiling, `budget ${scope} ceiling`),
    window,
    state: state as BudgetState,
    spent: storedMicros(spent, `budget ${scope} spent`),
    reserved: storedMicros(reserved, `budget ${scope} reserved`),
    windowStart: storedMicros(start, `budget ${scope} window start`),
    resetsAt: resets === '' ? null : storedMicros(resets, `budget ${scope} resetsAt`),
    createdAt: storedMicros(createdAt, `budget ${scope} createdAt`),
    updatedAt: storedMicros(updatedAt, `budget ${scope} updatedAt`),
  };
}

/**
 * Newest-first entries from a time-scored index over a stream, in [since, until), keeping those
 * that pass `keep`, up to `limit`. Fetches the stream entries in one pipeline per page.
 */
export async function readIndex<T>(
  redis: RedisClient,
  stream: string,
  index: string,
  since: number | undefined,
  until: number | undefined,
  limit: number,
  keep: (entry: T) => boolean,
  what: string,
): Promise<T[]> {
  const out: T[] = [];
  const max = until === undefined ? '+inf' : `(${until}`;
  const min = since === undefined ? '-inf' : String(since);
  const size = Number.isFinite(limit) ? Math.max(limit, 100) : 1000;
  for (let offset = 0; out.length < limit; offset += size) {
    const members = await redis.zrevrangebyscore(index, max, min, 'LIMIT', offset, size);
    if (members.length === 0) break;
    // One XRANGE per stream entry: a lease batch's entries share one.
    const places = members.map(indexMemberOf);
    const ids = [...new Set(places.map((p) => p.id))];
    const pipe = redis.pipeline();
    for (const id of ids) pipe.xrange(stream, id, id);
    const fieldsOf = new Map<string, string[]>();
    ((await pipe.exec()) ?? []).forEach(([err, found], i) => {
      if (err) throw err;
      const fields = (found as [string, string[]][])[0]?.[1];
      if (fields) fieldsOf.set(ids[i]!, fields);
    });
    for (const { id, place } of places) {
      const fields = fieldsOf.get(id);
      const raw = fields && (place === 0 ? fields[fields.indexOf('e') + 1] : fields[place * 2 + 1]);
      if (raw === undefined) continue;
      const entry = storedJson<T>(raw, what);
      if (keep(entry)) out.push(entry);
      if (out.length >= limit) break;
    }
    if (members.length < size) break;
  }
  return out;
}
