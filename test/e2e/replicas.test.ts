import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Anthropic from '@anthropic-ai/sdk';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL } from '../helpers/harness.ts';
import { type Served, serveProcess } from '../helpers/serve.ts';

const run = promisify(execFile);
const TOKEN = 'cpo_e2e-replicas-token-0123456789';

async function startEmulator(): Promise<{ url: string; stop: () => void }> {
  const proc = spawn('node', ['bin/chokepoint.js', 'emulator', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`emulator did not start: ${out}`)), 20_000);
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
  });
  return { url, stop: () => proc.kill('SIGTERM') };
}

describe('two gateway processes sharing one Redis', () => {
  const prefix = `{cpe2e${process.pid}}`;
  let emulator: Awaited<ReturnType<typeof startEmulator>>;
  let a: Served;
  let b: Served;
  const api = async (s: Served, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${s.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  beforeAll(async () => {
    emulator = await startEmulator();
    const dir = mkdtempSync(join(tmpdir(), 'cp-replicas-'));
    const config = join(dir, 'chokepoint.config.yaml');
    writeFileSync(
      config,
      `store: { backend: redis, redisUrl: "${REDIS_URL}", prefix: "${prefix}" }\nprovider: { kind: emulator, baseUrl: "${emulator.url}", countTokensNearCeiling: false }\n`,
    );
    const env = { CHOKEPOINT_ADMIN_TOKEN: TOKEN, CHOKEPOINT_CONFIG: config };
    [a, b] = await Promise.all([serveProcess(env), serveProcess(env)]);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    emulator?.stop();
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('honours a kill switch flipped on one replica on the very next request to the other', async () => {
    const created = await api(a, 'POST', '/api/keys', { team: 'replicated', env: 'prod', seat: 'r1' });
    const onB = new Anthropic({ baseURL: b.url, apiKey: created.body.key, maxRetries: 0 });
    const ask = () =>
      onB.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'x' }],
      });
    await ask();
    expect(
      (await api(a, 'POST', '/api/kill-switches', { scope: 'team:replicated', reason: 'drill' })).status,
    ).toBe(201);
    const err = await ask().catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(err.error.chokepoint.code).toBe('killed');
    await api(b, 'POST', '/api/kill-switches/team:replicated/lift', { reason: 'done' });
    await expect(ask()).resolves.toBeTruthy();
  });

  it('refuses a key revoked on one replica on the next request to the other', async () => {
    const created = await api(a, 'POST', '/api/keys', { team: 'replicated', env: 'prod', seat: 'r2' });
    const onB = new Anthropic({ baseURL: b.url, apiKey: created.body.key, maxRetries: 0 });
    const ask = () =>
      onB.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'x' }],
      });
    await ask();
    await api(a, 'POST', `/api/keys/${created.body.record.id}/revoke`, { reason: 'leaked' });
    await new Promise((r) => setTimeout(r, 50));
    expect(await ask().catch((e) => e)).toBeInstanceOf(Anthropic.AuthenticationError);
  });

  it('never passes a seat ceiling under 500 concurrent SDK calls from 4 processes over 2 replicas', async () => {
    const created = await api(a, 'POST', '/api/keys', { team: 'load', env: 'prod', seat: 'burst' });
    // Each call really costs ~520 µ$ (20 input + 100 output tokens of Haiku); ~100 fit in $0.052.
    expect(
      (await api(a, 'POST', '/api/budgets/seat:burst/ceiling', { amount: '0.052', reason: 'load test' }))
        .status,
    ).toBe(200);
    await fetch(`${emulator.url}/_emulator/billing`, {
      method: 'DELETE',
      headers: { 'x-api-key': 'sk-emulator-local' },
    });
    const bursts = await Promise.all(
      [a, b, a, b].map((s) =>
        run('node', ['bin/run-ts.js', 'test/e2e/fixtures/burst.ts', s.url, created.body.key, '125']),
      ),
    );
    const results = bursts.map((r) => JSON.parse(r.stdout));
    const ok = results.reduce((n, r) => n + r.ok, 0);
    const refused = results.reduce((n, r) => n + (r.refused.budget_exhausted ?? 0), 0);
    expect(results.flatMap((r) => r.errors)).toEqual([]);
    expect(ok + refused).toBe(500);
    // At least what fits when every call is in flight at once (each reserves ~1,100 µ$ of worst
    // case: 200 output tokens and its input); more when settlements free room early.
    expect(ok).toBeGreaterThanOrEqual(Math.floor(52_000 / 1_100));
    expect(ok).toBeLessThanOrEqual(100);
    for (const r of results) for (const scope of Object.keys(r.scopes)) expect(scope).toBe('seat:burst');

    const budget = (await api(b, 'GET', '/api/budgets/seat:burst')).body.budget;
    expect(budget.spent_micros).toBeLessThanOrEqual(52_000);
    expect(budget.reserved_micros).toBe(0);
    const ledger = (await api(a, 'GET', '/api/ledger?scope=seat:burst&limit=1000')).body.entries as Array<{
      cost: number;
      outcome: string;
    }>;
    expect(ledger).toHaveLength(500);
    expect(ledger.filter((e) => e.outcome === 'ok')).toHaveLength(ok);
    const billing = (await (
      await fetch(`${emulator.url}/_emulator/billing`, { headers: { 'x-api-key': 'sk-emulator-local' } })
    ).json()) as { total_micros: number; calls: number };
    expect(billing.calls).toBe(ok);
    expect(ledger.reduce((n, e) => n + e.cost, 0)).toBe(billing.total_micros);
    expect(budget.spent_micros).toBe(billing.total_micros);
  }, 120_000);
});
