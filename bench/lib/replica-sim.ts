// One scenario of bench/scale-sim.ts: N replicas, each a real LeasedMoneyStore (or, as the baseline,
// per-call admission on the plain store), over ONE shared embedded store, driven on a virtual clock.
import { localBroadcast } from '../../runtime/backends/embedded/broadcast.ts';
import { openEmbeddedStore } from '../../runtime/backends/embedded/money/store.ts';
import type { Identity, Scope, ScopeKind } from '../../runtime/identity.ts';
import { createLogger } from '../../runtime/log.ts';
import {
  LEASE_DEFAULTS,
  type LeasedMoneyStore,
  type LeaseOptions,
  openLeases,
  upkeepEveryMs,
} from '../../runtime/store/leases.ts';
import type { BudgetSpec, LedgerInput, MoneyStore } from '../../runtime/store/port.ts';

/**
 * The model of the world, kept deliberately plain:
 * - Each replica receives calls as a Poisson process at `rate` per second (exponential gaps: the
 *   jitter). A call's identity is one of `teams × seatsPerTeam` seats (env `prod`), chosen uniformly
 *   by the load balancer (`spread`) or pinned to one replica per seat (`sticky`).
 * - A call's worst case comes from a model mix (40% 1–3¢, 45% 6–20¢, 15% 30–90¢), its actual cost is
 *   30–70% of it, and it lasts 0.3–30 s (log-normal, median 3 s). It is settled when it ends.
 * - The store answers in zero virtual time. Events are taken in time order, in turns of `turnMs`:
 *   first every due upkeep (`tick()`), then every call that ends (settled into its replica's
 *   journal), then every due `ship()` (each replica's settled calls to the store in one batch, every
 *   `shipMs`), then the arrivals, one at a time (so the oracle below sees exactly the state each
 *   admission saw).
 * - The oracle: the sim's own ledger of what was really spent and what calls really have in flight
 *   (their worst cases), per budget. A refused call that would have fit there — spent + in flight +
 *   its worst case within every ceiling — is a false refusal: room held in other slices.
 */
export interface SimScenario {
  replicas: number;
  /** How many of the replicas are simulated (default all): with ample budgets replicas never
   * interact, so the store's load is `replicas / simulated` times theirs (the high-traffic rows). */
  simulated?: number;
  /** Calls per second per replica. */
  rate: number;
  durationMs: number;
  /** Ops per second are counted after this (slices being granted for the first time is warm-up). */
  warmupMs: number;
  /** Budget leases with these options (over LEASE_DEFAULTS), or per-call admission (`false`). */
  leases: Partial<LeaseOptions> | false;
  /** The near-ceiling case: this budget's ceiling is sized to be reached mid-run. `team`: team t0,
   * and only its calls are simulated (a tenth of the traffic; the others never touch its budget). */
  ceiling?: 'global' | 'team';
  routing?: 'spread' | 'sticky';
  teams?: number;
  seatsPerTeam?: number;
  turnMs?: number;
  seed?: number;
}

export interface SimResult {
  replicas: number;
  simulated: number;
  rate: number;
  mode: 'leases' | 'per-call';
  ceiling: 'global' | 'team' | null;
  routing: 'spread' | 'sticky';
  virtualSeconds: number;
  calls: number;
  admitted: number;
  refused: number;
  /** Over the window after warm-up, for all `replicas` (scaled from the simulated ones). */
  storeOpsPerSec: number;
  storeOpsPerCall: number;
  /** The busiest second of the window. */
  peakOpsPerSec: number;
  /** Store operations per second in the window, by MoneyStore method. */
  opsPerSec: Record<string, number>;
  /** The rest: totals over the run, of the simulated replicas. */
  grants: number;
  batches: number;
  steps: number;
  fromMemory: number;
  returned: number;
  /** spent − ceiling at its worst over every budget (must be 0), and money the store lost or
   * invented against the sim's own ledger (must be 0). */
  overshoot: number;
  ledgerMismatch: number;
  leftReserved: number;
  near?: NearCeiling;
  wallMs: number;
}

export interface NearCeiling {
  budget: Scope;
  ceiling: number;
  /** Over the whole run: the calls the oracle would have admitted, and those of them refused. */
  oracleAdmitsAll: number;
  falseRefusalsAll: number;
  /** falseRefusalsAll / oracleAdmitsAll. */
  falseRefusalRateAll: number;
  /** Calls that arrived once the budget's real spend + in flight first reached 90% of its ceiling. */
  calls: number;
  /** …of which the oracle would have admitted… */
  oracleAdmits: number;
  /** …and which were refused all the same. */
  falseRefusals: number;
  /** falseRefusals / oracleAdmits. */
  falseRefusalRate: number;
  /** The first refusal, s into the run. */
  firstRefusalAtSec: number | null;
}

const USD = 1_000_000;
const AMPLE: BudgetSpec = { ceiling: 1_000_000 * USD, window: 'day' };
const START = Date.parse('2024-06-10T08:00:00Z');
/** E[worst case] of the model mix below, µ$; the actual cost averages half of it. */
const MEAN_WORST = 0.4 * 20_000 + 0.45 * 130_000 + 0.15 * 600_000;

/** A small, seeded PRNG (mulberry32): the same seed, the same run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

type Event =
  | { t: number; k: 'arrive'; r: number }
  | { t: number; k: 'tick'; r: number }
  | { t: number; k: 'ship'; r: number }
  | { t: number; k: 'finish'; call: Call };

interface Call {
  r: number;
  reservationId: string;
  identity: Identity;
  scopes: Scope[];
  amount: number;
  cost: number;
}

/** A binary min-heap of events by time. */
class Queue {
  private readonly h: Event[] = [];
  get size(): number {
    return this.h.length;
  }
  peek(): Event | undefined {
    return this.h[0];
  }
  push(e: Event): void {
    const h = this.h;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.t <= e.t) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }
  pop(): Event | undefined {
    const h = this.h;
    const top = h[0];
    const last = h.pop();
    if (!h.length || !last) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const c = l + 1 < h.length && h[l + 1]!.t < h[l]!.t ? l + 1 : l;
      if (h[c]!.t >= last.t) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
    return top;
  }
}

/** MoneyStore methods that ask nothing of the store (a flag read in process). */
const LOCAL = new Set(['isUp']);

/** Counts every MoneyStore operation, by method and by second of virtual time. */
function counting(store: MoneyStore, now: () => number) {
  const c = {
    since: 0,
    until: 0,
    byMethod: {} as Record<string, number>,
    perSecond: new Map<number, number>(),
  };
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || typeof prop !== 'string' || LOCAL.has(prop)) return v;
      return (...args: unknown[]) => {
        if (now() >= c.since && now() < c.until) {
          c.byMethod[prop] = (c.byMethod[prop] ?? 0) + 1;
          const s = Math.floor((now() - START) / 1000);
          c.perSecond.set(s, (c.perSecond.get(s) ?? 0) + 1);
        }
        return v.apply(target, args);
      };
    },
  });
  return { proxy, c };
}

const scopesOf = (id: Identity): Scope[] => ['global', `team:${id.team}`, `env:${id.env}`, `seat:${id.seat}`];
const drain = () => new Promise<void>((r) => setImmediate(r));

// long: the event loop of the simulation reads best as one piece (setup, turns, drain, checks).
export async function simulate(s: SimScenario): Promise<SimResult> {
  const wall0 = performance.now();
  const teams = s.teams ?? 10;
  const seats = teams * (s.seatsPerTeam ?? 20);
  const turnMs = s.turnMs ?? 1;
  const routing = s.routing ?? 'spread';
  const random = rng(s.seed ?? 42);
  const log = createLogger({ level: 'silent' });
  let now = START;
  const clock = () => now;

  const defaults = Object.fromEntries(
    ['global', 'team', 'env', 'seat', 'workflow', 'run', 'provider'].map((k) => [k, AMPLE]),
  ) as Record<ScopeKind, BudgetSpec>;
  const inner = openEmbeddedStore(':memory:', {
    defaults,
    timeZone: 'UTC',
    reservationTtlMs: 600_000,
    now: clock,
  });
  const { proxy: store, c: count } = counting(inner, clock);

  // The near-ceiling case: a ceiling the traffic's worst cases (spent + in flight) reach about halfway.
  const ceilings = new Map<Scope, number>();
  const target: Scope | undefined =
    s.ceiling === 'global' ? 'global' : s.ceiling === 'team' ? 'team:t0' : undefined;
  const rate = target === 'team:t0' ? s.rate / teams : s.rate;
  if (target) {
    const ceiling = Math.round(s.replicas * rate * MEAN_WORST * 0.4 * (s.durationMs / 1000));
    await inner.ensureBudget(target, { ceiling, window: 'day' });
    ceilings.set(target, ceiling);
  }
  const simulated = target ? s.replicas : Math.min(s.replicas, s.simulated ?? s.replicas);
  const scale = s.replicas / simulated;
  const opts: LeaseOptions = { ...LEASE_DEFAULTS, ...(s.leases || {}) };
  const replicas: MoneyStore[] = [];
  const leased: LeasedMoneyStore[] = [];
  // One pub/sub for every replica, as Redis's: a refused grant asks the others for their slack.
  const broadcast = localBroadcast();
  for (let r = 0; r < simulated; r++) {
    if (s.leases === false) replicas.push(store);
    else {
      const l = await openLeases(store, opts, { now: clock, log, upkeep: 'manual', broadcast });
      leased.push(l);
      replicas.push(l);
    }
  }

  const identities: Identity[] = Array.from({ length: seats }, (_, i) => ({
    team: `t${i % teams}`,
    env: 'prod',
    seat: `s${i}`,
  })).filter((id) => target !== 'team:t0' || id.team === 't0');
  // sticky: each replica serves the seats pinned to it (seat i on replica i mod N).
  const seatsOf = (r: number): number[] => {
    const mine: number[] = [];
    for (let i = r % s.replicas; i < identities.length; i += s.replicas) mine.push(i);
    return mine.length ? mine : [r % identities.length];
  };
  const pinned = routing === 'sticky' ? Array.from({ length: simulated }, (_, r) => seatsOf(r)) : [];

  const q = new Queue();
  const gap = () => (-Math.log(1 - random()) * 1000) / rate;
  for (let r = 0; r < simulated; r++) {
    q.push({ t: gap(), k: 'arrive', r });
    if (leased.length) q.push({ t: random() * upkeepEveryMs(opts), k: 'tick', r });
    if (leased.length) q.push({ t: random() * opts.shipMs, k: 'ship', r });
  }

  // The oracle's ledger: what was really spent, and the worst cases really in flight, per budget.
  const spent = new Map<Scope, number>();
  const inflight = new Map<Scope, number>();
  const add = (m: Map<Scope, number>, k: Scope, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  const fits = (scopes: Scope[], amount: number) =>
    scopes.every((sc) => {
      const ceiling = ceilings.get(sc);
      return ceiling === undefined || (spent.get(sc) ?? 0) + (inflight.get(sc) ?? 0) + amount <= ceiling;
    });
  const nearStart = target ? 0.9 * ceilings.get(target)! : Number.POSITIVE_INFINITY;
  let isNear = false;
  let firstRefusal: number | null = null;
  const near = { oracleAdmitsAll: 0, falseRefusalsAll: 0, calls: 0, oracleAdmits: 0, falseRefusals: 0 };

  let calls = 0;
  let admitted = 0;
  let refused = 0;
  let windowCalls = 0;
  let seq = 0;

  const arrive = async (r: number, t: number) => {
    const seatIdx = pinned.length
      ? pinned[r]![Math.floor(random() * pinned[r]!.length)]!
      : Math.floor(random() * identities.length);
    const identity = identities[seatIdx]!;
    const scopes = scopesOf(identity);
    const kind = random();
    const amount = Math.round(
      kind < 0.4
        ? 10_000 + random() * 20_000
        : kind < 0.85
          ? 60_000 + random() * 140_000
          : 300_000 + random() * 600_000,
    );
    const cost = Math.round(amount * (0.3 + 0.4 * random()));
    const duration = Math.min(30_000, Math.max(300, Math.exp(Math.log(3_000) + 0.8 * gauss())));
    calls++;
    if (t >= s.warmupMs) windowCalls++;
    if (target && !isNear && (spent.get(target) ?? 0) + (inflight.get(target) ?? 0) >= nearStart)
      isNear = true;
    const oracle = target !== undefined && fits(scopes, amount);
    if (oracle) near.oracleAdmitsAll++;
    if (isNear) near.calls++;
    if (isNear && oracle) near.oracleAdmits++;
    const a = await replicas[r]!.admit({ identity, amount, requestId: `c${++seq}` });
    if (!a.ok) {
      refused++;
      firstRefusal ??= t / 1000;
      if (a.refusal.code !== 'budget_exhausted') throw new Error(`unexpected refusal ${a.refusal.code}`);
      if (oracle) near.falseRefusalsAll++;
      if (isNear && oracle) near.falseRefusals++;
      return;
    }
    admitted++;
    for (const sc of scopes) add(inflight, sc, amount);
    const call: Call = { r, reservationId: a.reservation.id, identity, scopes, amount, cost };
    q.push({ t: t + duration, k: 'finish', call });
  };

  const finish = async (call: Call) => {
    const entry: LedgerInput = {
      requestId: call.reservationId,
      identity: call.identity,
      kind: 'model',
      name: 'sim',
      tokens: { input: 1, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 1 },
      reserved: call.amount,
      cost: call.cost,
      outcome: 'ok',
      latencyMs: 1,
    };
    await replicas[call.r]!.settle(call.reservationId, entry);
    for (const sc of call.scopes) {
      add(inflight, sc, -call.amount);
      add(spent, sc, call.cost);
    }
  };

  let gaussSpare: number | null = null;
  function gauss(): number {
    if (gaussSpare !== null) {
      const g = gaussSpare;
      gaussSpare = null;
      return g;
    }
    const u = 1 - random();
    const v = random();
    const m = Math.sqrt(-2 * Math.log(u));
    gaussSpare = m * Math.sin(2 * Math.PI * v);
    return m * Math.cos(2 * Math.PI * v);
  }

  count.since = START + s.warmupMs;
  count.until = START + s.durationMs;
  let ended = 0;
  while (q.size) {
    const turnEnd = q.peek()!.t + turnMs;
    now = START + Math.floor(q.peek()!.t);
    const ticks: number[] = [];
    const ships: number[] = [];
    const ends: Call[] = [];
    const arrivals: { r: number; t: number }[] = [];
    while (q.size && q.peek()!.t < turnEnd) {
      const e = q.pop()!;
      if (e.k === 'tick') ticks.push(e.r);
      else if (e.k === 'ship') ships.push(e.r);
      else if (e.k === 'finish') ends.push(e.call);
      else arrivals.push({ r: e.r, t: e.t });
    }
    await Promise.all(ticks.map((r) => leased[r]!.tick()));
    await Promise.all(ends.map(finish));
    ended += ends.length;
    // Settled calls are in each replica's journal; every shipMs they go to the store in one batch.
    await Promise.all(ships.map((r) => leased[r]!.ship()));
    for (const a of arrivals) {
      const next = a.t + gap();
      if (next < s.durationMs) q.push({ t: next, k: 'arrive', r: a.r });
    }
    if (target) for (const a of arrivals) await arrive(a.r, a.t);
    else await Promise.all(arrivals.map((a) => arrive(a.r, a.t)));
    // What upkeep started without waiting for (slices going back) lands before the clock moves on.
    if (ticks.length) await drain();
    // Upkeep goes on while calls are in flight, and stops with the last of them.
    const t = now - START;
    if (t < s.durationMs || ended < admitted) {
      for (const r of ticks) q.push({ t: t + upkeepEveryMs(opts), k: 'tick', r });
      for (const r of ships) q.push({ t: t + opts.shipMs, k: 'ship', r });
    }
  }
  const virtualSeconds = s.durationMs / 1000;

  for (const l of leased) await l.stop();
  const grants = leased.reduce((a, l) => a + l.stats.grants, 0);
  const sum = (k: keyof LeasedMoneyStore['stats']) => leased.reduce((a, l) => a + l.stats[k], 0);

  let overshoot = 0;
  let ledgerMismatch = 0;
  let leftReserved = 0;
  for (const b of await inner.listBudgets()) {
    overshoot = Math.max(overshoot, b.spent - b.ceiling);
    ledgerMismatch += Math.abs(b.spent - (spent.get(b.scope) ?? 0));
    leftReserved += b.reserved;
  }
  await inner.close();

  const windowSec = (s.durationMs - s.warmupMs) / 1000;
  const windowOps = Object.values(count.byMethod).reduce((a, b) => a + b, 0);
  const inWindow = [...count.perSecond].filter(
    ([sec]) => sec * 1000 >= s.warmupMs && (sec + 1) * 1000 <= s.durationMs,
  );
  const perSec = (n: number) => Math.round((n * scale) / windowSec);
  return {
    replicas: s.replicas,
    simulated,
    rate: s.rate,
    mode: s.leases === false ? 'per-call' : 'leases',
    ceiling: s.ceiling ?? null,
    routing,
    virtualSeconds,
    calls,
    admitted,
    refused,
    storeOpsPerSec: perSec(windowOps),
    storeOpsPerCall: windowCalls ? Number((windowOps / windowCalls).toFixed(3)) : 0,
    peakOpsPerSec: Math.round(scale * Math.max(0, ...inWindow.map(([, n]) => n))),
    opsPerSec: Object.fromEntries(Object.entries(count.byMethod).map(([m, n]) => [m, perSec(n)])),
    grants,
    batches: sum('batches'),
    steps: sum('steps'),
    fromMemory: sum('fromMemory'),
    returned: sum('returned'),
    overshoot: Math.max(0, overshoot),
    ledgerMismatch,
    leftReserved,
    near: target
      ? {
          budget: target,
          ceiling: ceilings.get(target)!,
          ...near,
          falseRefusalRateAll: near.oracleAdmitsAll
            ? Number((near.falseRefusalsAll / near.oracleAdmitsAll).toFixed(4))
            : 0,
          falseRefusalRate: near.oracleAdmits
            ? Number((near.falseRefusals / near.oracleAdmits).toFixed(4))
            : 0,
          firstRefusalAtSec: firstRefusal === null ? null : Number((firstRefusal as number).toFixed(2)),
        }
      : undefined,
    wallMs: Math.round(performance.now() - wall0),
  };
}
