import type { AlertSettings } from '../config/settings.ts';
import type { AlarmKind, AlarmStore, EventLog } from '../events.ts';
import { type Identity, SCOPE_KINDS, type Scope, scopesOf } from '../identity.ts';
import type { Logger } from '../log.ts';
import type { Micros } from '../money.ts';
import type { Budget, MoneyStore } from '../store/port.ts';
import { type Delivery, Destinations } from './deliver.ts';
import {
  type BudgetAlert,
  claimOf,
  crossed,
  forecastAlert,
  forecastCrossing,
  refusedAlert,
  type SpendSample,
  thresholdAlert,
  thresholdsFor,
} from './thresholds.ts';

/** What the call observer hands over after each call (a CallRecord fits). */
export interface SettledCall {
  cost: Micros;
  provider?: string;
  refusal?: { code: string; budget?: Budget };
}

export interface AlertDeps {
  store: Pick<MoneyStore, 'getBudget' | 'listBudgets'>;
  alarms: Pick<AlarmStore, 'claim'>;
  events: Pick<EventLog, 'raise'>;
  log: Logger;
  now(): number;
  /** The budgets' zone: alert messages give times in it. */
  timeZone: string;
}

const ALARM_OF: Record<BudgetAlert['kind'], AlarmKind> = {
  threshold: 'budget_near_ceiling',
  refused: 'budget_exhausted',
  forecast: 'budget_forecast',
  test: 'budget_near_ceiling',
};

/** How long `close` waits for checks and deliveries under way. */
const CLOSE_GRACE_MS = 2_000;

/** Identities noted between two checks, at most. */
const MAX_PENDING = 10_000;

/** Keys known to be claimed (by this process or another) kept in memory, at most this many. */
const KNOWN_CLAIMS = 10_000;

/**
 * Budget alerts. Nothing here runs on a call's path: the call observer hands each settled call to
 * `settled` (a few set insertions), and the budgets it touched are read and checked at most once
 * per `debounce` (a throttle: steady traffic still gets checked every interval), plus a sweep of
 * every alerting budget each `sweep` (tool spend, other replicas' calls, forecasts). An alert is
 * claimed in the store before it is raised (alarms.claim: once per threshold per budget window,
 * whichever process gets there first), raised as an alarm (the log and the inbox), then sent to
 * the webhooks and Slack in the background, with retries. A failed store read or claim is logged
 * and tried again at the next check; a delivery never blocks or fails a call.
 */
export class AlertService {
  readonly destinations: Destinations;
  /** Identities whose calls settled since the last check (expanded to their scopes then). */
  private readonly pending = new Set<Identity>();
  private readonly pendingProviders = new Set<string>();
  private readonly refused = new Map<Scope, Budget>();
  private readonly samples = new Map<Scope, SpendSample[]>();
  private readonly claimed = new Set<string>();
  private readonly inflight = new Set<Promise<unknown>>();
  private chain: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private sweeper?: NodeJS.Timeout;
  private closed = false;
  private sweeping = false;

  constructor(
    private readonly settings: AlertSettings,
    private readonly deps: AlertDeps,
  ) {
    this.destinations = new Destinations(settings, deps.log, () => deps.now());
  }

  /** Starts the periodic sweep (the first one now). */
  start(): this {
    if (!this.settings.enabled) return this;
    // A sweep still under way (a slow store) is not queued behind again.
    this.sweeper = setInterval(() => {
      if (!this.sweeping) void this.sweep();
    }, this.settings.sweepMs);
    this.sweeper.unref();
    void this.sweep();
    return this;
  }

  /** The call observer's hook, after each call: never awaits, never throws. */
  settled(identity: Identity, call: SettledCall): void {
    if (!this.settings.enabled || this.closed) return;
    const r = call.refusal;
    if (r?.code === 'budget_exhausted' && r.budget) this.refused.set(r.budget.scope, r.budget);
    else if (call.cost > 0) {
      // Kept cheap: an object into a set (a busy interval's distinct identities are bounded; the
      // sweep covers any left out).
      if (this.pending.size < MAX_PENDING) this.pending.add(identity);
      if (call.provider) this.pendingProviders.add(call.provider);
    } else return;
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.settings.debounceMs);
      this.timer.unref();
    }
  }

  /** Checks every budget that alerts (the periodic backstop; tests call it directly). */
  sweep(): Promise<void> {
    this.sweeping = true;
    return this.serial(async () => {
      const kinds = SCOPE_KINDS.filter((k) => (this.settings.kinds[k] ?? this.settings.thresholds).length);
      const seen = new Set<Scope>();
      for (const kind of kinds) {
        for (const b of await this.deps.store.listBudgets({ kind })) {
          seen.add(b.scope);
          await this.evaluate(b);
        }
      }
      for (const scope of Object.keys(this.settings.budgets)) {
        if (seen.has(scope)) continue;
        const b = await this.deps.store.getBudget(scope);
        if (b) await this.evaluate(b);
      }
      this.forgetOldSamples();
    }).finally(() => {
      this.sweeping = false;
    });
  }

  /** Resolves once no check and no delivery is under way (tests; shutdown). */
  async drain(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.flush();
    }
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  /**
   * Stops the timers and the retries' waits, and gives the work under way a moment to end: a check
   * stuck on a store that went away must not hold up shutdown (its alert, if any, is claimed and
   * stored, or left for the next process to find).
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    clearTimeout(this.timer);
    this.timer = undefined;
    this.destinations.close();
    let t: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      t = setTimeout(resolve, CLOSE_GRACE_MS);
    });
    await Promise.race([Promise.allSettled([...this.inflight]), grace]);
    clearTimeout(t);
  }

  private flush(): void {
    this.timer = undefined;
    const scopes = new Set<Scope>();
    for (const id of this.pending) for (const s of scopesOf(id)) scopes.add(s);
    for (const p of this.pendingProviders) scopes.add(`provider:${p}`);
    const refused = [...this.refused.values()];
    this.pending.clear();
    this.pendingProviders.clear();
    this.refused.clear();
    void this.serial(async () => {
      for (const b of refused) await this.onRefused(b);
      for (const s of scopes) {
        const b = await this.deps.store.getBudget(s);
        if (b) await this.evaluate(b);
      }
    });
  }

  /** Checks run one at a time in this process; a failed one is logged and the next goes on. */
  private serial(fn: () => Promise<void>): Promise<void> {
    const p = this.chain
      .then(fn)
      .catch((err) => this.deps.log.warn('budget alert check failed', { error: err }));
    this.chain = p;
    return this.track(p);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
    return p;
  }

  private async onRefused(b: Budget): Promise<void> {
    if (b.state === 'frozen' || !thresholdsFor(this.settings, b.scope).includes('refused')) return;
    const now = this.deps.now();
    await this.once(claimOf(b, 'refused', now), now, () => refusedAlert(b, now, this.deps.timeZone));
  }

  private async evaluate(b: Budget): Promise<void> {
    const list = thresholdsFor(this.settings, b.scope);
    if (!list.length || b.state === 'frozen' || b.ceiling <= 0) return;
    const now = this.deps.now();
    const tz = this.deps.timeZone;
    for (const t of crossed(b, list))
      await this.once(claimOf(b, t, now), now, () => thresholdAlert(b, t, now, tz));
    if (!this.settings.forecast.enabled) return;
    const samples = this.sample(b, now);
    const f = forecastCrossing(b, samples, now, this.settings.forecast.minHistoryMs);
    if (f) await this.once(claimOf(b, 'forecast', now), now, () => forecastAlert(b, f, now, tz));
  }

  /** Keeps the budget's spend over the lookback, one sample per 1/60 of it, the oldest first. */
  private sample(b: Budget, now: number): SpendSample[] {
    const { lookbackMs } = this.settings.forecast;
    const kept = (this.samples.get(b.scope) ?? []).filter(
      (s) => s.windowStart === b.windowStart && s.at >= now - lookbackMs && s.spent <= b.spent,
    );
    const last = kept.at(-1);
    if (!last || now - last.at >= lookbackMs / 60)
      kept.push({ at: now, spent: b.spent, windowStart: b.windowStart });
    this.samples.set(b.scope, kept);
    return kept;
  }

  private forgetOldSamples(): void {
    const until = this.deps.now() - this.settings.forecast.lookbackMs;
    for (const [scope, s] of this.samples) if ((s.at(-1)?.at ?? 0) < until) this.samples.delete(scope);
  }

  private async once(
    claim: { key: string; expiresAt: number },
    now: number,
    make: () => BudgetAlert,
  ): Promise<void> {
    if (this.claimed.has(claim.key)) return;
    let mine: boolean;
    try {
      mine = await this.deps.alarms.claim(claim.key, { now, expiresAt: claim.expiresAt });
    } catch (err) {
      // Not remembered: the next check tries again.
      this.deps.log.warn('could not claim a budget alert', { error: err, key: claim.key });
      return;
    }
    if (this.claimed.size >= KNOWN_CLAIMS) this.claimed.clear();
    this.claimed.add(claim.key);
    if (!mine) return;
    const alert = make();
    const alarm = this.deps.events.raise(ALARM_OF[alert.kind], alert.budget.scope, alert.message, {
      alert: alert.kind,
      budget: alert.budget.id,
      scope: alert.budget.scope,
      spent_micros: alert.budget.spent,
      ceiling_micros: alert.budget.ceiling,
      window: alert.budget.window,
      ...(alert.threshold !== undefined ? { threshold: alert.threshold } : {}),
      ...(alert.crossesAt !== undefined
        ? { crosses_at: new Date(alert.crossesAt).toISOString(), rate_micros_per_hour: alert.ratePerHour }
        : {}),
    });
    if (this.destinations.count) this.track(this.deliver(alert, alarm.id));
  }

  private async deliver(alert: BudgetAlert, id: string): Promise<Delivery[]> {
    const results = await this.destinations.send(alert, id);
    for (const r of results) {
      const fields = { alert: id, scope: alert.budget.scope, ...r };
      if (r.ok) this.deps.log.info('budget alert delivered', fields);
      else this.deps.log.error('budget alert not delivered', fields);
    }
    return results;
  }
}
