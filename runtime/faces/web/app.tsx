import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Hono as HonoApp } from 'hono';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie } from 'hono/cookie';
import type { Operator, Role } from '../../auth/operators.ts';
import { roleAtLeast } from '../../auth/operators.ts';
import type { Services } from '../../compose.ts';
import { MAX_API_BODY_BYTES, PAGE_CSP, SECURITY_HEADERS } from '../api/common.ts';
import { type ApiAnswer, inProcessApi } from '../api/in-process.ts';
import { APP_CSS, APP_JS } from './assets.ts';
import type { PageContext } from './layout.tsx';
import { loginRoutes, sameOrigin } from './login.tsx';
import { budgetPages } from './pages/budgets.tsx';
import { approvalPages } from './pages/inbox.tsx';
import { keyPages } from './pages/keys.tsx';
import { killSwitchPages } from './pages/kill-switches.tsx';
import { runPages } from './pages/run.tsx';
import { runListPages } from './pages/runs.tsx';
import { spendPages } from './pages/spend.tsx';
import { CHART_INIT as SPEND_JS } from './pages/spend-charts.tsx';
import { SESSION_COOKIE, Sessions, sessionSecret, type WebSession } from './session.ts';
import { openWebSessionStore } from './session-store.ts';

/** Forms are small: a body over the API's limit is refused (413) before it is read in full. */
const webBodyLimit = bodyLimit({
  maxSize: MAX_API_BODY_BYTES,
  onError: (c) => c.text(`request too large: the body is over the ${MAX_API_BODY_BYTES}-byte limit`, 413),
});

/**
 * The web inbox and control room at `/`: server-rendered pages (hono/jsx) that work without
 * JavaScript (forms POST and redirect back), with a little script for live updates (server-sent
 * events) and confirmations. Every page needs a session (log in with an operator token); every
 * state change needs the session's CSRF token and goes through the operator API in-process, so
 * the checks, the roles and the audit entries are the API's own.
 */

export type WebEnv = { Variables: { session: WebSession; page: PageContext } };

export class Web {
  constructor(
    readonly rt: Services,
    private readonly api: HonoApp,
  ) {}

  /** Calls the operator API as the session's operator. */
  async call<T = Record<string, unknown>>(
    operator: Operator,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<ApiAnswer<T>> {
    return inProcessApi(this.api, operator)<T>(method, path, body);
  }

  /** GET through the API; a non-2xx answer throws (rendered as an error page). */
  async get<T>(c: Context<WebEnv>, path: string): Promise<T> {
    const r = await this.call<T>(c.get('session').operator, 'GET', path);
    if (r.status >= 300) throw new WebError(r.status, messageOf(r.body));
    return r.body;
  }

  /**
   * Runs a state change through the API and redirects back (`back`, or the Referer) with the
   * outcome as a flash message: POST → redirect → GET, so a reload never repeats it.
   */
  async act(c: Context<WebEnv>, method: string, path: string, body: unknown, ok: string, back?: string) {
    const r = await this.call(c.get('session').operator, method, path, body);
    const from = back ?? sameOriginPath(c.req.header('referer')) ?? '/';
    // Drop the previous action's flash, then pick the separator for what is left.
    const target = from.replace(/([?&])(ok|error)=[^&]*&?/g, '$1').replace(/[?&]$/, '');
    const sep = target.includes('?') ? '&' : '?';
    const flash =
      r.status < 300 ? `ok=${encodeURIComponent(ok)}` : `error=${encodeURIComponent(messageOf(r.body))}`;
    return c.redirect(`${target}${sep}${flash}`, 303);
  }

  require(c: Context<WebEnv>, role: Role): void {
    const op = c.get('session').operator;
    if (!roleAtLeast(op.role, role)) {
      throw new WebError(403, `forbidden: this needs the ${role} role; '${op.name}' is ${op.role}`);
    }
  }
}

export class WebError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function messageOf(body: unknown): string {
  const b = body as { error?: { message?: string } };
  return b?.error?.message ?? 'the request failed';
}

function sameOriginPath(referer: string | undefined): string | undefined {
  if (!referer) return undefined;
  try {
    const u = new URL(referer);
    return `${u.pathname}${u.search}`;
  } catch {
    return undefined;
  }
}

const require = createRequire(import.meta.url);
let chartJs: string | undefined;

export function webApp(rt: Services, api: HonoApp): Hono {
  // The signing secret and the session table may live in Redis: opened once, on the first
  // request that needs them (a failure is retried on the next one).
  let sessionsP: Promise<Sessions> | undefined;
  const sessionsOf = () => {
    // The store is the backend's: it closes with the backend.
    sessionsP ??= Promise.all([sessionSecret(rt), openWebSessionStore(rt)]).then(
      ([secret, store]) => new Sessions(rt, secret, store),
    );
    sessionsP.catch(() => {
      sessionsP = undefined;
    });
    return sessionsP;
  };
  const web = new Web(rt, api);
  const app = new Hono<WebEnv>();

  // Every inbox answer: security headers, and no body over the limit is read (login included).
  app.use('*', async (c, next) => {
    await next();
    try {
      for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(k, v);
      if (!c.res.headers.has('content-security-policy'))
        c.res.headers.set('content-security-policy', PAGE_CSP);
    } catch {
      // An immutable response (none today): answered as it is.
    }
  });
  app.use('*', async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    return webBodyLimit(c, next);
  });

  assetRoutes(app as unknown as Hono);

  loginRoutes(app as unknown as Hono, rt, sessionsOf);

  // Everything below needs a session; every state change also needs its CSRF token.
  app.use('*', async (c, next) => {
    const sessions = await sessionsOf();
    const session = await sessions.read(getCookie(c, SESSION_COOKIE));
    if (!session) {
      if (c.req.method === 'GET' && !c.req.path.startsWith('/events')) {
        return c.redirect(
          `/login?next=${encodeURIComponent(c.req.path + (new URL(c.req.url).search || ''))}`,
          303,
        );
      }
      return c.text('unauthenticated: log in at /login', 401);
    }
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
      const token = (form as Record<string, unknown>)._csrf ?? c.req.header('x-csrf-token');
      if (!sameOrigin(c) || !sessions.checkCsrf(session, token)) {
        rt.log.warn('inbox: state change without a valid CSRF token refused', {
          operator: session.operator.name,
          path: c.req.path,
        });
        return c.text('forbidden: missing or invalid CSRF token (reload the page and try again)', 403);
      }
    }
    c.set('session', session);
    const ok = c.req.query('ok');
    const error = c.req.query('error');
    c.set('page', {
      operator: session.operator,
      csrf: sessions.csrf(session),
      emulator: rt.config.provider.kind === 'emulator',
      kills: await rt.store.listKills().catch(() => []),
      ...(error ? { flash: { kind: 'error', text: error } } : ok ? { flash: { kind: 'ok', text: ok } } : {}),
    });
    await next();
  });

  // Logout ends the session on the server: the cookie no longer works, wherever it was copied.
  app.post('/logout', async (c) => {
    await (await sessionsOf()).revoke(c.get('session').raw);
    deleteCookie(c, SESSION_COOKIE, { path: '/' });
    return c.redirect('/login', 303);
  });

  // Live updates for the pages: the API's event stream, for the session's operator.
  app.get('/events', (c) =>
    api.request('/api/events', { signal: c.req.raw.signal }, { webOperator: c.get('session').operator }),
  );

  app.route('/', approvalPages(web));
  app.route('/', runListPages(web));
  app.route('/', runPages(web));
  app.route('/', budgetPages(web));
  app.route('/', killSwitchPages(web));
  app.route('/', spendPages(web));
  app.route('/', keyPages(web));

  app.onError((err, c) => {
    const status = err instanceof WebError ? err.status : 500;
    if (!(err instanceof WebError)) rt.log.error('inbox page failed', { error: err, path: c.req.path });
    return c.html(errorPage(status, err instanceof WebError ? err.message : 'internal error'), status as 500);
  });
  return app as unknown as Hono;
}

function errorPage(status: number, message: string) {
  return (
    '<!doctype html>' +
    (
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>{`${status} · Chokepoint`}</title>
          <link rel="stylesheet" href="/assets/app.css" />
        </head>
        <body>
          <main id="main">
            <h1>{status === 403 ? 'Not allowed' : status === 404 ? 'Not found' : 'Something went wrong'}</h1>
            <p class="flash error" role="alert">
              {message}
            </p>
            <p>
              <a href="/">Back to the inbox</a>
            </p>
          </main>
        </body>
      </html>
    ).toString()
  );
}

/** The stylesheet, the scripts and the charting library (served from node_modules: no CDN). */
function assetRoutes(app: Hono): void {
  app.get('/assets/app.css', (c) =>
    c.body(APP_CSS, 200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'max-age=300' }),
  );
  app.get('/assets/app.js', (c) =>
    c.body(APP_JS, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'max-age=300' }),
  );
  app.get('/assets/spend.js', (c) =>
    c.body(SPEND_JS, 200, {
      'content-type': 'text/javascript; charset=utf-8',
      'cache-control': 'max-age=300',
    }),
  );
  // The charting library, served from node_modules (no CDN).
  app.get('/assets/chart.js', (c) => {
    // The package's exports hide dist/: find it next to the resolved entry point.
    chartJs ??= readFileSync(join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
    return c.body(chartJs, 200, {
      'content-type': 'text/javascript; charset=utf-8',
      'cache-control': 'max-age=3600',
    });
  });
}
