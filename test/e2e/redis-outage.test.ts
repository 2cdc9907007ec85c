import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { freePort } from '../runtime/store/redis-harness.ts';

/**
 * A Redis outage in the middle of a burst, the server left running: Redis is killed while calls
 * are in flight and started again on the same data (append-only file, fsync always). Settlements
 * that could not be written are kept and applied as soon as Redis answers; nothing is charged 0,
 * no ceiling is passed, and every call the provider billed has exactly one ledger entry.
 */

class DurableRedis {
  private child?: ChildProcess;
  readonly dir = mkdtempSync(join(tmpdir(), 'cp-redis-outage-'));
  constructor(readonly port: number) {}
  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    this.child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
      ],
      { stdio: 'ignore' },
    );
    const probe = new Redis(this.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => 50,
    });
    probe.on('error', () => {});
    for (let i = 0; i < 200; i++) {
      try {
        await probe.connect().catch(() => {});
        if ((await probe.ping()) === 'PONG') break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    probe.disconnect();
  }
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }
  async close(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

type Ledger = {
  entries: Array<{ requestId: string; outcome: string; cost: number; identity: { keyId: string } }>;
};

describe('a Redis outage in the middle of a burst', () => {
  let redis: DurableRedis | undefined;
  let h: Harness | undefined;
  afterAll(async () => {
    await h?.close().catch(() => {});
    await redis?.close();
  });

  it('loses no settlement, charges nothing 0, passes no ceiling, one ledger entry per billed call', async () => {
    redis = new DurableRedis(await freePort());
    await redis.start();
    h = await startHarness({
      backend: 'redis',
      config: { store: { backend: 'redis', redisUrl: redis.url } },
    });
    const { key, id } = await h.client({ team: 'outage', seat: 'burst' });
    await h.api('POST', '/api/budgets/seat:burst/ceiling', { amount: '0.05', reason: 'test' });
    const call = (i: number) =>
      fetch(`${h!.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'claude-haiku-4-5',
          max_tokens: 400,
          messages: [
            { role: 'user', content: `call ${i} [[emulator:latency=600]] [[emulator:output_tokens=300]]` },
          ],
        }),
      }).then(async (r) => ({ status: r.status, body: await r.text() }));
    const burst = Array.from({ length: 40 }, (_, i) => call(i));
    // Once calls are in flight at the provider, take Redis away, and bring it back on its data.
    const reserved = async () =>
      (await h!.api<{ budget: { reserved_micros: number } }>('GET', '/api/budgets/seat:burst')).body.budget
        .reserved_micros;
    let held = 0;
    for (let i = 0; i < 200 && held === 0; i++) {
      held = await reserved();
      if (held === 0) await new Promise((r) => setTimeout(r, 10));
    }
    expect(held).toBeGreaterThan(0);
    await redis.kill();
    const during = await Promise.all([call(100), call(101)]);
    expect(during.map((r) => r.status)).toEqual([503, 503]);
    await new Promise((r) => setTimeout(r, 1_500));
    await redis.start();
    const answers = await Promise.all(burst);
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThan(0);

    // Every call the provider billed is settled once Redis answers: wait for it (no restart).
    const billed = () => h!.rt.emulator!.billing.list();
    let entries: Ledger['entries'] = [];
    for (let i = 0; i < 300; i++) {
      const res = await h.api<Ledger>('GET', '/api/ledger?limit=1000');
      if (res.status !== 200) {
        await new Promise((r) => setTimeout(r, 100)); // Redis still coming back
        continue;
      }
      entries = res.body.entries.filter((e) => e.identity.keyId === id && e.outcome !== 'refused');
      if (billed().every((b) => entries.some((e) => e.requestId === b.clientRequestId))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const b of billed()) {
      const mine = entries.filter((e) => e.requestId === b.clientRequestId);
      expect(mine, `ledger entries for ${b.clientRequestId}`).toHaveLength(1);
      expect(mine[0]!.cost).toBeGreaterThanOrEqual(b.costMicros);
    }
    const budget = await h.api<{
      budget: { spent_micros: number; reserved_micros: number; ceiling_micros: number };
    }>('GET', '/api/budgets/seat:burst');
    const total = billed().reduce((a, b) => a + b.costMicros, 0);
    expect(budget.body.budget.spent_micros).toBeGreaterThanOrEqual(total);
    expect(budget.body.budget.spent_micros + budget.body.budget.reserved_micros).toBeLessThanOrEqual(
      budget.body.budget.ceiling_micros,
    );
  }, 120_000);
});
