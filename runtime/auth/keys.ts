import * as crypto from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { isScopeKey } from '../identity.ts';
import { newId } from '../ids.ts';

/**
 * API keys for the gateway. A key is `cp_` + 32 random bytes (256 bits, base64url); only its
 * SHA-256 is stored, and the plaintext exists once, in the answer to `create`. A key maps to
 * team/env/seat (and optionally a workflow). Lookups are by hash and the final comparison is
 * constant-time; the key never appears in logs, errors or the ledger — only its id.
 */
export interface ApiKey {
  id: string;
  team: string;
  env: string;
  seat: string;
  workflow?: string;
  label?: string;
  /** `refuse`: a drifting frozen prefix is a 409 for this key instead of a reported event. */
  driftPolicy?: 'report' | 'refuse';
  /** When a call's worst case does not fit its budget: lower max_tokens (`fit`) or refuse. */
  maxTokens?: 'fit' | 'refuse';
  /** A session of this key may run this long (ms) before a human must approve more. */
  sessionTimeBox?: number;
  /** Without `x-chokepoint-session`, a pause longer than this (ms) starts a new session (default 30m). */
  sessionGap?: number;
  createdAt: number;
  revokedAt?: number;
}

/** A key as stored: its record and the SHA-256 of its plaintext. */
export interface StoredKey extends ApiKey {
  hash: string;
}

export interface KeySpec {
  team: string;
  env: string;
  seat: string;
  workflow?: string;
  label?: string;
  driftPolicy?: 'report' | 'refuse';
  maxTokens?: 'fit' | 'refuse';
  sessionTimeBox?: number;
  sessionGap?: number;
}

export class KeyInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'KeyInputError';
  }
}

/** One-shot hashing (node >= 20.12) where there is one: no Hash object per call. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

export function hashKey(key: string): string {
  return oneShot ? oneShot('sha256', key, 'hex') : createHash('sha256').update(key).digest('hex');
}

function checkSpec(spec: KeySpec): void {
  for (const f of ['team', 'env', 'seat'] as const) {
    if (typeof spec[f] !== 'string' || !isScopeKey(spec[f])) {
      throw new KeyInputError(
        f,
        `required: letters, digits, '.', '_', '@' or '-' (at most 128), got ${JSON.stringify(spec[f])}`,
      );
    }
  }
  if (spec.workflow !== undefined && !isScopeKey(spec.workflow)) {
    throw new KeyInputError(
      'workflow',
      `letters, digits, '.', '_', '@' or '-', got ${JSON.stringify(spec.workflow)}`,
    );
  }
  if (spec.driftPolicy !== undefined && spec.driftPolicy !== 'report' && spec.driftPolicy !== 'refuse') {
    throw new KeyInputError('driftPolicy', 'expected "report" or "refuse"');
  }
  if (spec.maxTokens !== undefined && spec.maxTokens !== 'fit' && spec.maxTokens !== 'refuse') {
    throw new KeyInputError('maxTokens', 'expected "fit" or "refuse"');
  }
  for (const f of ['sessionTimeBox', 'sessionGap'] as const) {
    const v = spec[f];
    if (v !== undefined && (!Number.isInteger(v) || v <= 0)) {
      throw new KeyInputError(f, `expected a duration like "30m", got ${JSON.stringify(v)}`);
    }
  }
}

/** Where key records live: the same backend as the money store (runtime/backends). */
export interface KeysStore {
  put(k: StoredKey): Promise<void>;
  byHash(hash: string): Promise<StoredKey | undefined>;
  byId(id: string): Promise<StoredKey | undefined>;
  list(): Promise<StoredKey[]>;
  /** Tells every other process sharing the backend that key `id` was revoked (none embedded). */
  announceRevoked(id: string): Promise<void>;
  /** Calls `fn` with the id of each key another process revoked; resolves once listening. */
  onRevoked(fn: (id: string) => void): Promise<void>;
  close(): Promise<void>;
}

const CACHE_MS = 10_000;

/**
 * The key ring: create, authenticate, list, revoke. Authentication is cached in memory for a few
 * seconds (the hot path); a revocation drops the entry here at once, and the store announces it
 * to every other process sharing the backend (on Redis, the `keys:revoked` channel), so a revoked
 * key is refused on the next request.
 */
export class KeyRing {
  /** By hash: the record and its public part (frozen: handed to every call). */
  private readonly cache = new Map<string, { key: StoredKey; pub: ApiKey; until: number }>();

  private constructor(private readonly backend: KeysStore) {}

  /** The ring over `store`, listening for revocations made by other processes. */
  static async open(store: KeysStore): Promise<KeyRing> {
    const ring = new KeyRing(store);
    await store.onRevoked((id) => ring.forget(id));
    return ring;
  }

  async create(spec: KeySpec): Promise<{ key: string; record: ApiKey }> {
    checkSpec(spec);
    const key = `cp_${randomBytes(32).toString('base64url')}`;
    const stored: StoredKey = {
      id: newId('key'),
      hash: hashKey(key),
      team: spec.team,
      env: spec.env,
      seat: spec.seat,
      ...(spec.workflow ? { workflow: spec.workflow } : {}),
      ...(spec.label ? { label: spec.label } : {}),
      ...(spec.driftPolicy ? { driftPolicy: spec.driftPolicy } : {}),
      ...(spec.maxTokens ? { maxTokens: spec.maxTokens } : {}),
      ...(spec.sessionTimeBox ? { sessionTimeBox: spec.sessionTimeBox } : {}),
      ...(spec.sessionGap ? { sessionGap: spec.sessionGap } : {}),
      createdAt: Date.now(),
    };
    await this.backend.put(stored);
    return { key, record: publicKey(stored) };
  }

  /** The key's record if it is known and not revoked; undefined otherwise. */
  async authenticate(key: string | undefined): Promise<ApiKey | undefined> {
    return this.lookup(key);
  }

  /**
   * As authenticate, without a promise when the cache answers (the hot path: every call asks, and
   * a promise awaited through two async functions costs more than the lookup itself); the store
   * is asked only for a key not seen in the last few seconds.
   */
  lookup(key: string | undefined): ApiKey | undefined | Promise<ApiKey | undefined> {
    if (!key?.startsWith('cp_')) return undefined;
    const hash = hashKey(key);
    const now = Date.now();
    const hit = this.cache.get(hash);
    if (!hit || hit.until <= now) return this.load(hash, now);
    return hit.key.revokedAt ? undefined : hit.pub;
  }

  /** A key's record from the store, cached (found by its hash: nothing to compare afterwards). */
  private async load(hash: string, now: number): Promise<ApiKey | undefined> {
    const stored = await this.backend.byHash(hash);
    if (!stored) return undefined;
    const hit = { key: stored, pub: Object.freeze(publicKey(stored)), until: now + CACHE_MS };
    this.cache.set(hash, hit);
    return stored.revokedAt ? undefined : hit.pub;
  }

  async list(): Promise<ApiKey[]> {
    return (await this.backend.list()).map(publicKey);
  }

  async get(id: string): Promise<ApiKey | undefined> {
    const k = await this.backend.byId(id);
    return k && publicKey(k);
  }

  async revoke(id: string): Promise<ApiKey | undefined> {
    const k = await this.backend.byId(id);
    if (!k) return undefined;
    if (!k.revokedAt) {
      k.revokedAt = Date.now();
      await this.backend.put(k);
    }
    this.forget(id);
    await this.backend.announceRevoked(id);
    return publicKey(k);
  }

  private forget(id: string): void {
    for (const [hash, entry] of this.cache) if (entry.key.id === id) this.cache.delete(hash);
  }

  close(): Promise<void> {
    return this.backend.close();
  }
}

function publicKey(k: StoredKey): ApiKey {
  const { hash: _, ...rest } = k;
  return rest;
}
