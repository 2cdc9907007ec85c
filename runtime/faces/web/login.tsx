import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, Hono } from 'hono';
import { setCookie } from 'hono/cookie';
import type { Services } from '../../compose.ts';
import { SESSION_COOKIE, type Sessions } from './session.ts';
import type { LoginFailures } from './session-store.ts';

/**
 * Logging in to the inbox with an operator token: the page, the form's POST (a session cookie on
 * success), and the brake on guessing (failed logins counted per address, the wait doubling once
 * over the limit, every failure audited).
 */

/** Failed logins from one address before further attempts wait (429). */
export const LOGIN_FAILURES_ALLOWED = 5;
/** The window those failures are counted in. */
export const LOGIN_FAILURE_WINDOW_MS = 5 * 60_000;
/** The first wait once an address is over; it doubles with every further failure, up to an hour. */
const LOGIN_DELAY_MS = 30_000;
const LOGIN_DELAY_MAX_MS = 3_600_000;

/** Until when an address must wait before its next login attempt (0: it need not). */
function lockedUntil(f: LoginFailures | undefined): number {
  if (!f || f.count < LOGIN_FAILURES_ALLOWED) return 0;
  return f.lastAt + Math.min(LOGIN_DELAY_MAX_MS, LOGIN_DELAY_MS * 2 ** (f.count - LOGIN_FAILURES_ALLOWED));
}

/** The peer's address (the socket's; X-Forwarded-For is not trusted: anyone can send it). */
function addressOf(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** `GET /login` and `POST /login` on the inbox app; `sessionsOf` opens the session store. */
export function loginRoutes(app: Hono, rt: Services, sessionsOf: () => Promise<Sessions>): void {
  app.get('/login', (c) => c.html(loginPage(c.req.query('next'), c.req.query('error'))));
  app.post('/login', (c) => login(c, rt, sessionsOf));
}

async function login(c: Context, rt: Services, sessionsOf: () => Promise<Sessions>) {
  if (!sameOrigin(c)) return c.text('forbidden: cross-site login', 403);
  const address = addressOf(c);
  let sessions: Sessions;
  let failures: LoginFailures | undefined;
  try {
    sessions = await sessionsOf();
    failures = await sessions.store.failures(address);
  } catch (err) {
    rt.log.error('inbox login: the session store did not answer', { error: err });
    return c.html(loginPage(undefined, 'Log in is unavailable right now: try again shortly.'), 503);
  }
  const now = rt.now();
  const wait = lockedUntil(failures) - now;
  if (wait > 0) {
    const seconds = Math.ceil(wait / 1000);
    rt.log.warn('inbox login refused: too many failed attempts', { address, retryAfterS: seconds });
    c.header('retry-after', String(seconds));
    return c.html(
      loginPage(undefined, `Too many failed log-ins from this address: try again in ${seconds} s.`),
      429,
    );
  }
  const form = await c.req.parseBody();
  const token = typeof form.token === 'string' ? form.token : '';
  const next = safeNext(typeof form.next === 'string' ? form.next : undefined);
  const operator = token.length <= 1024 ? sessions.authenticate(token) : undefined;
  if (!operator) {
    // Counted in a window; once over the limit every further failure doubles the wait.
    const fresh =
      !failures ||
      (failures.count < LOGIN_FAILURES_ALLOWED && now - failures.firstAt > LOGIN_FAILURE_WINDOW_MS) ||
      (failures.count >= LOGIN_FAILURES_ALLOWED && now - lockedUntil(failures) > LOGIN_FAILURE_WINDOW_MS);
    const f = fresh
      ? { count: 1, firstAt: now, lastAt: now }
      : { ...failures!, count: failures!.count + 1, lastAt: now };
    try {
      await sessions.store.setFailures(
        address,
        f,
        Math.max(lockedUntil(f), now) - now + LOGIN_FAILURE_WINDOW_MS * 2,
      );
      await rt.store.appendAudit({
        actor: 'anonymous',
        action: 'login.failed',
        target: `address:${address}`,
        after: { address, failures: f.count },
        reason: 'inbox login with an unknown token',
      });
    } catch (err) {
      rt.log.error('inbox login: could not record a failed login', { error: err, address });
    }
    return c.html(loginPage(next, 'That token is not known: check it and try again.'), 401);
  }
  let cookie: string;
  try {
    cookie = await sessions.create(token);
    if (failures) await sessions.store.clearFailures(address);
  } catch (err) {
    rt.log.error('inbox login: the session store did not answer', { error: err });
    return c.html(loginPage(next, 'Log in is unavailable right now: try again shortly.'), 503);
  }
  setCookie(c, SESSION_COOKIE, cookie, {
    httpOnly: true,
    sameSite: 'Strict',
    path: '/',
    secure: c.req.header('x-forwarded-proto') === 'https' || new URL(c.req.url).protocol === 'https:',
    maxAge: Math.floor(sessions.lifetimeMs / 1000),
  });
  rt.log.info('inbox login', { operator: operator.name, role: operator.role });
  return c.redirect(next ?? '/', 303);
}

/** A state change must come from our own pages: Origin (or Referer) must name this host. */
export function sameOrigin(c: Context): boolean {
  const origin = c.req.header('origin') ?? c.req.header('referer');
  if (!origin) return true; // SameSite=Strict cookies and the CSRF token still apply
  try {
    return new URL(origin).host === (c.req.header('host') ?? new URL(c.req.url).host);
  } catch {
    return false;
  }
}

/**
 * Where to go after login: a path on this server only. One leading `/`, then not `/` or `\\`
 * (browsers read `/\\evil.example` as `//evil.example`), and no backslash, whitespace or control
 * character anywhere (browsers drop tabs and newlines from URLs: `/\t/evil.example`).
 */
export function safeNext(next: string | undefined): string | undefined {
  if (!next || next.length > 2000) return undefined;
  if (!/^\/(?![/\\])[^\\\s]*$/.test(next)) return undefined;
  for (const ch of next) {
    const code = ch.charCodeAt(0);
    if (code < 0x20 || code === 0x7f) return undefined;
  }
  return next;
}

function loginPage(next?: string, error?: string) {
  return (
    '<!doctype html>' +
    (
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>Log in · Chokepoint</title>
          <link rel="stylesheet" href="/assets/app.css" />
        </head>
        <body class="login">
          <main id="main">
            <h1>Chokepoint</h1>
            <p>
              Log in with an operator token (`npm start` prints the admin token; it is also in
              .chokepoint/admin-token).
            </p>
            {error ? (
              <p class="flash error" role="alert">
                {error}
              </p>
            ) : null}
            <form method="post" action="/login">
              <label>
                <span>Operator token</span>
                <input type="password" name="token" required autocomplete="current-password" autofocus />
              </label>
              <input type="hidden" name="next" value={safeNext(next) ?? '/'} />
              <button type="submit">Log in</button>
            </form>
          </main>
        </body>
      </html>
    ).toString()
  );
}
