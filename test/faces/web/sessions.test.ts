import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, type Backend, type Harness, startHarness } from '../../helpers/harness.ts';

/**
 * Issue 17, item 8 (and the inbox's part of 9): inbox sessions are held server-side (logout
 * revokes, idle timeout, absolute lifetime), failed logins are throttled and audited, `next` stays
 * on this server, and every page carries a CSP with no inline script or style, X-Frame-Options,
 * nosniff and a same-origin referrer policy.
 */

const CONFIG = {
  routing: { classes: { cheap: ['claude-haiku-4-5'], standard: ['claude-sonnet-4-6'] } },
  auth: { sessionIdle: '30m', sessionLifetime: '1h' },
};

const MIN = 60_000;

async function login(base: string, token: string, next = '/'): Promise<Response> {
  return fetch(`${base}/login`, {
    method: 'POST',
    body: new URLSearchParams({ token, next }),
    redirect: 'manual',
  });
}

function cookieOf(res: Response): string {
  const set = res.headers.getSetCookie().find((c) => c.startsWith('cp_session='));
  if (!set) throw new Error(`no session cookie (status ${res.status})`);
  return set.split(';')[0]!;
}

const page = (base: string, path: string, cookie: string) =>
  fetch(`${base}${path}`, { headers: { cookie }, redirect: 'manual' });

const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

describe.each(['embedded', 'redis'] as Backend[])('inbox sessions (%s backend)', (backend) => {
  let h: Harness;
  let offset = 0;
  beforeAll(async () => {
    h = await startHarness({ backend, config: CONFIG, workflows: true, now: () => Date.now() + offset });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('logout revokes the session on the server: the same cookie no longer works', async () => {
    const cookie = cookieOf(await login(h.url, ADMIN_TOKEN));
    // The cookie is a random handle, not a signed copy of anything.
    expect(cookie).not.toContain('.');
    const inbox = await page(h.url, '/', cookie);
    expect(inbox.status).toBe(200);
    const csrf = csrfOf(await inbox.text());
    const out = await fetch(`${h.url}/logout`, {
      method: 'POST',
      headers: { cookie },
      body: new URLSearchParams({ _csrf: csrf }),
      redirect: 'manual',
    });
    expect(out.status).toBe(303);
    const after = await page(h.url, '/', cookie);
    expect(after.status).toBe(303);
    expect(after.headers.get('location')).toMatch(/^\/login/);
    const post = await fetch(`${h.url}/kill-switches`, {
      method: 'POST',
      headers: { cookie },
      body: new URLSearchParams({ _csrf: csrf, scope: 'global', reason: 'replayed' }),
      redirect: 'manual',
    });
    expect(post.status).toBe(401);
    expect((await h.rt.store.listKills()).length).toBe(0);
  });

  it('a session unused for the idle timeout ends', async () => {
    const cookie = cookieOf(await login(h.url, ADMIN_TOKEN));
    offset += 29 * MIN;
    expect((await page(h.url, '/', cookie)).status).toBe(200);
    offset += 29 * MIN; // 58 minutes after login, 29 after the last request: still on
    expect((await page(h.url, '/', cookie)).status).toBe(200);
    offset += 31 * MIN;
    expect((await page(h.url, '/', cookie)).status).toBe(303);
  });

  it('a busy session still ends at its absolute lifetime', async () => {
    const cookie = cookieOf(await login(h.url, ADMIN_TOKEN));
    for (let i = 0; i < 5; i++) {
      offset += 11 * MIN;
      expect((await page(h.url, '/', cookie)).status, `after ${(i + 1) * 11} minutes`).toBe(200);
    }
    offset += 6 * MIN; // 61 minutes after login
    expect((await page(h.url, '/', cookie)).status).toBe(303);
  });

  it('next= only ever leads to a path on this server', async () => {
    for (const [next, where] of [
      ['/\\evil.example/', '/'],
      ['//evil.example/', '/'],
      ['/\t/evil.example/', '/'],
      ['https://evil.example/', '/'],
      ['/runs?state=running', '/runs?state=running'],
    ] as const) {
      const res = await login(h.url, ADMIN_TOKEN, next);
      expect(res.status, next).toBe(303);
      expect(res.headers.get('location'), next).toBe(where);
    }
    const form = await (await fetch(`${h.url}/login?next=${encodeURIComponent('/\\evil.example/')}`)).text();
    expect(form).toContain('name="next" value="/"');
  });

  it('every page has a CSP without inline script or style, and the other security headers', async () => {
    const cookie = cookieOf(await login(h.url, ADMIN_TOKEN));
    for (const path of [
      '/login',
      '/',
      '/runs',
      '/budgets',
      '/budgets/team:nobody',
      '/spend',
      '/kill-switches',
      '/keys',
    ]) {
      const res = await page(h.url, path, cookie);
      expect(res.status, path).toBe(200);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, path).toContain("script-src 'self'");
      expect(csp, path).toContain("style-src 'self'");
      expect(csp, path).toContain("frame-ancestors 'none'");
      expect(csp, path).not.toContain('unsafe-inline');
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), path).toBe('same-origin');
      const html = await res.text();
      // Scripts only from /assets (a JSON data block is not a script), no style attributes.
      for (const m of html.matchAll(/<script([^>]*)>/g)) {
        expect(m[1], `${path}: ${m[0]}`).toMatch(/src="\/assets\/|type="application\/json"/);
      }
      expect(html, path).not.toMatch(/\sstyle="/);
      expect(html, path).not.toMatch(/<style/);
    }
    // A budget read from the inbox creates nothing either.
    expect(await h.rt.store.getBudget('team:nobody')).toBeUndefined();
  });

  it('the login form refuses a body over 1 MiB with 413 before reading it', async () => {
    const u = new URL(h.url);
    const started = Date.now();
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: u.hostname,
          port: u.port,
          path: '/login',
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            'content-length': String(64 * 1024 * 1024),
          },
        },
        (res) => {
          resolve(res.statusCode!);
          res.resume();
          req.destroy();
        },
      );
      req.on('error', reject);
      req.write(Buffer.alloc(256 * 1024, 'a'));
    });
    expect(status).toBe(413);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('after 5 failed logins from one address further attempts wait (429, growing), and each failure is audited', async () => {
    const wrong = 'cpo_wrong-token-guess-0000000000';
    for (let i = 0; i < 5; i++) expect((await login(h.url, `${wrong}${i}`)).status).toBe(401);
    const refused = await login(h.url, ADMIN_TOKEN);
    expect(refused.status).toBe(429);
    const first = Number(refused.headers.get('retry-after'));
    expect(first).toBeGreaterThan(0);
    expect(refused.headers.getSetCookie().some((c) => c.startsWith('cp_session='))).toBe(false);
    const audit = (await h.rt.store.listAudit({ limit: 100 })).filter((e) => e.action === 'login.failed');
    expect(audit.length).toBe(5);
    for (const e of audit) {
      expect(e.actor).toBe('anonymous');
      expect(e.target).toMatch(/^address:/);
      expect(JSON.stringify(e)).toMatch(/127\.0\.0\.1/);
      expect(JSON.stringify(e)).not.toContain(wrong);
    }
    // After the wait one more failure doubles it.
    offset += (first + 1) * 1000;
    expect((await login(h.url, `${wrong}x`)).status).toBe(401);
    const again = await login(h.url, ADMIN_TOKEN);
    expect(again.status).toBe(429);
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThan(first);
    // Once it has passed, the right token logs in and the count starts again.
    offset += (Number(again.headers.get('retry-after')) + 1) * 1000;
    expect((await login(h.url, ADMIN_TOKEN)).status).toBe(303);
    expect((await login(h.url, `${wrong}y`)).status).toBe(401);
    expect((await login(h.url, ADMIN_TOKEN)).status).toBe(303);
  });
});
