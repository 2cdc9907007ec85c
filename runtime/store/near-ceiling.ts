import type { Scope } from '../identity.ts';

/** How long after a refusal on a budget its calls' settlements ship at once (see `isTight`). */
const TIGHT_MS = 2_000;

/** A replica that heard another ask for slack on a budget this recently does not ask itself. */
const SLACK_QUIET_MS = 20;

/**
 * What one replica remembers about budgets at their ceiling (runtime/store/leases.ts): where a
 * budget refused lately, here or at a replica that asked for slack on it — settlements of calls on
 * it then ship at once and slices on it keep no room beyond their calls in flight, so what those
 * calls did not spend of their worst case is free again — and when slack on it was last asked for,
 * so that a full budget costs a few asks a second across all replicas, not one per refusal each.
 */
export class NearCeiling {
  /** When each budget last refused here or was asked for slack. */
  private readonly tight = new Map<Scope, number>();
  /** When this replica last asked the others for their slack on a budget. */
  private readonly asked = new Map<Scope, number>();
  /** When another replica last asked for slack on a budget. */
  private readonly heard = new Map<Scope, number>();

  constructor(
    private readonly now: () => number,
    /** How often at most this replica asks for slack on one budget (its upkeep period). */
    private readonly askEveryMs: number,
  ) {}

  /** A budget refused here. */
  refused(scope: Scope): void {
    this.tight.set(scope, this.now());
  }

  /** Another replica asked for slack on `scope` (its own budget refused). */
  heardAsk(scope: Scope): void {
    const now = this.now();
    this.heard.set(scope, now);
    this.tight.set(scope, now);
  }

  /** Whether any budget refused lately: the cheap test before `isTight` on the per-call path. */
  get any(): boolean {
    return this.tight.size > 0;
  }

  /** Whether a budget of these scopes refused (here or at a peer) within the last TIGHT_MS. */
  isTight(scopes: readonly Scope[]): boolean {
    if (this.tight.size === 0) return false;
    const now = this.now();
    let tight = false;
    for (const [scope, at] of this.tight) {
      if (now - at > TIGHT_MS) this.tight.delete(scope);
      else if (scopes.includes(scope)) tight = true;
    }
    return tight;
  }

  /**
   * Whether to ask the other replicas for their slack on `scope` now: `ask` (recorded as asked),
   * `heard` (another replica asked a moment ago: everyone's slack just came back, so asking again
   * is worth nothing but retrying is) or `no` (this replica asked within its upkeep period: what the
   * others gave back then is all they had).
   */
  slackAsk(scope: Scope): 'ask' | 'heard' | 'no' {
    const now = this.now();
    const last = this.asked.get(scope);
    if (last !== undefined && now - last < this.askEveryMs) return 'no';
    const heard = this.heard.get(scope);
    if (heard !== undefined && now - heard < SLACK_QUIET_MS) return 'heard';
    this.asked.set(scope, now);
    return 'ask';
  }

  /** Forgets asks older than `idleMs` (upkeep). */
  forgetIdle(idleMs: number): void {
    const now = this.now();
    for (const [scope, at] of this.asked) if (now - at > idleMs) this.asked.delete(scope);
    for (const [scope, at] of this.heard) if (now - at > idleMs) this.heard.delete(scope);
  }
}
