import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type Operator, sha256 } from '../../auth/operators.ts';
import type { Services } from '../../compose.ts';
import type { WebSessionStore } from './session-store.ts';

/**
 * Inbox sessions, held server-side in the store's backend (see session-store.ts): the cookie is a
 * random value, and the session it names ends at logout (the record is deleted, on every replica
 * at once), after `auth.sessionIdle` without a request (default 30 minutes) and `auth.sessionLifetime`
 * after its login however busy (default 12 hours). Every request also looks the operator up again
 * by the token's hash, so removing a token from the config ends its sessions. The CSRF token is
 * derived from the cookie (HMAC with the deployment's session secret): forms carry it, and a
 * state change without it is refused.
 */

export const SESSION_COOKIE = 'cp_session';
/** Defaults of `auth.sessionLifetime` and `auth.sessionIdle`. */
export const SESSION_TTL_MS = 12 * 3_600_000;
export const SESSION_IDLE_MS = 30 * 60_000;
/** Activity is written at most this often per session (the idle timeout is minutes). */
const TOUCH_MS = 5_000;

export interface WebSession {
  operator: Operator;
  tokenHash: string;
  expiresAt: number;
  /** The cookie value (the CSRF token is derived from it). */
  raw: string;
}

/**
 * The signing secret: `CHOKEPOINT_SESSION_SECRET`, else one generated once and shared by every
 * replica through the store's backend (a file in the data folder, or a Redis key).
 */
export async function sessionSecret(rt: Services): Promise<Buffer> {
  const fromEnv = process.env.CHOKEPOINT_SESSION_SECRET;
  if (fromEnv) return Buffer.from(fromEnv, 'utf8');
  return Buffer.from(await rt.backend.webSessions.secret(randomBytes(32).toString('base64url')), 'utf8');
}

export class Sessions {
  readonly idleMs: number;
  readonly lifetimeMs: number;
  constructor(
    private readonly rt: Services,
    private readonly secret: Buffer,
    readonly store: WebSessionStore,
  ) {
    this.idleMs = rt.config.sessions?.idleMs ?? SESSION_IDLE_MS;
    this.lifetimeMs = rt.config.sessions?.lifetimeMs ?? SESSION_TTL_MS;
  }

  private mac(label: string, value: string): string {
    return createHmac('sha256', this.secret).update(`${label}:${value}`).digest('base64url');
  }

  /** The operator a token names, or undefined (nothing is stored). */
  authenticate(token: string): Operator | undefined {
    return this.rt.operatorSetup.registry.authenticate(token.trim());
  }

  /** A new session for an operator whose token authenticated: the cookie value to set. */
  async create(token: string): Promise<string> {
    const raw = randomBytes(32).toString('base64url');
    const now = this.rt.now();
    await this.store.put(
      {
        id: sha256(raw),
        tokenHash: sha256(token.trim()),
        createdAt: now,
        lastAt: now,
        expiresAt: now + this.lifetimeMs,
      },
      this.idleMs,
    );
    return raw;
  }

  /** The session a cookie value names, or undefined (unknown, logged out, idle, expired, token removed). */
  async read(raw: string | undefined): Promise<WebSession | undefined> {
    if (!raw || raw.length > 200) return undefined;
    const id = sha256(raw);
    const rec = await this.store.get(id);
    if (!rec) return undefined;
    const now = this.rt.now();
    if (now >= rec.expiresAt || now - rec.lastAt >= this.idleMs) {
      await this.store.delete(id);
      return undefined;
    }
    const operator = this.rt.operatorSetup.registry.byHash(rec.tokenHash);
    if (!operator) return undefined;
    if (now - rec.lastAt >= TOUCH_MS)
      await this.store.touch(id, now, Math.min(this.idleMs, rec.expiresAt - now));
    return { operator, tokenHash: rec.tokenHash, expiresAt: rec.expiresAt, raw };
  }

  /** Ends the session a cookie value names (logout): the cookie no longer works anywhere. */
  async revoke(raw: string | undefined): Promise<void> {
    if (raw) await this.store.delete(sha256(raw));
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
