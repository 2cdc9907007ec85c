import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { CallRecord, ModelCall } from '../gateway/call.ts';
import type { CallObserver, CallTiming } from '../gateway/observe.ts';
import { parseScope, type ScopeKind } from '../identity.ts';
import type { ReconStore } from '../reconcile/store.ts';
import type { Runtime } from '../runtime.ts';
import type { LeasedMoneyStore } from '../store/leases.ts';
import { CallHistogram, type HistogramChild } from './histogram.ts';

/**
 * Prometheus metrics of one process. Counters move on the call path (one `call()` per model call,
 * a map lookup and a few additions, moved into the counters when they are read); everything read
 * from the stores (budgets, approvals, runs, kill switches) and the cache health tallies are
 * collected when Prometheus scrapes.
 *
 * Labels are bounded: no run, seat, session or key ids, and each label keeps at most
 * `maxLabelValues` distinct values (later ones are counted under `_other`), so that a header an
 * outside caller sets cannot grow the series without limit.
 */

export interface MetricsSettings {
  /** `/metrics` without an operator token (default false: a viewer token is needed). */
  public: boolean;
  /** Budgets exported per scope (kind + key). Seats and runs are left out by default. */
  budgetKinds: ScopeKind[];
  /** Distinct values one label may take before the rest go under `_other`. */
  maxLabelValues: number;
  /** Node.js process metrics (memory, CPU, event loop lag, GC). */
  process: boolean;
}

export const DEFAULT_METRICS: MetricsSettings = {
  public: false,
  budgetKinds: ['global', 'team', 'env', 'workflow'],
  maxLabelValues: 200,
  process: true,
};

const CLASSES = [
  ['input', 'input'],
  ['cacheWrite5m', 'cache_write_5m'],
  ['cacheWrite1h', 'cache_write_1h'],
  ['cacheRead', 'cache_read'],
  ['output', 'output'],
] as const;

export const OTHER = '_other';

/**
 * What the metrics read at scrape time: the core (prices, cache health, budgets, kill switches, the
 * log) and, when this process hosts them, the counts of approval items and runs.
 */
export interface MetricsSource extends Pick<Runtime, 'prices' | 'streams' | 'store' | 'log'> {
  readonly approvals?: { readonly store: { counts(): Promise<Record<string, number>> } };
  readonly runs?: { readonly runs: { counts(): Promise<Record<string, number>> } };
  readonly backend?: { readonly reconciliations: Pick<ReconStore, 'list'> };
}

/** Keeps a label's distinct values bounded. */
class Bounded {
  private readonly seen = new Set<string>();
  constructor(private readonly max: number) {}
  get(v: string): string {
    if (this.seen.has(v)) return v;
    if (this.seen.size >= this.max) return OTHER;
    this.seen.add(v);
    return v;
  }
}

interface Series {
  ok: Counter.Internal;
  error: Counter.Internal;
  refused: Counter.Internal;
  tokens: Counter.Internal[];
  cost: Counter.Internal;
  provider: HistogramChild;
  /** What the counters above are still to be increased by (see Metrics.flush): ok, error, refused,
   * the five token classes, cost. */
  due: number[];
  queued: boolean;
}

// Process metrics are per process, not per runtime: one registry, made once.
let processRegistry: Registry | undefined;

export class Metrics implements CallObserver {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private readonly teams: Bounded;
  private readonly models: Bounded;
  private readonly codes: Bounded;
  private readonly workflows: Bounded;
  private readonly budgets: Bounded;
  private readonly series = new Map<string, Series>();
  /** Series with increments not yet in their counters. */
  private readonly due: Series[] = [];
  private readonly durations = new Map<string, HistogramChild>();

  private readonly calls: Counter;
  private readonly refusals: Counter;
  private readonly tokens: Counter;
  private readonly cost: Counter;
  private readonly errors: Counter;
  private readonly admission: CallHistogram;
  private readonly provider: CallHistogram;
  private readonly duration: CallHistogram;
  private readonly collectErrors: Counter;

  constructor(
    private readonly rt: MetricsSource,
    readonly settings: MetricsSettings = DEFAULT_METRICS,
  ) {
    const max = settings.maxLabelValues;
    this.teams = new Bounded(max);
    this.models = new Bounded(max);
    this.codes = new Bounded(max);
    this.workflows = new Bounded(max);
    this.budgets = new Bounded(max * 5);
    const registers = [this.registry];
    this.calls = new Counter({
      name: 'chokepoint_calls_total',
      help: 'Model calls through the call path, by team, model, provider and outcome (ok, error, refused)',
      labelNames: ['team', 'model', 'provider', 'outcome'],
      registers,
      collect: () => this.flush(),
    });
    this.refusals = new Counter({
      name: 'chokepoint_refusals_total',
      help: 'Calls refused before the provider, by refusal code (budget_exhausted, killed, unauthenticated, ...)',
      labelNames: ['code', 'team'],
      registers,
    });
    this.errors = new Counter({
      name: 'chokepoint_call_errors_total',
      help: 'Calls that reached the provider and failed, by error code (upstream_timeout, overloaded_error, ...)',
      labelNames: ['code', 'model'],
      registers,
    });
    this.tokens = new Counter({
      name: 'chokepoint_tokens_total',
      help: 'Tokens billed, by team, model and class (input, cache_write_5m, cache_write_1h, cache_read, output)',
      labelNames: ['team', 'model', 'class'],
      registers,
      collect: () => this.flush(),
    });
    this.cost = new Counter({
      name: 'chokepoint_cost_micros_total',
      help: 'Settled cost in micro-dollars (1 USD = 1e6), by team, model and provider',
      labelNames: ['team', 'model', 'provider'],
      registers,
      collect: () => this.flush(),
    });
    this.admission = new CallHistogram({
      name: 'chokepoint_admission_seconds',
      help: 'From the start of the call path to an admitted reservation (prefix check, route, price, reserve)',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.provider = new CallHistogram({
      name: 'chokepoint_provider_response_seconds',
      help: "Until the provider's response head (time to first byte for streams), by model and provider",
      labelNames: ['model', 'provider'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.duration = new CallHistogram({
      name: 'chokepoint_call_duration_seconds',
      help: 'Whole model calls, including the streamed answer, by outcome',
      labelNames: ['outcome'],
      buckets: [0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.collectErrors = new Counter({
      name: 'chokepoint_metrics_collect_errors_total',
      help: 'Scrape-time collections that failed (their gauges are left empty, never stale)',
      labelNames: ['collector'],
      registers,
    });
    this.gauges();
    if (settings.process && !processRegistry) {
      processRegistry = new Registry();
      collectDefaultMetrics({ register: processRegistry });
    }
  }

  private seriesOf(team: string, model: string, provider: string): Series {
    const key = `${team}\u0000${model}\u0000${provider}`;
    let s = this.series.get(key);
    if (!s) {
      s = {
        ok: this.calls.labels(team, model, provider, 'ok'),
        error: this.calls.labels(team, model, provider, 'error'),
        refused: this.calls.labels(team, model, provider, 'refused'),
        tokens: CLASSES.map(([, label]) => this.tokens.labels(team, model, label)),
        cost: this.cost.labels(team, model, provider),
        provider: this.provider.labels(model, provider),
        due: [0, 0, 0, 0, 0, 0, 0, 0, 0],
        queued: false,
      };
      this.series.set(key, s);
    }
    return s;
  }

  /** One model call, whatever its outcome. */
  call(call: Pick<ModelCall, 'identity'>, r: CallRecord, t: CallTiming): void {
    const team = this.teams.get(call.identity.team);
    // A refused call's model may be anything the caller typed: only priced models are labels,
    // by their canonical id (aliases and dated ids are one series, as on the provider's bill).
    const priced = this.rt.prices.lookup(r.model)?.model;
    const model = priced ? this.models.get(priced) : 'unknown';
    // Provider names come from the config: a bounded set; a refusal before routing has none.
    const s = this.seriesOf(team, model, r.provider ?? 'none');
    // The call, token and cost counters are summed here and reach prom-client when read (flush):
    // a few additions per call instead of a label lookup per counter.
    const due = s.due;
    if (!s.queued) {
      s.queued = true;
      this.due.push(s);
    }
    if (r.outcome === 'refused') {
      due[2]!++;
      this.refusals.labels(this.codes.get(r.code ?? 'unknown'), team).inc();
    } else {
      due[r.outcome === 'ok' ? 0 : 1]!++;
      if (r.outcome === 'error') this.errors.labels(this.codes.get(r.code ?? 'unknown'), model).inc();
      // In CLASSES' order, by name: a loop over the names would read `tokens[name]` with a
      // different key each time, which V8 looks up the slow (megamorphic) way.
      const { input, cacheWrite5m, cacheWrite1h, cacheRead, output } = r.tokens;
      if (input > 0) due[3]! += input;
      if (cacheWrite5m > 0) due[4]! += cacheWrite5m;
      if (cacheWrite1h > 0) due[5]! += cacheWrite1h;
      if (cacheRead > 0) due[6]! += cacheRead;
      if (output > 0) due[7]! += output;
      if (r.cost > 0) due[8]! += r.cost;
    }
    if (t.admitted !== undefined) this.admission.observe((t.admitted - t.started) / 1000);
    if (t.responded !== undefined && t.admitted !== undefined) {
      s.provider.observe((t.responded - t.admitted) / 1000);
    }
    let d = this.durations.get(r.outcome);
    if (!d) {
      d = this.duration.labels(r.outcome);
      this.durations.set(r.outcome, d);
    }
    d.observe((t.ended - t.started) / 1000);
  }

  /** Moves the summed increments into the counters: prom-client calls it before any read of them. */
  flush(): void {
    for (const s of this.due.splice(0)) {
      const d = s.due;
      const counters = [s.ok, s.error, s.refused, ...s.tokens, s.cost];
      for (let i = 0; i < d.length; i++) {
        if (d[i]! > 0) counters[i]!.inc(d[i]!);
        d[i] = 0;
      }
      s.queued = false;
    }
  }

  /** A gateway request refused before it had an identity or a valid body (401, 400, 413). */
  rejected(_requestId: string, code: string): void {
    this.refusals.labels(this.codes.get(code), 'unknown').inc();
  }

  /** Gauges read at scrape time, by collector; a failing read empties its gauges and counts an error. */
  private readonly collectors: Array<{ name: string; gauges: Gauge[]; run: () => Promise<void> | void }> = [];

  private gauges(): void {
    const registers = [this.registry];
    const rt = this.rt;
    const gauge = (name: string, help: string, labelNames: string[]) =>
      new Gauge({ name, help, labelNames, registers });
    const rate = (n: number, d: number) => (d > 0 ? n / d : 0);

    const hit = gauge(
      'chokepoint_cache_hit_rate',
      'Cache read tokens / input tokens per workflow since this process started',
      ['workflow'],
    );
    const expected = gauge(
      'chokepoint_cache_expected_hit_rate',
      "The hit rate each workflow's stable prompt prefix allowed, since this process started",
      ['workflow'],
    );
    this.collectors.push({
      name: 'cache',
      gauges: [hit, expected],
      run: () => {
        for (const t of rt.streams.cacheHealth()) {
          const wf = this.workflows.get(t.workflow);
          hit.labels(wf).set(rate(t.actualRead, t.inputTokens));
          expected.labels(wf).set(rate(t.expectedRead, t.inputTokens));
        }
      },
    });

    const scope = ['scope_kind', 'scope'];
    const util = gauge(
      'chokepoint_budget_utilisation_ratio',
      'Spent + reserved over the ceiling in the current window (seats and runs only when configured)',
      scope,
    );
    const spent = gauge('chokepoint_budget_spent_micros', 'Spent in the current window, µ$', scope);
    const ceiling = gauge('chokepoint_budget_ceiling_micros', 'The ceiling of the current window, µ$', scope);
    this.collectors.push({
      name: 'budgets',
      gauges: [util, spent, ceiling],
      run: async () => {
        const lists = await Promise.all(
          this.settings.budgetKinds.map((kind) => rt.store.listBudgets({ kind })),
        );
        for (const b of lists.flat()) {
          const { kind, key } = parseScope(b.scope);
          const labels = [kind, this.budgets.get(key ?? 'global')];
          util.labels(...labels).set(b.ceiling > 0 ? (b.spent + b.reserved) / b.ceiling : 0);
          spent.labels(...labels).set(b.spent);
          ceiling.labels(...labels).set(b.ceiling);
        }
      },
    });

    this.leaseGauges(gauge);

    const kills = gauge(
      'chokepoint_kill_switches',
      'Kill switches on, by scope kind (global is 1 when the global switch is on)',
      ['scope_kind'],
    );
    this.collectors.push({
      name: 'kills',
      gauges: [kills],
      run: async () => {
        const list = await rt.store.listKills();
        kills.labels('global').set(0);
        for (const k of list) kills.labels(parseScope(k.scope).kind).inc();
      },
    });

    const approvals = gauge(
      'chokepoint_approvals',
      'Approval items by state (pending: waiting for a human)',
      ['state'],
    );
    this.collectors.push({
      name: 'approvals',
      gauges: [approvals],
      run: async () => {
        if (!rt.approvals) return;
        for (const [state, n] of Object.entries(await rt.approvals.store.counts()))
          approvals.labels(state).set(n);
      },
    });

    this.reconciliationGauges(gauge);

    const runs = gauge('chokepoint_runs', 'Workflow runs by state', ['state']);
    this.collectors.push({
      name: 'runs',
      gauges: [runs],
      run: async () => {
        if (!rt.runs) return;
        for (const [state, n] of Object.entries(await rt.runs.runs.counts())) runs.labels(state).set(n);
      },
    });
  }

  /** The latest reconciliation with each provider's bill (from the reconciliations store). */
  private reconciliationGauges(gauge: (name: string, help: string, labelNames: string[]) => Gauge): void {
    const rt = this.rt;
    const diff = gauge(
      'chokepoint_reconciliation_diff_micros',
      "The latest reconciliation's provider − ledger total, µ$ (positive: the bill is higher)",
      ['provider'],
    );
    const divergent = gauge(
      'chokepoint_reconciliation_divergent',
      '1 when the latest reconciliation with a provider found a divergence past the tolerance',
      ['provider'],
    );
    const at = gauge(
      'chokepoint_reconciliation_timestamp_seconds',
      'When the latest reconciliation with a provider ran (Unix seconds)',
      ['provider'],
    );
    this.collectors.push({
      name: 'reconciliation',
      gauges: [diff, divergent, at],
      run: async () => {
        if (!rt.backend) return;
        const seen = new Set<string>();
        // Newest first: the first record of a provider is its latest.
        for (const r of await rt.backend.reconciliations.list({ limit: 100 })) {
          const provider = r.provider ?? 'anthropic';
          if (seen.has(provider)) continue;
          seen.add(provider);
          diff.labels(provider).set(r.total.diff);
          divergent.labels(provider).set(r.verdict === 'divergent' ? 1 : 0);
          at.labels(provider).set(r.at / 1000);
        }
      },
    });
  }

  private refreshing: Promise<void> = Promise.resolve();

  /** Budget leases (runtime/store/leases.ts): what this process did and holds. */
  private leaseGauges(gauge: (name: string, help: string, labelNames: string[]) => Gauge): void {
    const rt = this.rt;
    const leaseOps = gauge(
      'chokepoint_lease_operations',
      'Budget leases since this process started, by what happened: grants (store steps that reserved a slice), from_memory (calls admitted without the store), batches (store steps that wrote settlements), steps (settlements and lease changes in them), returned (slices given back), store_calls (every call into the money store for admission and settlement)',
      ['op'],
    );
    const leaseHeld = gauge(
      'chokepoint_lease_held_micros',
      'What this process holds in budget leases now, µ$',
      [],
    );
    this.collectors.push({
      name: 'leases',
      gauges: [leaseOps, leaseHeld],
      run: () => {
        const store = rt.store as Partial<LeasedMoneyStore>;
        if (!store.stats || !store.holding) return;
        const s = store.stats;
        leaseOps.labels('grants').set(s.grants);
        leaseOps.labels('from_memory').set(s.fromMemory);
        leaseOps.labels('batches').set(s.batches);
        leaseOps.labels('steps').set(s.steps);
        leaseOps.labels('returned').set(s.returned);
        leaseOps.labels('store_calls').set(s.storeCalls);
        leaseHeld.set(store.holding().held);
      },
    });
  }

  /** Runs every collector (one scrape at a time), each on its own: one failing leaves the others. */
  private refresh(): Promise<void> {
    this.refreshing = this.refreshing.then(() =>
      Promise.all(
        this.collectors.map(async (c) => {
          for (const g of c.gauges) g.reset();
          try {
            await c.run();
          } catch (err) {
            for (const g of c.gauges) g.reset();
            this.collectErrors.labels(c.name).inc();
            this.rt.log.warn('metrics collection failed', { collector: c.name, error: err });
          }
        }),
      ).then(() => undefined),
    );
    return this.refreshing;
  }

  /** The Prometheus text exposition: this runtime's metrics, then the process's. */
  async scrape(): Promise<string> {
    await this.refresh();
    const own = await this.registry.metrics();
    return processRegistry && this.settings.process ? `${own}\n${await processRegistry.metrics()}` : own;
  }
}
