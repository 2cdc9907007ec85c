import type { ChainableCommander } from 'ioredis';
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
import { decodeCursor, encodeCursor, type ListCursor, ZSET_PAGE_LUA } from '../cursor.ts';
import type { RedisClient } from './connection.ts';

/**
 * Runs in Redis. Every key starts with the hash-tagged prefix (`{cp}`), so they share one cluster
 * slot and the scripts below may touch several at once:
 *
 * - `<p>:run:<id>`                 the record, JSON
 * - `<p>:runs:all`                 zset of run ids by startedAt
 * - `<p>:runs:state:<state>`       zset of run ids in that state, by startedAt
 * - `<p>:run:<id>:journal`         list of journal entries, JSON, in append order
 * - `<p>:run:<id>:journal:keys`    set of the journal keys appended (idempotency)
 * - `<p>:run:<id>:lease`           hash { owner, until }, `until` in Redis server time (ms)
 * - `<p>:workflow-prefixes`        hash `<workflow>@<version>` -> prefix hash
 *
 * Each write that must be atomic is one Lua script. Leases are timed by Redis's own clock (TIME),
 * so processes with skewed clocks still agree on when a lease has lapsed; the `now` option is
 * accepted for symmetry with the other stores and not used.
 */

/** KEYS: run, runs:all, runs:state:<each of RUN_STATES>. ARGV: json, id, state index (1-based), startedAt. */
const SAVE = `
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
local target = tonumber(ARGV[3]) + 2
for i = 3, #KEYS do
  if i == target then
    redis.call('ZADD', KEYS[i], ARGV[4], ARGV[2])
  else
    redis.call('ZREM', KEYS[i], ARGV[2])
  end
end
return 1`;

/** KEYS: journal list, journal key set. ARGV: entry key, entry JSON. */
const APPEND = `
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[1], ARGV[2])
end
return 1`;

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ms(x) return string.format('%.0f', x) end`;

/** KEYS: lease. ARGV: owner, leaseMs. 1 when taken (free, ours already, or lapsed), else 0. */
const CLAIM = `${NOW}
local held = redis.call('HMGET', KEYS[1], 'owner', 'until')
if held[1] and held[1] ~= ARGV[1] and tonumber(held[2]) > now then
  return 0
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'until', ms(now + tonumber(ARGV[2])))
return 1`;

/** KEYS: leases. ARGV: owner, leaseMs. The 1-based positions of the leases owner does not hold. */
const RENEW = `${NOW}
local lost = {}
for i, key in ipairs(KEYS) do
  if redis.call('HGET', key, 'owner') == ARGV[1] then
    redis.call('HSET', key, 'until', ms(now + tonumber(ARGV[2])))
  else
    lost[#lost + 1] = i
  end
end
return lost`;

/** KEYS: lease. ARGV: owner. */
const UNCLAIM = `
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 1`;

const SCRIPTS = {
  cpRunSave: SAVE,
  cpRunAppend: APPEND,
  cpRunClaim: CLAIM,
  cpRunRenew: RENEW,
  cpRunUnclaim: UNCLAIM,
  cpRunPage: ZSET_PAGE_LUA,
} as const;

type ScriptCall = (numKeys: number, ...keysAndArgs: (string | number)[]) => Promise<unknown>;
type ScriptedRedis = RedisClient & Record<keyof typeof SCRIPTS, ScriptCall>;

/** Results of a pipeline, throwing the first command error. */
async function results(p: ChainableCommander): Promise<unknown[]> {
  const out = (await p.exec()) ?? [];
  return out.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

export class RedisRunStore implements RunStore {
  private readonly redis: ScriptedRedis;

  /** `redis` stays the caller's: `close()` leaves it connected. */
  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    _opts: { now?: () => number } = {},
  ) {
    for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua });
    this.redis = redis as ScriptedRedis;
  }

  private runKey(id: string) {
    return `${this.prefix}:run:${id}`;
  }
  private stateKey(state: RunState) {
    return `${this.prefix}:runs:state:${state}`;
  }
  private get allKey() {
    return `${this.prefix}:runs:all`;
  }
  private leaseKey(id: string) {
    return `${this.prefix}:run:${id}:lease`;
  }

  async save(run: RunRecord): Promise<void> {
    const index = RUN_STATES.indexOf(run.state);
    if (index < 0) throw new Error(`unknown run state: ${run.state}`);
    const keys = [this.runKey(run.id), this.allKey, ...RUN_STATES.map((s) => this.stateKey(s))];
    await this.redis.cpRunSave(keys.length, ...keys, JSON.stringify(run), run.id, index + 1, run.startedAt);
  }

  async get(id: string): Promise<RunRecord | undefined> {
    const s = await this.redis.get(this.runKey(id));
    return s === null ? undefined : (JSON.parse(s) as RunRecord);
  }

  async list(filter: RunFilter = {}): Promise<{ runs: RunSummary[]; next?: string }> {
    const limit = listLimit(filter.limit);
    const key = filter.state ? this.stateKey(filter.state) : this.allKey;
    const filtered = Boolean(filter.workflow || filter.team);
    // One more than asked for tells whether there is a next page. Workflow and team are matched
    // here, so with those read ahead in pages that double (to a cap) while matches are sparse.
    const want = limit + 1;
    let batch = filtered ? Math.max(want * 2, 100) : want;
    const runs: RunSummary[] = [];
    const positions: ListCursor[] = [];
    let at: ListCursor | undefined = filter.cursor ? decodeCursor(filter.cursor) : undefined;
    for (;;) {
      const page = (await this.redis.cpRunPage(
        1,
        key,
        at ? at.startedAt : '',
        at ? at.id : '',
        batch,
      )) as string[];
      const ids: string[] = [];
      const scores: number[] = [];
      for (let i = 0; i + 1 < page.length; i += 2) {
        ids.push(page[i]!);
        scores.push(Number(page[i + 1]));
      }
      if (ids.length === 0) break;
      const records = await this.redis.mget(ids.map((id) => this.runKey(id)));
      for (let i = 0; i < ids.length && runs.length < want; i++) {
        at = { startedAt: scores[i]!, id: ids[i]! };
        const json = records[i];
        if (json == null) continue;
        const r = JSON.parse(json) as RunRecord;
        if (filter.state && r.state !== filter.state) continue; // moved on since the page was read
        if (filter.workflow && r.workflow !== filter.workflow) continue;
        if (filter.team && r.identity.team !== filter.team) continue;
        runs.push(summary(r));
        positions.push(at);
      }
      if (runs.length >= want || ids.length < batch) break;
      if (filtered) batch = Math.min(batch * 2, Math.max(want, 1_000));
      else batch = want - runs.length; // only runs that left the state since the page was read
    }
    if (runs.length <= limit) return { runs };
    runs.length = limit;
    return { runs, next: encodeCursor(positions[limit - 1]!) };
  }

  async counts(): Promise<Record<RunState, number>> {
    const p = this.redis.pipeline();
    for (const s of RUN_STATES) p.zcard(this.stateKey(s));
    const n = await results(p);
    return Object.fromEntries(RUN_STATES.map((s, i) => [s, Number(n[i])])) as Record<RunState, number>;
  }

  async journal(runId: string): Promise<JournalEntry[]> {
    const items = await this.redis.lrange(`${this.runKey(runId)}:journal`, 0, -1);
    return items.map((s) => JSON.parse(s) as JournalEntry);
  }

  async appendJournal(runId: string, entry: JournalEntry): Promise<void> {
    const list = `${this.runKey(runId)}:journal`;
    await this.redis.cpRunAppend(2, list, `${list}:keys`, entry.key, JSON.stringify(entry));
  }

  async claim(runId: string, owner: string, leaseMs: number): Promise<boolean> {
    return (await this.redis.cpRunClaim(1, this.leaseKey(runId), owner, Math.ceil(leaseMs))) === 1;
  }

  async renew(owner: string, runIds: string[], leaseMs: number): Promise<string[]> {
    if (runIds.length === 0) return [];
    const keys = runIds.map((id) => this.leaseKey(id));
    const lost = (await this.redis.cpRunRenew(keys.length, ...keys, owner, Math.ceil(leaseMs))) as number[];
    return lost.map((i) => runIds[i - 1]!);
  }

  async unclaim(runId: string, owner: string): Promise<void> {
    await this.redis.cpRunUnclaim(1, this.leaseKey(runId), owner);
  }

  async recordPrefix(workflow: string, version: string, hash: string): Promise<string> {
    const key = `${this.prefix}:workflow-prefixes`;
    const field = `${workflow}@${version}`;
    const [, known] = await results(this.redis.pipeline().hsetnx(key, field, hash).hget(key, field));
    return known as string;
  }

  async sizeOf(runId: string): Promise<number> {
    const [record, journal] = await results(
      this.redis
        .pipeline()
        .strlen(this.runKey(runId))
        .lrange(`${this.runKey(runId)}:journal`, 0, -1),
    );
    return (journal as string[]).reduce((n, s) => n + Buffer.byteLength(s), Number(record));
  }

  /** Nothing to let go of: the connection is the caller's. */
  async close(): Promise<void> {}
}
