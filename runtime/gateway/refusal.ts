import { formatUsd, type Micros, usd } from '../money.ts';
import type { Budget, KillSwitch, RateUnit } from '../store/port.ts';

/**
 * Every refusal Chokepoint makes, as one error class: its code, HTTP status, a message for
 * people and details for machines. `envelope()` is the one place that turns it into the
 * Anthropic error shape (so every SDK parses it) plus the `chokepoint` object.
 */
export type RefusalCode =
  | 'budget_exhausted'
  | 'rate_limited'
  | 'killed'
  | 'time_box_exceeded'
  | 'model_not_allowed'
  | 'prefix_drift'
  | 'unauthenticated'
  | 'enforcement_unavailable'
  | 'invalid_request'
  | 'request_too_large'
  | 'not_found'
  | 'forbidden'
  | 'conflict';

const STATUS: Record<RefusalCode, number> = {
  budget_exhausted: 429,
  rate_limited: 429,
  killed: 403,
  time_box_exceeded: 429,
  model_not_allowed: 403,
  prefix_drift: 409,
  unauthenticated: 401,
  enforcement_unavailable: 503,
  invalid_request: 400,
  request_too_large: 413,
  not_found: 404,
  forbidden: 403,
  conflict: 409,
};

const ANTHROPIC_TYPE: Record<RefusalCode, string> = {
  budget_exhausted: 'rate_limit_error',
  rate_limited: 'rate_limit_error',
  killed: 'permission_error',
  time_box_exceeded: 'rate_limit_error',
  model_not_allowed: 'permission_error',
  prefix_drift: 'invalid_request_error',
  unauthenticated: 'authentication_error',
  enforcement_unavailable: 'api_error',
  invalid_request: 'invalid_request_error',
  request_too_large: 'request_too_large',
  not_found: 'not_found_error',
  forbidden: 'permission_error',
  conflict: 'invalid_request_error',
};

export class Refusal extends Error {
  readonly status: number;
  /** `budget_exhausted`: the budget the call would pass, and what the call may cost at most. */
  budget?: Budget;
  amount?: Micros;
  /** `killed`: the switch that covers the caller. */
  kill?: KillSwitch;
  constructor(
    readonly code: RefusalCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    /** Seconds until a retry could succeed (429s); sent as retry-after. */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'Refusal';
    this.status = STATUS[code];
  }

  envelope(requestId?: string): Record<string, unknown> {
    return {
      type: 'error',
      error: { type: ANTHROPIC_TYPE[this.code], message: this.message },
      chokepoint: { code: this.code, ...this.details },
      ...(requestId ? { request_id: requestId } : {}),
    };
  }

  headers(requestId?: string): Record<string, string> {
    const h: Record<string, string> = {
      'content-type': 'application/json',
      // Refusals are decisions, not congestion: an SDK must not hammer the gateway with retries.
      // Only a store outage, and a rate limit whose window will make room, are worth retrying.
      'x-should-retry': this.retryable() ? 'true' : 'false',
    };
    if (this.retryAfter !== undefined) h['retry-after'] = String(Math.max(1, Math.ceil(this.retryAfter)));
    if (requestId) h['request-id'] = requestId;
    return h;
  }

  /** Whether a retry could succeed without anyone acting: a store outage, a rate limit that frees. */
  retryable(): boolean {
    return (
      this.code === 'enforcement_unavailable' ||
      (this.code === 'rate_limited' && this.retryAfter !== undefined)
    );
  }
}

export function budgetView(b: Budget): Record<string, unknown> {
  return {
    id: b.id,
    scope: b.scope,
    ceiling_usd: formatUsd(b.ceiling),
    spent_usd: formatUsd(b.spent),
    reserved_usd: formatUsd(b.reserved),
    window: b.window,
    state: b.state,
    resets_at: b.resetsAt === null ? null : new Date(b.resetsAt).toISOString(),
  };
}

const WINDOW_WORD: Record<string, string> = { day: 'daily', month: 'monthly', total: 'total' };

export function budgetExhausted(b: Budget, amount: Micros, now: number): Refusal {
  const windowWord = WINDOW_WORD[b.window] ?? `rolling ${b.window}`;
  const [kind, key] = b.scope.includes(':') ? b.scope.split(/:(.*)/s) : [b.scope, ''];
  const who = key ? `${kind} '${key}'` : kind;
  const message =
    b.state === 'frozen'
      ? `budget frozen: ${who} budget is frozen by an operator; calls are refused until it is unfrozen`
      : `budget exhausted: ${who} ${windowWord} ceiling ${usd(b.ceiling)} (spent ${usd(b.spent)}${
          b.reserved ? `, reserved ${usd(b.reserved)}` : ''
        }, this call may cost up to ${usd(amount)})`;
  const retryAfter = b.resetsAt === null || b.state === 'frozen' ? undefined : (b.resetsAt - now) / 1000;
  const refusal = new Refusal(
    'budget_exhausted',
    message,
    { budget: budgetView(b), call_may_cost_usd: formatUsd(amount) },
    retryAfter,
  );
  refusal.budget = b;
  refusal.amount = amount;
  return refusal;
}

const UNIT_WORD: Record<RateUnit, string> = {
  requests: 'requests',
  input_tokens: 'input tokens',
  output_tokens: 'output tokens',
  concurrent: 'concurrent calls',
};

/**
 * A rate limit (a budget of requests, tokens or calls in flight) has no room for the call: 429,
 * retryable at `retryAt` — when its rolling window drops enough — or, when only finishing calls
 * can free it, retryable without a time; a call that asks for more than the limit itself is not.
 */
export function rateLimited(
  r: { budget: Budget; amount: number; retryAt: number | null },
  now: number,
): Refusal {
  const b = r.budget;
  const unit = b.unit ?? 'requests';
  const [kind, key] = b.scope.includes(':') ? b.scope.split(/:(.*)/s) : [b.scope, ''];
  const who = key ? `${kind} '${key}'` : kind;
  const per = unit === 'concurrent' ? 'at once' : `per ${b.window}`;
  const tooBig = r.amount > b.ceiling;
  const message = `rate limited: ${who} may use ${b.ceiling} ${UNIT_WORD[unit]} ${per} (${
    unit === 'concurrent' ? '' : `used ${b.spent}, `
  }in flight ${b.reserved}, this call ${r.amount})${
    tooBig
      ? '; this call alone is above the limit: lower max_tokens or the prompt'
      : r.retryAt === null
        ? '; retry when a call in flight finishes'
        : `; retry after ${new Date(r.retryAt).toISOString()}`
  }`;
  // Only finishing calls free it: retry soon. Above the limit by itself: no retry helps.
  const retryAfter = tooBig ? undefined : r.retryAt === null ? 1 : Math.max(0, r.retryAt - now) / 1000;
  const refusal = new Refusal(
    'rate_limited',
    message,
    {
      rate_limit: {
        id: b.id,
        scope: b.scope,
        unit,
        limit: b.ceiling,
        window: b.window,
        used: b.spent,
        in_flight: b.reserved,
        this_call: r.amount,
        retry_at: r.retryAt === null ? null : new Date(r.retryAt).toISOString(),
      },
    },
    retryAfter,
  );
  refusal.budget = b;
  refusal.amount = r.amount;
  return refusal;
}

export function killed(k: KillSwitch): Refusal {
  const refusal = new Refusal(
    'killed',
    // Gateway callers see the scope and when; who set it and why stay with the operators (the
    // inbox, the audit log): a kill switch's reason may name people or incidents.
    `killed: a kill switch on ${k.scope} refuses this call (set ${new Date(k.at).toISOString()}; ask your Chokepoint operators)`,
    { kill_switch: { scope: k.scope, at: new Date(k.at).toISOString() } },
  );
  refusal.kill = k;
  return refusal;
}

export function invalidRequest(field: string, problem: string): Refusal {
  return new Refusal('invalid_request', `${field}: ${problem}`, { field });
}

/**
 * A model with no price is refused (fail closed), with the config entry that would price it: the
 * rates come from the provider's pricing page (USD per million tokens); prices reload without a
 * restart.
 */
export function unknownModel(model: string, today = new Date().toISOString().slice(0, 10)): Refusal {
  const entry = `prices:\n  - model: ${JSON.stringify(model)}\n    from: "${today}"\n    rates: { input: <USD/MTok>, cacheWrite5m: <USD/MTok>, cacheWrite1h: <USD/MTok>, cacheRead: <USD/MTok>, output: <USD/MTok> }\n    maxOutputTokens: <the model's max output tokens>`;
  return new Refusal(
    'invalid_request',
    `model: unknown model ${JSON.stringify(model)}: no price is known for it, so the call is refused (Chokepoint fails closed). To allow it, add to chokepoint.config.yaml (rates from the provider's pricing page; prices reload without a restart):\n${entry}`,
    { field: 'model', model, prices_entry: entry },
  );
}

export function unavailable(what: string): Refusal {
  return new Refusal(
    'enforcement_unavailable',
    `enforcement unavailable: ${what}; the call is refused (Chokepoint fails closed)`,
    {},
    5,
  );
}
