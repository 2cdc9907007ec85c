import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../runtime/config/load.ts';
import { listen } from '../../../runtime/faces/http/listen.ts';
import {
  type Backend,
  type Harness,
  OPERATOR_TOKEN,
  OPERATORS,
  startHarness,
  VIEWER_TOKEN,
} from '../../helpers/harness.ts';

/**
 * Issue 17 (items 6, 9, 12): malformed /api input is a 400 naming the field (never a retryable
 * 503), bodies and free text are bounded, reads never create budgets, a kill switch's reason and
 * author stay with the operators, and every API answer carries the security headers.
 */

const CONFIG = {
  ...OPERATORS,
  routing: { classes: { cheap: ['claude-haiku-4-5'], standard: ['claude-sonnet-4-6'] } },
};

interface ErrorBody {
  error: { type: string; message: string };
  chokepoint: { code: string; field?: string };
}

/**
 * A raw request whose body is sent in 64 KiB chunks: answers as soon as the server does (the
 * server may answer, and stop reading, before the body is all sent).
 */
function raw(
  url: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest(
      { host: u.hostname, port: u.port, path, method: opts.method ?? 'GET', headers: opts.headers },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString('utf8') });
          req.destroy();
        });
      },
    );
    req.on('error', (e) => {
      if (!answered) reject(e);
    });
    const body = opts.body ?? Buffer.alloc(0);
    let at = 0;
    const pump = () => {
      while (at < body.length && !answered) {
        const chunk = body.subarray(at, at + 65_536);
        at += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      if (!answered && !opts.headers?.['content-length']) req.end();
    };
    pump();
  });
}

describe.each(['embedded', 'redis'] as Backend[])('operator API hardening (%s backend)', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ backend, config: CONFIG, workflows: true });
  });
  afterAll(async () => {
    await h?.close();
  });

  const get = (path: string, token?: string) => h.api<ErrorBody>('GET', path, undefined, token);

  it('answers malformed path and query input 400 naming the field, never 503', async () => {
    for (const [path, field] of [
      ['/api/budgets/team:%E0%A4%A', 'scope'],
      ['/api/budgets/%E0%A4%A', 'scope'],
      ['/api/ledger?scope=%25', 'scope'],
      ['/api/spend?scope=%25', 'scope'],
      ['/api/ledger?scope=%E0%A4%A', 'scope'],
      ['/api/runs?cursor=!!!', 'cursor'],
      ['/api/approvals?cursor=!!!', 'cursor'],
      [`/api/ledger?since=${encodeURIComponent("' OR '1'='1")}`, 'since'],
      [`/api/audit?since=${encodeURIComponent("' OR '1'='1")}`, 'since'],
      [`/api/spend?until=${encodeURIComponent('1 OR 1')}`, 'until'],
    ] as const) {
      const r = await get(path);
      expect(r.status, path).toBe(400);
      expect(r.body.chokepoint.code, path).toBe('invalid_request');
      expect(r.body.chokepoint.field, path).toBe(field);
    }
    const since = await get(`/api/ledger?since=${encodeURIComponent("' OR '1'='1")}`);
    expect(since.body.error.message).toContain('expected an ISO date/time');
    // Real dates and epoch ms still work.
    expect((await get('/api/ledger?since=2026-01-31')).status).toBe(200);
    expect((await get('/api/ledger?since=2026-01-31T12:00:00Z')).status).toBe(200);
    expect((await get('/api/audit?since=1767225600000')).status).toBe(200);
  });

  it("a viewer's GET of a budget that does not exist creates nothing: it answers the defaults, not created", async () => {
    const before = await h.rt.store.listBudgets();
    const r = await h.api<{ budget: Record<string, unknown> }>(
      'GET',
      '/api/budgets/team:never-called',
      undefined,
      VIEWER_TOKEN,
    );
    expect(r.status).toBe(200);
    expect(r.body.budget).toMatchObject({
      id: null,
      scope: 'team:never-called',
      created: false,
      ceiling_usd: '50.00',
      spent_usd: '0.00',
    });
    expect(await h.rt.store.getBudget('team:never-called')).toBeUndefined();
    expect((await h.rt.store.listBudgets()).length).toBe(before.length);
    // An existing one is read as it is, marked created.
    await h.rt.store.ensureBudget('team:exists');
    const e = await h.api<{ budget: Record<string, unknown> }>('GET', '/api/budgets/team:exists');
    expect(e.body.budget).toMatchObject({ scope: 'team:exists', created: true });
    expect(String(e.body.budget.id)).toMatch(/^bgt_/);
    expect((await get('/api/budgets/bgt_nope')).status).toBe(404);
  });

  it('refuses bodies over 1 MiB with 413 before reading them, with or without content-length', async () => {
    const big = Buffer.alloc(2 * 1024 * 1024, 'a');
    // 64 MB announced, 2 MB sent: the answer comes on the header alone.
    const started = Date.now();
    const withLength = await raw(h.url, '/api/kill-switches', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${OPERATOR_TOKEN}`,
        'content-type': 'application/json',
        'content-length': String(64 * 1024 * 1024),
      },
      body: big,
    });
    expect(withLength.status).toBe(413);
    expect(Date.now() - started).toBeLessThan(5_000);
    const chunked = await raw(h.url, '/api/kill-switches', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${OPERATOR_TOKEN}`,
        'content-type': 'application/json',
        'transfer-encoding': 'chunked',
      },
      body: big,
    });
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.text).chokepoint.code).toBe('request_too_large');
  });

  it('bounds reason at 2,000 characters and labels at 200, naming the field', async () => {
    const long = await h.api<ErrorBody>(
      'POST',
      '/api/kill-switches',
      { scope: 'team:long-reason', reason: 'x'.repeat(2001) },
      OPERATOR_TOKEN,
    );
    expect(long.status).toBe(400);
    expect(long.body.chokepoint.field).toBe('reason');
    expect(long.body.error.message).toContain('at most 2000 characters');
    expect((await h.rt.store.listKills()).some((k) => k.scope === 'team:long-reason')).toBe(false);
    const ok = await h.api('POST', '/api/kill-switches', {
      scope: 'team:ok-reason',
      reason: 'y'.repeat(2000),
    });
    expect(ok.status).toBe(201);
    await h.api('POST', '/api/kill-switches/team:ok-reason/lift', { reason: 'done' });
    const label = await h.api<ErrorBody>('POST', '/api/keys', {
      team: 'payments',
      env: 'prod',
      seat: 'long-label',
      label: 'l'.repeat(201),
    });
    expect(label.status).toBe(400);
    expect(label.body.chokepoint.field).toBe('label');
    const ceiling = await h.api<ErrorBody>('POST', '/api/budgets/team:x/ceiling', {
      amount: '5.00',
      reason: 'r'.repeat(8 * 1024),
    });
    expect(ceiling.status).toBe(400);
    expect(ceiling.body.chokepoint.field).toBe('reason');
  });

  it('says "expected X, got Y" for a field present with the wrong type, "required" only when missing', async () => {
    const wrong = await h.api<ErrorBody>('POST', '/api/kill-switches', { scope: 42, reason: 'x' });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.message).toMatch(/^scope: expected a string .*got number 42/);
    const reason = await h.api<ErrorBody>('POST', '/api/kill-switches', { scope: 'team:t', reason: 7 });
    expect(reason.body.chokepoint.field).toBe('reason');
    expect(reason.body.error.message).toContain('expected a string, got number 7');
    const missing = await h.api<ErrorBody>('POST', '/api/kill-switches', { scope: 'team:t' });
    expect(missing.body.error.message).toContain('reason: required');
    const day = await h.api<ErrorBody>('POST', '/api/reconciliations', { day: 20260131 });
    expect(day.status).toBe(400);
    expect(day.body.error.message).toContain('got number 20260131');
  });

  it('a gateway caller refused by a kill switch sees its scope and time, not who set it or why', async () => {
    const { client } = await h.client({ team: 'killed-team' });
    const set = await h.api('POST', '/api/kill-switches', {
      scope: 'team:killed-team',
      reason: 'incident INC-42 (Alice suspects key leak)',
    });
    expect(set.status).toBe(201);
    const err = await client.messages
      .create({ model: 'claude-haiku-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] })
      .then(
        () => undefined,
        (e: { status: number; error: unknown; message: string }) => e,
      );
    expect(err?.status).toBe(403);
    const text = JSON.stringify(err?.error);
    expect(text).toContain('team:killed-team');
    expect(text).not.toContain('INC-42');
    expect(text).not.toContain('admin');
    expect(text).toMatch(/\d{4}-\d{2}-\d{2}T/);
    // Operators still see all of it.
    const kills = await h.api<{ kill_switches: { reason: string; actor: string }[] }>(
      'GET',
      '/api/kill-switches',
    );
    expect(kills.body.kill_switches.find((k) => k.reason.includes('INC-42'))?.actor).toBe('admin');
    await h.api('POST', '/api/kill-switches/team:killed-team/lift', { reason: 'over' });
  });

  it('every API answer carries the security headers, errors included', async () => {
    for (const [path, token] of [
      ['/api/budgets', undefined],
      ['/api/budgets', 'wrong-token'],
      ['/api/nope', undefined],
    ] as const) {
      const res = await fetch(`${h.url}${path}`, {
        headers:
          token === undefined
            ? { authorization: `Bearer ${VIEWER_TOKEN}` }
            : { authorization: `Bearer ${token}` },
      });
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), path).toBe('same-origin');
      expect(res.headers.get('content-security-policy'), path).toContain("default-src 'none'");
    }
  });
});

describe('binding address', () => {
  it('CHOKEPOINT_HOST="" keeps the default 127.0.0.1, and listen refuses an empty host', async () => {
    const c = resolveConfig({}, { env: { CHOKEPOINT_HOST: '' } });
    expect(c.server.host).toBe('127.0.0.1');
    expect(resolveConfig({}, { env: { CHOKEPOINT_HOST: '0.0.0.0' } }).server.host).toBe('0.0.0.0');
    expect(() => resolveConfig({ server: { host: '' } }, { env: {} })).toThrow(
      /server\.host: expected a host/,
    );
    await expect(listen(() => {}, { port: 0, host: '' })).rejects.toThrow(/empty host/);
  });

  it('config errors say "expected X, got Y" for a wrong type and "required" only for a missing key', () => {
    expect(() => resolveConfig({ server: { port: 'x' } }, { env: {} })).toThrow(
      'server.port: expected a number, got a string "x"',
    );
    expect(() => resolveConfig({ auth: { operators: [{ name: 5, role: 'admin' }] } }, { env: {} })).toThrow(
      'auth.operators.0.name: expected a string, got a number 5',
    );
    expect(() => resolveConfig({ auth: { operators: [{ role: 'admin' }] } }, { env: {} })).toThrow(
      'auth.operators.0.name: required: expected a string',
    );
  });
});
