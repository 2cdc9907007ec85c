import { createHash } from 'node:crypto';
import { type Identity, parseScope, type Scope, ScopeError, type ScopeKind, scopesOf } from '../identity.ts';
import { newId } from '../ids.ts';
import type { Micros } from '../money.ts';
import {
  type AuditEntry,
  type AuditInput,
  type BudgetSpec,
  type BudgetState,
  EnforcementUnavailableError,
  type ExpiredCorrection,
  type LedgerEntry,
  type LedgerInput,
  type MoneyStoreOptions,
  type Outcome,
  StoreInputError,
  type TokenCounts,
} from './port.ts';
import { isWindowSpec } from './windows.ts';

/**
 * What both backends share: budget ids, input checks, ledger and audit records. The backends differ
 * only in how they store these; the rules live here and in the three atomic operations.
 */

/** Deterministic from the scope, so two processes provisioning the same scope create one budget. */
export function budgetId(scope: Scope): string {
  let id = budgetIds.get(scope);
  if (id === undefined) {
    id = `bgt_${createHash('sha256').update(scope).digest('hex').slice(0, 16)}`;
    if (budgetIds.size >= 10_000) budgetIds.clear();
    budgetIds.set(scope, id);
  }
  return id;
}

/** Scopes recur on every call (global, team, env, seat): their ids are remembered, within bounds. */
const budgetIds = new Map<string, string>();

export function checkScope(scope: Scope): { kind: ScopeKind; key?: string } {
  try {
    return parseScope(scope);
  } catch (err) {
    throw new StoreInputError('invalid', err instanceof ScopeError ? err.message : String(err));
  }
}

/**
 * Every scope of the identity, widest first, each one checked. The list is frozen and shared: an
 * identity's scopes are asked for several times a call, so the checked list is remembered by the
 * identity's values (within bounds).
 */
export function identityScopes(identity: Identity): Scope[] {
  if (!identity || typeof identity !== 'object') throw new StoreInputError('invalid', 'missing identity');
  const { team, env, seat, workflow, run, provider } = identity;
  // Remembered by team, env and seat, then the rest: each value after its length (two identities
  // share a place only if their values are the same), '' when none is set — the common case finds
  // its scopes with four lookups and builds no string.
  const memo =
    typeof team === 'string' &&
    typeof env === 'string' &&
    typeof seat === 'string' &&
    (workflow === undefined || typeof workflow === 'string') &&
    (run === undefined || typeof run === 'string') &&
    (provider === undefined || typeof provider === 'string');
  let rest = '';
  if (memo && (workflow !== undefined || run !== undefined || provider !== undefined)) {
    rest = `${workflow?.length ?? -1}:${workflow ?? ''}${run?.length ?? -1}:${run ?? ''}${provider?.length ?? -1}:${provider ?? ''}`;
  }
  const known = memo ? checkedScopes.get(team)?.get(env)?.get(seat)?.get(rest) : undefined;
  if (known) return known;
  for (const field of ['team', 'env', 'seat', 'workflow', 'run'] as const) {
    const v = identity[field];
    const optional = field === 'workflow' || field === 'run';
    if (typeof v !== 'string' && !(optional && v === undefined)) {
      throw new StoreInputError('invalid', `identity.${field} must be a string, got ${String(v)}`);
    }
  }
  const scopes = scopesOf(identity);
  for (const s of scopes) checkScope(s);
  Object.freeze(scopes);
  if (memo) {
    if (remembered >= 10_000) {
      checkedScopes.clear();
      remembered = 0;
    }
    child(child(child(checkedScopes, team), env), seat).set(rest, scopes);
    remembered++;
  }
  return scopes;
}

/** The scopes as one string (space-separated: a scope holds no space), made once per list. */
export function scopesKey(scopes: readonly Scope[]): string {
  let k = scopeKeys.get(scopes);
  if (k === undefined) {
    k = scopes.join(' ');
    if (Object.isFrozen(scopes)) scopeKeys.set(scopes, k);
  }
  return k;
}

/** By the frozen lists identityScopes hands out (a list that can change is never remembered). */
const scopeKeys = new WeakMap<readonly Scope[], string>();

/** Identities' checked scopes, by team, env, seat and the rest (workflow, run, provider). */
const checkedScopes = new Map<string, Map<string, Map<string, Map<string, Scope[]>>>>();
let remembered = 0;

/** `m`'s map at `k`, created if missing. */
function child<T>(m: Map<string, Map<string, T>>, k: string): Map<string, T> {
  let c = m.get(k);
  if (!c) {
    c = new Map();
    m.set(k, c);
  }
  return c;
}

export function checkMicros(value: unknown, what: string): Micros {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new StoreInputError(
      'invalid',
      `${what} must be a whole number of micro-dollars >= 0 (there is no unlimited), got ${String(value)}`,
    );
  }
  return value;
}

export function checkSpec(spec: BudgetSpec, scope: Scope): Required<BudgetSpec> {
  if (!spec || typeof spec !== 'object') throw new StoreInputError('invalid', `no budget spec for ${scope}`);
  if (!isWindowSpec(spec.window)) {
    throw new StoreInputError(
      'invalid',
      `budget for ${scope}: unknown window ${JSON.stringify(spec.window)}`,
    );
  }
  return {
    ceiling: checkMicros(spec.ceiling, `ceiling for ${scope}`),
    window: spec.window,
    owner: spec.owner ?? 'unassigned',
  };
}

/** The spec a missing budget is created with: the request's provisioning, else the kind's default. */
export function specFor(
  scope: Scope,
  options: MoneyStoreOptions,
  provision?: Record<Scope, BudgetSpec>,
): Required<BudgetSpec> {
  const given = provision?.[scope];
  return checkSpec(given ?? options.defaults[checkScope(scope).kind], scope);
}

export function budgetState(frozen: boolean, spent: Micros, ceiling: Micros): BudgetState {
  if (frozen) return 'frozen';
  return spent >= ceiling ? 'exhausted' : 'active';
}

export function checkActor(by: { actor: string; reason: string }): void {
  if (
    !by ||
    typeof by.actor !== 'string' ||
    by.actor === '' ||
    typeof by.reason !== 'string' ||
    by.reason === ''
  ) {
    throw new StoreInputError('invalid', 'an operator action needs an actor and a reason');
  }
}

/** A ledger entry before the store decides `reserved` and `overrun`. */
export type PreparedEntry = Omit<LedgerEntry, 'overrun'>;

/** Entries prepareEntry returned: one that comes back (a lease step carrying it to the store) is
 * not checked and copied again. */
const PREPARED = new WeakSet<object>();

function tokenCount(v: number | undefined, name: string): number {
  const n = v ?? 0;
  if (!Number.isSafeInteger(n) || n < 0) throw new StoreInputError('invalid', `tokens.${name} must be >= 0`);
  return n;
}

/** The checks every ledger entry passes; returns its time (`now` when it names none). */
function checkEntry(input: LedgerInput, now: number): number {
  if (!input || typeof input !== 'object') throw new StoreInputError('invalid', 'missing ledger entry');
  identityScopes(input.identity);
  if (input.kind !== 'model' && input.kind !== 'tool') {
    throw new StoreInputError('invalid', `ledger kind must be model or tool, got ${String(input.kind)}`);
  }
  const o = input.outcome;
  if (o !== 'ok' && o !== 'refused' && o !== 'error' && o !== 'expired') {
    throw new StoreInputError('invalid', `unknown ledger outcome ${String(o)}`);
  }
  const at = input.at ?? now;
  // A time a day window can be found for (ms since 1970, within what Date can hold).
  if (!Number.isSafeInteger(at) || at < 0 || at > 8.64e15) {
    throw new StoreInputError('invalid', `ledger entry at must be a time in ms, got ${String(input.at)}`);
  }
  return at;
}

/** The five token counts, each checked (a missing one is 0). */
function tokensOf(t: Partial<TokenCounts> | undefined): TokenCounts {
  return {
    input: tokenCount(t?.input, 'input'),
    cacheWrite5m: tokenCount(t?.cacheWrite5m, 'cacheWrite5m'),
    cacheWrite1h: tokenCount(t?.cacheWrite1h, 'cacheWrite1h'),
    cacheRead: tokenCount(t?.cacheRead, 'cacheRead'),
    output: tokenCount(t?.output, 'output'),
  };
}

export function prepareEntry(input: LedgerInput, now: number): PreparedEntry {
  if (PREPARED.has(input)) return input as PreparedEntry;
  const at = checkEntry(input, now);
  const prepared: PreparedEntry = {
    ...input,
    id: input.id ?? newId('led'),
    at,
    tokens: tokensOf(input.tokens),
    cost: checkMicros(input.cost, 'cost'),
    reserved: checkMicros(input.reserved ?? 0, 'reserved'),
  };
  PREPARED.add(prepared);
  return prepared;
}

/**
 * A call's entry settled on `reservationId`, which held `reserved` for it: checked, prepared and
 * finished in one copy (prepareEntry then finishEntry, as a leased call settles thousands of times
 * a second). `id` names the entry when the input does not.
 */
export function settledEntry(
  input: LedgerInput,
  id: string,
  reservationId: string,
  reserved: Micros,
  now: number,
): LedgerEntry {
  const at = checkEntry(input, now);
  const cost = checkMicros(input.cost, 'cost');
  checkMicros(reserved, 'reserved');
  // Object.assign, not `{ ...input, id, … }`: V8 (Node 20) adds each key that a literal starting
  // with a spread adds to its copy through a slow path, ~1 µs a key (5 µs of this function's 7).
  const done: LedgerEntry = Object.assign({}, input, {
    id: input.id ?? id,
    at,
    tokens: tokensOf(input.tokens),
    cost,
    reserved,
    reservationId,
    overrun: Math.max(0, cost - reserved),
  });
  PREPARED.add(done);
  return done;
}

export function finishEntry(e: PreparedEntry, reserved: Micros): LedgerEntry {
  return Object.assign({}, e, { reserved, overrun: Math.max(0, e.cost - reserved) });
}

/**
 * A prepared entry as the ledger keeps it for `reservationId`: the entry itself when it is that
 * already (a leased call's settlement, finished once: settledEntry), else a finished copy.
 */
export function finishedFor(e: PreparedEntry, reservationId: string): LedgerEntry {
  const f = e as LedgerEntry;
  if (e.reservationId === reservationId && f.overrun === Math.max(0, e.cost - e.reserved)) return f;
  return finishEntry(Object.assign({}, e, { reservationId }), e.reserved);
}

/** The `expired` entry written when a reservation times out; its id derives from the reservation. */
export function expiredEntryId(reservationId: string): string {
  return `led_${reservationId.replace(/^res_/, '')}x`;
}

/** Entries whose cost is spend: an expired reservation is charged its worst case, so it counts,
 * and so does its correction (which is not a call of its own: `callsOf`). */
export function countsAsSpend(outcome: Outcome): boolean {
  return outcome === 'ok' || outcome === 'error' || outcome === 'expired' || outcome === 'corrected';
}

/** How many calls an entry is in spend rows: a correction amends a call, it is not one. */
export function callsOf(outcome: Outcome): number {
  return outcome === 'corrected' ? 0 : 1;
}

/** The `corrected` entry of an expired one: its id derives from the expired entry's. */
export function correctionEntryId(expiredId: string): string {
  return `${expiredId}c`;
}

/** Checks a correction's input; the billed figure is µ$ >= 0. */
export function checkCorrection(c: ExpiredCorrection): void {
  if (!c || typeof c !== 'object' || !c.expired || typeof c.expired.id !== 'string' || c.expired.id === '') {
    throw new StoreInputError('invalid', 'a correction names the expired entry (id and at)');
  }
  if (!Number.isSafeInteger(c.expired.at)) throw new StoreInputError('invalid', 'expired.at must be ms');
  checkMicros(c.billed, 'billed');
  if (typeof c.source !== 'string' || c.source === '') {
    throw new StoreInputError('invalid', 'a correction names what decided it (source)');
  }
}

/** The correction of `expired` to `billed`: one ledger entry with the difference. */
export function correctionEntry(
  expired: LedgerEntry,
  billed: Micros,
  source: string,
  now: number,
): LedgerEntry {
  return {
    id: correctionEntryId(expired.id),
    at: expired.at,
    requestId: expired.requestId,
    identity: expired.identity,
    kind: expired.kind,
    name: expired.name,
    ...(expired.provider ? { provider: expired.provider } : {}),
    tokens: { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 },
    reserved: 0,
    cost: billed - expired.cost,
    overrun: 0,
    outcome: 'corrected',
    code: 'reconciled',
    latencyMs: 0,
    ...(expired.reservationId ? { reservationId: expired.reservationId } : {}),
    corrects: expired.id,
    correctedAt: now,
    correctedBy: source,
  };
}

export const NO_WORKFLOW = '(none)';

/** The provider a spend row counts an entry under: tools under `(tool)`, old model entries under anthropic. */
export function providerKey(e: Pick<LedgerEntry, 'kind' | 'provider'>): string {
  return e.kind === 'model' ? (e.provider ?? 'anthropic') : NO_PROVIDER;
}

export const NO_PROVIDER = '(tool)';

/** `claude-sonnet-4-5` for a model call, `tool:search` for a tool call. */
export function modelKey(e: Pick<LedgerEntry, 'kind' | 'name'>): string {
  return e.kind === 'model' ? e.name : `tool:${e.name}`;
}

export function prepareAudit(input: AuditInput, now: number): AuditEntry {
  checkActor(input);
  if (typeof input.action !== 'string' || typeof input.target !== 'string') {
    throw new StoreInputError('invalid', 'an audit entry needs an action and a target');
  }
  return { id: newId('aud'), at: now, ...input };
}

export function checkRange(since: unknown, until: unknown): void {
  if (
    typeof since !== 'number' ||
    typeof until !== 'number' ||
    !Number.isFinite(since) ||
    !Number.isFinite(until)
  ) {
    throw new StoreInputError('invalid', 'a spend query needs since and until as ms timestamps');
  }
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 10_000;

export function limitOf(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new StoreInputError('invalid', 'limit must be >= 1');
  return Math.min(limit, MAX_LIMIT);
}

/** A value read back from the store that cannot be what we wrote: refuse rather than guess. */
export class CorruptRecordError extends Error {
  constructor(what: string, value: unknown) {
    super(`corrupt ${what}: ${JSON.stringify(value)}`);
    this.name = 'CorruptRecordError';
  }
}

export function storedMicros(value: unknown, what: string): Micros {
  const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new CorruptRecordError(what, value);
  return n;
}

export function storedJson<T>(text: unknown, what: string): T {
  if (typeof text !== 'string') throw new CorruptRecordError(what, text);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new CorruptRecordError(what, text);
  }
}

/**
 * Runs a store operation, failing closed: input errors pass through, anything else (a dead
 * connection, a locked or closed database, a corrupt record) becomes EnforcementUnavailableError.
 */
export async function failClosed<T>(backend: string, what: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StoreInputError || err instanceof EnforcementUnavailableError) throw err;
    const detail = err instanceof Error ? err.message : String(err);
    throw new EnforcementUnavailableError(`${backend} money store could not ${what}: ${detail}`, {
      cause: err,
    });
  }
}

/** Whether an entry falls under a scope (the identity's scopes include it). */
export function entryUnder(identity: Identity, scope: Scope): boolean {
  return scopesOf(identity).includes(scope);
}
