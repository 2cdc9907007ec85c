import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, type QueueEventsListener, QueueEventsProducer, Worker } from 'bullmq';
import type { ChainableCommander } from 'ioredis';
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
import { decodePosition, encodePosition, ZSET_PAGE_LUA } from '../cursor.ts';
import { BullConnections, bullPrefix, commandConnection, type RedisClient } from './connection.ts';
import { RedisKeys as MoneyKeys } from './money/keys.ts';

/**
 * Approval items in Redis, with BullMQ for their expiry and for change events across processes.
 * Keys (all under the deployment's hash-tagged prefix, so the scripts may touch several at once):
 *
 * - `<p>approval:<id>`             the item, JSON
 * - `<p>approvals:all`             zset of item ids by createdAt
 * - `<p>approvals:state:<state>`   zset of the item ids in that state, by createdAt
 * - `<p>bull:approvals:*`          the BullMQ `approvals` queue: one delayed job per pending item
 *                                  (job id from the item id, due at its expiresAt), and the event
 *                                  stream that carries `approval-change` events
 *
 * Opening is one script (SET NX of the record and both index entries), then the job, whose id
 * makes BullMQ ignore a second add. Deciding is one script that checks the stored item is still
 * pending and writes the decided one, so of any number of decisions racing from any processes
 * exactly one wins. Expiry is BullMQ's delayed jobs: a worker started by `startExpiry` gets each
 * job when its item is due.
 */

const QUEUE = 'approvals';
/** The custom event on the queue's event stream: fields id, state and the publishing store. */
const EVENT = 'approval-change';
/** The queue's event stream is trimmed to about this many events (BullMQ's own default). */
const MAX_EVENTS = 10_000;

/** KEYS: record, approvals:all, state zset. ARGV: json, id, createdAt. nil when created, else the stored JSON. */
const OPEN = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
  return false
end
return redis.call('GET', KEYS[1])`;

/**
 * KEYS: record, pending zset, target state zset. ARGV: decided JSON, id, createdAt.
 * {0}: no such item; {1, stored JSON}: not pending (conflict); {2}: decided.
 */
const DECIDE = `
local cur = redis.call('GET', KEYS[1])
if not cur then return {0} end
if cjson.decode(cur)['state'] ~= 'pending' then return {1, cur} end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
return {2}`;

/**
 * KEYS: record, decided state zset, pending zset, then the money store's audit stream, audit index
 * and the target's audit index (money/keys.ts; same hash tag). ARGV: expected stored JSON, pending
 * JSON, id, createdAt, audit entry JSON ('' for none), its time. 1 when reopened (and audited); 0
 * when the record is no longer the expected one. Redis does not roll a script back: every check
 * that can fail (the record, the audit keys' types) runs before the first write, so it reopens
 * and audits together or changes nothing. The audit append is includes/audit.lua's.
 */
const REOPEN = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local audit = ARGV[5] ~= ''
if audit then
  local want = { 'stream', 'zset', 'zset' }
  for i = 1, 3 do
    local t = redis.call('TYPE', KEYS[3 + i])['ok']
    if t ~= 'none' and t ~= want[i] then
      return redis.error_reply('ERR approval reopen: ' .. KEYS[3 + i] .. ' holds a ' .. t)
    end
  end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
if audit then
  local ms, seq = string.match(redis.call('XADD', KEYS[4], '*', 'e', ARGV[5]), '^(%d+)-(%d+)$')
  local m = string.format('%013d-%010d', tonumber(ms), tonumber(seq))
  redis.call('ZADD', KEYS[5], ARGV[6], m)
  redis.call('ZADD', KEYS[6], ARGV[6], m)
end
return 1`;

const SCRIPTS = {
  cpApprovalOpen: OPEN,
  cpApprovalDecide: DECIDE,
  cpApprovalReopen: REOPEN,
  cpApprovalPage: ZSET_PAGE_LUA,
} as const;

type ScriptCall = (numKeys: number, ...keysAndArgs: (string | number)[]) => Promise<unknown>;
type ScriptedRedis = RedisClient & Record<keyof typeof SCRIPTS, ScriptCall>;

interface ChangeEventListener extends QueueEventsListener {
  [EVENT]: (args: { id: string; state: string; origin?: string }, eventId: string) => void;
}

export interface BullApprovalStoreOptions {
  redisUrl: string;
  /** Key prefix of this deployment (`{cp}`); the queue's keys are `${prefix}bull:approvals:*`. */
  prefix: string;
  now?: () => number;
  /** Connection errors, and expiry handlers that failed (their job is tried again later). */
  onError?: (err: unknown) => void;
}

/**
 * The BullMQ job id of an item: BullMQ refuses ids with `:` and integer ids, so `%` and `:` are
 * percent-encoded and an integer is marked with `%i` (one-to-one; item ids have neither).
 */
export function approvalJobId(id: string): string {
  const encoded = id.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'));
  return `${Number.parseInt(encoded, 10)}` === encoded ? `%i${encoded}` : encoded;
}

function listLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return 50;
  return Math.min(Math.max(Math.floor(limit), 1), 1_000);
}

function decidedState(decision: Decision): ApprovalState {
  if (decision.action === 'expire') return 'expired';
  const state = DECISION_STATE[decision.action];
  if (!state) throw new Error(`unknown decision action: ${JSON.stringify(decision.action)}`);
  return state;
}

/** Results of a pipeline, throwing the first command error. */
async function results(p: ChainableCommander): Promise<unknown[]> {
  const out = (await p.exec()) ?? [];
  return out.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

export class BullApprovalStore implements ApprovalStore {
  readonly backend = 'redis' as const;
  private readonly redis: ScriptedRedis;
  private readonly queue: Queue<{ id: string }>;
  private readonly producer: QueueEventsProducer;
  private events?: QueueEvents;
  private worker?: Worker<{ id: string }>;
  private readonly now: () => number;
  private readonly prefix: string;
  private readonly onError: (err: unknown) => void;
  /** Tells this store's own events on the stream from other processes' (it saw its own already). */
  private readonly origin = randomUUID();
  private readonly listeners = new Set<(change: ApprovalChange) => void>();
  private closing: Promise<void> | null = null;
  private readonly connections: BullConnections;

  constructor(private readonly opts: BullApprovalStoreOptions) {
    this.connections = new BullConnections(opts.redisUrl);
    this.now = opts.now ?? Date.now;
    this.prefix = opts.prefix;
    const onError = opts.onError ?? (() => {});
    this.onError = (err) => {
      try {
        onError(err);
      } catch {
        // A failing error callback must not take the store down.
      }
    };
    // Its own command connection (it quits it on close, after BullMQ's): a store is closed alone.
    const redis = commandConnection(opts.redisUrl);
    redis.on('error', (err: unknown) => this.connectionError(err));
    for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua });
    this.redis = redis as ScriptedRedis;
    const common = { connection: this.connection(), prefix: this.bullPrefix };
    this.queue = new Queue<{ id: string }>(QUEUE, common);
    this.queue.on('error', (err) => this.connectionError(err));
    this.producer = new QueueEventsProducer(QUEUE, { ...common, connection: this.connection() });
    this.producer.on('error', (err) => this.connectionError(err));
  }

  private get bullPrefix(): string {
    return bullPrefix(this.prefix, QUEUE, this.opts.redisUrl);
  }

  /** A fresh connection spec (or, on a cluster, a connection of ours, closed after BullMQ's). */
  private connection() {
    return this.connections.next();
  }

  private connectionError(err: unknown): void {
    // Closing connections reject what was in flight on them: that is shutdown, not a fault.
    if (this.closing && /\bclos(ed|ing)\b/i.test(String((err as Error)?.message))) return;
    this.onError(err);
  }

  private itemKey(id: string) {
    return `${this.prefix}approval:${id}`;
  }
  private stateKey(state: ApprovalState) {
    return `${this.prefix}approvals:state:${state}`;
  }
  private get allKey() {
    return `${this.prefix}approvals:all`;
  }

  async open(item: ApprovalItem): Promise<{ item: ApprovalItem; created: boolean }> {
    if (this.closing) throw new Error('approval store is closed');
    if (!APPROVAL_STATES.includes(item.state)) throw new Error(`unknown approval state: ${item.state}`);
    const json = JSON.stringify(item);
    const stored = (await this.redis.cpApprovalOpen(
      3,
      this.itemKey(item.id),
      this.allKey,
      this.stateKey(item.state),
      json,
      item.id,
      item.createdAt,
    )) as string | null;
    const created = stored === null;
    const result = JSON.parse(stored ?? json) as ApprovalItem;
    // Also on a repeat while pending: a process that stopped between the record and the job
    // leaves the item without one, and BullMQ ignores the add when the job is there.
    if (result.state === 'pending') await this.schedule(result);
    if (created) await this.changed({ id: result.id, state: result.state });
    return { item: result, created };
  }

  private async schedule(item: ApprovalItem): Promise<void> {
    await this.queue.add(
      'expire',
      { id: item.id },
      {
        jobId: approvalJobId(item.id),
        delay: Math.max(0, item.expiresAt - this.now()),
        removeOnComplete: true,
        removeOnFail: true,
        // An expiry handler that fails is tried again, a little later each time.
        attempts: 8,
        backoff: { type: 'exponential', delay: 1_000 },
      },
    );
  }

  async get(id: string): Promise<ApprovalItem | undefined> {
    const s = await this.redis.get(this.itemKey(id));
    return s === null ? undefined : (JSON.parse(s) as ApprovalItem);
  }

  async list(filter: ApprovalFilter = {}): Promise<{ items: ApprovalItem[]; next?: string }> {
    const limit = listLimit(filter.limit);
    const key = filter.state ? this.stateKey(filter.state) : this.allKey;
    const filtered = Boolean(filter.workflow || filter.team || filter.reason || filter.runId);
    // One more than asked for tells whether there is a next page. The other filters are matched
    // here, so with those read ahead in pages that double (to a cap) while matches are sparse.
    const want = limit + 1;
    let batch = filtered ? Math.max(want * 2, 100) : want;
    const items: ApprovalItem[] = [];
    let at: { at: number; id: string } | undefined = filter.cursor
      ? decodePosition(filter.cursor, 'approval')
      : undefined;
    let last: typeof at;
    for (;;) {
      const page = (await this.redis.cpApprovalPage(
        1,
        key,
        at ? at.at : '',
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
      const records = await this.redis.mget(ids.map((id) => this.itemKey(id)));
      for (let i = 0; i < ids.length && items.length < want; i++) {
        at = { at: scores[i]!, id: ids[i]! };
        const json = records[i];
        if (json == null) continue;
        const item = JSON.parse(json) as ApprovalItem;
        if (filter.state && item.state !== filter.state) continue; // decided since the page was read
        if (filter.workflow && item.workflow !== filter.workflow) continue;
        if (filter.team && item.identity.team !== filter.team) continue;
        if (filter.reason && item.reason !== filter.reason) continue;
        if (filter.runId && item.runId !== filter.runId) continue;
        items.push(item);
        if (items.length === limit) last = at;
      }
      if (items.length >= want || ids.length < batch) break;
      if (filtered) batch = Math.min(batch * 2, Math.max(want, 1_000));
      else batch = want - items.length; // only items that left the state since the page was read
    }
    if (items.length <= limit) return { items };
    items.length = limit;
    return { items, next: encodePosition(last!.at, last!.id) };
  }

  async counts(): Promise<Record<ApprovalState, number>> {
    const p = this.redis.pipeline();
    for (const s of APPROVAL_STATES) p.zcard(this.stateKey(s));
    const n = await results(p);
    return Object.fromEntries(APPROVAL_STATES.map((s, i) => [s, Number(n[i])])) as Record<
      ApprovalState,
      number
    >;
  }

  async decide(id: string, decision: Decision): Promise<ApprovalItem> {
    const state = decidedState(decision);
    const item = await this.get(id);
    if (!item) throw new ApprovalNotFoundError(id);
    if (item.state !== 'pending') throw new ApprovalConflictError(item);
    // A pending item's record never changes (open never overwrites it), so the record built from
    // this read is right whenever the script finds the item still pending.
    const decided: ApprovalItem = { ...item, state, decision };
    const json = JSON.stringify(decided);
    const [code, stored] = (await this.redis.cpApprovalDecide(
      3,
      this.itemKey(id),
      this.stateKey('pending'),
      this.stateKey(state),
      json,
      id,
      item.createdAt,
    )) as [number, string?];
    if (code === 0) throw new ApprovalNotFoundError(id);
    if (code === 1) throw new ApprovalConflictError(JSON.parse(stored!) as ApprovalItem);
    if (decision.action !== 'expire') {
      // Its expiry is moot now. A job already taken by a worker stays (and finds it decided).
      await this.queue.remove(approvalJobId(id)).catch(() => {});
    }
    await this.changed({ id, state });
    return JSON.parse(json) as ApprovalItem;
  }

  async reopen(id: string, decision: Decision, audit?: AuditInput): Promise<ApprovalItem | undefined> {
    const entry = audit && prepareAudit(audit, this.now());
    const stored = await this.redis.get(this.itemKey(id));
    if (stored === null) return undefined;
    const item = JSON.parse(stored) as ApprovalItem;
    if (item.state === 'pending' || !sameDecision(item.decision, decision)) return item;
    const { decision: _undone, ...rest } = item;
    const pending: ApprovalItem = { ...rest, state: 'pending' };
    const money = new MoneyKeys(this.prefix);
    const target = entry?.target ?? '';
    const reopened = (await this.redis.cpApprovalReopen(
      6,
      this.itemKey(id),
      this.stateKey(item.state),
      this.stateKey('pending'),
      money.audit,
      money.auditAll,
      money.auditIndex(target),
      stored,
      JSON.stringify(pending),
      id,
      item.createdAt,
      entry ? JSON.stringify(entry) : '',
      entry?.at ?? 0,
    )) as number;
    if (reopened !== 1) return this.get(id);
    await this.schedule(pending);
    await this.changed({ id, state: 'pending' });
    return pending;
  }

  async startExpiry(onDue: (id: string) => Promise<void>): Promise<void> {
    if (this.closing) throw new Error('approval store is closed');
    if (this.worker) throw new Error('approval expiry is already started');
    const worker = new Worker<{ id: string }>(
      QUEUE,
      async (job) => {
        const item = await this.get(job.data.id);
        if (item?.state !== 'pending') return; // decided (or gone) before it was due
        await onDue(job.data.id);
      },
      { connection: this.connection(), prefix: this.bullPrefix, concurrency: 8 },
    );
    worker.on('error', (err) => this.connectionError(err));
    worker.on('failed', (_job, err) => this.onError(err));
    this.worker = worker;
    await worker.waitUntilReady();
  }

  subscribe(listener: (change: ApprovalChange) => void): () => void {
    if (this.closing) throw new Error('approval store is closed');
    this.listeners.add(listener);
    this.listen();
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Starts reading the queue's event stream, from the moment of the first subscribe (stream ids
   * are Redis server milliseconds; this assumes this host's clock agrees with the server's, as
   * within a millisecond or so it does on one host or NTP-synced ones).
   */
  private listen(): void {
    if (this.events) return;
    const events = new QueueEvents(QUEUE, {
      connection: this.connection(),
      prefix: this.bullPrefix,
      lastEventId: `${Date.now() - 1}`,
    });
    events.on('error', (err) => this.connectionError(err));
    events.on<ChangeEventListener, typeof EVENT>(EVENT, (args) => {
      if (args.origin === this.origin) return; // delivered when it was made
      if (!APPROVAL_STATES.includes(args.state as ApprovalState)) return;
      this.emit({ id: args.id, state: args.state as ApprovalState });
    });
    this.events = events;
  }

  /** Tells this process's listeners now, and every other process's through the event stream. */
  private async changed(change: ApprovalChange): Promise<void> {
    this.emit(change);
    try {
      await this.producer.publishEvent({ eventName: EVENT, ...change, origin: this.origin }, MAX_EVENTS);
    } catch (err) {
      // The change is made; only other processes' live views miss it.
      this.onError(err);
    }
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

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.listeners.clear();
      const settle = (p: Promise<unknown> | undefined) => p?.catch((err) => this.onError(err));
      await settle(this.worker?.close());
      await settle(this.events?.close());
      await settle(this.producer.close());
      await settle(this.queue.close());
      this.connections.close();
      await settle(this.redis.quit());
    })();
    return this.closing;
  }
}
