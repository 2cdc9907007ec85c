/**
 * Who is calling. Every model or tool call carries one; no identity, no call.
 * An API key gives team/env/seat; a run adds its workflow and run id; an outside caller may add
 * a workflow and a session by header.
 */
export interface Identity {
  team: string;
  env: string;
  seat: string;
  workflow?: string;
  run?: string;
  session?: string;
  /** The id (never the secret) of the API key or operator token that made the call. */
  keyId?: string;
  /**
   * The provider a model call goes to, when that provider has a budget of its own (a committed
   * spend: `providers.<name>.budget`): the call is then also admitted against `provider:<name>`.
   */
  provider?: string;
}

export const SCOPE_KINDS = ['global', 'team', 'env', 'seat', 'workflow', 'run', 'provider'] as const;
export type ScopeKind = (typeof SCOPE_KINDS)[number];

/** `global`, `team:payments`, `env:prod`, `seat:alice`, `workflow:triage`, `run:r_123`, `provider:bedrock`. */
export type Scope = string;

const KEY = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

export class ScopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScopeError';
  }
}

/** Checks a scope key (a team name, a seat, a run id): letters, digits, `._@-`, at most 128. */
export function isScopeKey(key: string): boolean {
  return KEY.test(key);
}

/** Parses `team:payments` into its kind and key; `global` has no key. */
export function parseScope(scope: string): { kind: ScopeKind; key?: string } {
  if (scope === 'global') return { kind: 'global' };
  const i = scope.indexOf(':');
  const kind = scope.slice(0, i) as ScopeKind;
  const key = scope.slice(i + 1);
  if (i <= 0 || !SCOPE_KINDS.includes(kind) || kind === 'global') {
    throw new ScopeError(
      `unknown scope ${JSON.stringify(scope)}: expected global, team:<key>, env:<key>, seat:<key>, workflow:<id>, run:<id> or provider:<name>`,
    );
  }
  if (!isScopeKey(key)) {
    throw new ScopeError(
      `bad scope key in ${JSON.stringify(scope)}: use letters, digits, '.', '_', '@' or '-' (at most 128)`,
    );
  }
  return { kind, key };
}

export function scope(kind: ScopeKind, key?: string): Scope {
  return kind === 'global' ? 'global' : `${kind}:${key}`;
}

/** Every scope an identity falls under, widest first: the budgets and kill switches that apply. */
export function scopesOf(id: Identity): Scope[] {
  const out = ['global', `team:${id.team}`, `env:${id.env}`, `seat:${id.seat}`];
  if (id.workflow) out.push(`workflow:${id.workflow}`);
  if (id.run) out.push(`run:${id.run}`);
  if (id.provider) out.push(`provider:${id.provider}`);
  return out;
}

/**
 * What a rate limit may count besides the budgets' scopes: one API key (`key:<id>`) and one model
 * (`model:<name>`). These are rate-limit scopes only: they never get a money budget.
 */
export const RATE_SCOPE_KINDS = [...SCOPE_KINDS, 'key', 'model'] as const;
export type RateScopeKind = (typeof RATE_SCOPE_KINDS)[number];

/** Model names carry `:` and `/` (`anthropic.claude-opus-5-v1:0`): a model scope allows them. */
const MODEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._@:/-]{0,127}$/;

/** Parses a rate limit's scope (`team:payments`, `key:key_1`, `model:claude-opus-5`, `global`). */
export function parseRateScope(scope: string): { kind: RateScopeKind; key?: string } {
  if (scope === 'global') return { kind: 'global' };
  const i = scope.indexOf(':');
  const kind = scope.slice(0, i) as RateScopeKind;
  const key = scope.slice(i + 1);
  if (i <= 0 || !RATE_SCOPE_KINDS.includes(kind) || kind === 'global') {
    throw new ScopeError(
      `unknown rate-limit scope ${JSON.stringify(scope)}: expected global or <kind>:<key> with kind one of ${RATE_SCOPE_KINDS.slice(1).join(', ')}`,
    );
  }
  if (!(kind === 'model' ? MODEL_KEY.test(key) : isScopeKey(key))) {
    throw new ScopeError(`bad scope key in ${JSON.stringify(scope)}`);
  }
  return { kind, key };
}

/** The scope of each kind a rate limit counts for this caller and model (a kind it lacks is absent). */
export function rateScopesOf(id: Identity, model: string): Partial<Record<RateScopeKind, Scope>> {
  const out: Partial<Record<RateScopeKind, Scope>> = {
    global: 'global',
    team: `team:${id.team}`,
    env: `env:${id.env}`,
    seat: `seat:${id.seat}`,
    model: `model:${model}`,
  };
  if (id.workflow) out.workflow = `workflow:${id.workflow}`;
  if (id.run) out.run = `run:${id.run}`;
  if (id.provider) out.provider = `provider:${id.provider}`;
  if (id.keyId) out.key = `key:${id.keyId}`;
  return out;
}
