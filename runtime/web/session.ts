import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Operator, sha256 } from '../auth/operators.ts';
import type { Runtime } from '../runtime.ts';

/**
 * Inbox sessions: a signed cookie, no server-side session table, so any replica can read it.
 * The cookie holds the SHA-256 of the operator token that logged in and an expiry, signed with
 * the deployment's session secret; every request looks the operator up again by that hash, so
 * removing a token from the config ends its sessions. The CSRF token is derived from the cookie
 * (HMAC with a different label): forms carry it, and a state change without it is refused.
 */

export const SESSION_COOKIE = 'cp_session';
export const SESSION_TTL_MS = 12 * 3_600_000;

export interface WebSession {
  operator: Operator;
  tokenHash: string;
  expiresAt: number;
  /** The signed cookie value (the CSRF token is derived from it). */
  raw: string;
}

/**
 * The signing secret: `CHOKEPOINT_SESSION_SECRET`, else one generated once and shared by every
 * replica through the store's backend (a file in the data folder, or a Redis key).
 */
export async function sessionSecret(rt: Runtime): Promise<Buffer> {
  const fromEnv = process.env.CHOKEPOINT_SESSION_SECRET;
  if (fromEnv) return Buffer.from(fromEnv, 'utf8');
  const fresh = randomBytes(32).toString('base64url');
  if (rt.config.store.backend === 'redis') {
    const { Redis } = await import('ioredis');
    const redis = new Redis(rt.config.store.redisUrl!, { maxRetriesPerRequest: 2, lazyConnect: true });
    try {
      const key = `${rt.config.store.prefix}web:session-secret`;
      await redis.set(key, fresh, 'NX');
      return Buffer.from((await redis.get(key)) ?? fresh, 'utf8');
    } finally {
      redis.disconnect();
    }
  }
  const file = join(rt.config.dataDir, 'session-secret');
  if (!existsSync(file)) {
    mkdirSync(rt.config.dataDir, { recursive: true });
    writeFileSync(file, `${fresh}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
  }
  return Buffer.from(readFileSync(file, 'utf8').trim(), 'utf8');
}

export class Sessions {
  constructor(
    private readonly rt: Runtime,
    private readonly secret: Buffer,
  ) {}

  private mac(label: string, value: string): string {
    return createHmac('sha256', this.secret).update(`${label}:${value}`).digest('base64url');
  }

  /** A cookie value for a token that authenticated, or undefined. */
  login(token: string): { cookie: string; operator: Operator } | undefined {
    const operator = this.rt.operatorSetup.registry.authenticate(token.trim());
    if (!operator) return undefined;
    const payload = Buffer.from(
      JSON.stringify({ h: sha256(token.trim()), e: this.rt.now() + SESSION_TTL_MS }),
    ).toString('base64url');
    return { cookie: `${payload}.${this.mac('session', payload)}`, operator };
  }

  /** The session a cookie value proves, or undefined (bad signature, expired, token removed). */
  read(raw: string | undefined): WebSession | undefined {
    if (!raw) return undefined;
    const dot = raw.lastIndexOf('.');
    if (dot <= 0) return undefined;
    const payload = raw.slice(0, dot);
    if (!equal(raw.slice(dot + 1), this.mac('session', payload))) return undefined;
    let data: { h?: unknown; e?: unknown };
    try {
      data = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    if (typeof data.h !== 'string' || typeof data.e !== 'number' || data.e < this.rt.now()) return undefined;
    const operator = this.rt.operatorSetup.registry.byHash(data.h);
    if (!operator) return undefined;
    return { operator, tokenHash: data.h, expiresAt: data.e, raw };
  }

  csrf(session: WebSession): string {
    return this.mac('csrf', session.raw);
  }

  checkCsrf(session: WebSession, token: unknown): boolean {
    return typeof token === 'string' && equal(token, this.csrf(session));
  }
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
