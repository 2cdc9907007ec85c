import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, type Listening } from '../../../adapters/emulator/index.ts';
import { compose, type Services } from '../../../runtime/compose.ts';
import { resolveConfig } from '../../../runtime/config/load.ts';
import { createApp } from '../../../runtime/faces/http/app.ts';
import { listen } from '../../../runtime/faces/http/listen.ts';
import { createLogger } from '../../../runtime/log.ts';
import { ADMIN_TOKEN, type Backend, REDIS_URL } from '../../helpers/harness.ts';

/**
 * Message Batch reservations are durable: the batch → reservation record is in the backend, so a
 * server restarted between creating a batch and reading its results (same data folder, same Redis
 * prefix) settles each request exactly once from its real usage, and the batch's reservation is
 * released. The provider (an emulator in this process) outlives both servers, as a real one would.
 */
interface Server {
  rt: Services;
  url: string;
  stop(): Promise<void>;
}

async function server(backend: Backend, dataDir: string, prefix: string, provider: string): Promise<Server> {
  const config = resolveConfig(
    {
      dataDir,
      server: { port: 0 },
      provider: { baseUrl: provider },
      ...(backend === 'redis' ? { store: { backend: 'redis', redisUrl: REDIS_URL, prefix } } : {}),
    },
    { env: { CHOKEPOINT_ADMIN_TOKEN: ADMIN_TOKEN } },
  );
  const log = createLogger({ level: 'error', pretty: false, write: () => {} });
  const rt = await compose(config, log, { workflows: false });
  const l = await listen(createApp(rt), { port: 0, host: '127.0.0.1' });
  return {
    rt,
    url: l.url,
    stop: async () => {
      await l.close(1000);
      await rt.close();
    },
  };
}

async function api<T>(s: Server, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${s.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await res.json()) as T;
}

describe.each(['embedded', 'redis'] as Backend[])('message batches across a restart (%s)', (backend) => {
  const emulator = createEmulator();
  let upstream: Listening;
  const dataDir = mkdtempSync(join(tmpdir(), 'cp-batches-'));
  const prefix = `{cpt-batches-${process.pid}-${Date.now() % 100000}}`;
  let running: Server | undefined;

  beforeAll(async () => {
    upstream = await emulator.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await running?.stop();
    await upstream.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (backend === 'redis') {
      const { Redis } = await import('ioredis');
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  });

  it('a restarted server reading the results settles each request once from its real usage', async () => {
    running = await server(backend, dataDir, prefix, upstream.url);
    const seat = `batch-${backend}`;
    const { key } = await api<{ key: string }>(running, 'POST', '/api/keys', {
      team: 'batches',
      env: 'prod',
      seat,
    });
    const before = new Anthropic({ baseURL: running.url, apiKey: key, maxRetries: 0 });
    const batch = await before.messages.batches.create({
      requests: ['a', 'b', 'c'].map((id, i) => ({
        custom_id: id,
        params: {
          model: 'claude-haiku-4-5',
          max_tokens: 300,
          messages: [
            { role: 'user' as const, content: `request ${id} [[emulator:output_tokens=${20 + i * 30}]]` },
          ],
        },
      })),
    });
    const held = await api<{ budget: { reserved_micros: number } }>(
      running,
      'GET',
      `/api/budgets/seat:${seat}`,
    );
    expect(held.budget.reserved_micros).toBeGreaterThan(0);

    // The restart: the first server is gone before anyone looked at the batch again.
    await running.stop();
    running = await server(backend, dataDir, prefix, upstream.url);
    expect((await running.rt.backend.batches.list()).map((b) => b.id)).toEqual([batch.id]);

    const after = new Anthropic({ baseURL: running.url, apiKey: key, maxRetries: 0 });
    let got = await after.messages.batches.retrieve(batch.id);
    for (let i = 0; i < 100 && got.processing_status !== 'ended'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      got = await after.messages.batches.retrieve(batch.id);
    }
    expect(got.processing_status).toBe('ended');
    const results = [];
    for await (const r of await after.messages.batches.results(batch.id)) results.push(r);
    expect(results.map((r) => r.result.type)).toEqual(['succeeded', 'succeeded', 'succeeded']);

    const ledger = await api<{ entries: { requestId: string; outcome: string; cost: number }[] }>(
      running,
      'GET',
      `/api/ledger?scope=seat:${seat}&limit=100`,
    );
    const bill = emulator.billing.list().filter((b) => b.batchId === batch.id);
    expect(bill).toHaveLength(3);
    for (const b of bill) {
      const mine = ledger.entries.filter((e) => e.requestId === `${batch.id}:${b.customId}`);
      expect(mine, `ledger entries of ${b.customId}`).toHaveLength(1);
      expect(mine[0]).toMatchObject({ outcome: 'ok', cost: b.costMicros });
    }
    expect(ledger.entries.filter((e) => e.outcome === 'expired')).toEqual([]);
    const budget = await api<{ budget: { reserved_micros: number; spent_micros: number } }>(
      running,
      'GET',
      `/api/budgets/seat:${seat}`,
    );
    const total = bill.reduce((n, b) => n + b.costMicros, 0);
    expect(budget.budget).toMatchObject({ reserved_micros: 0, spent_micros: total });
    expect(await running.rt.backend.batches.list()).toEqual([]);

    // Reading the results again (here, or on another replica) charges nothing more.
    for await (const _ of await after.messages.batches.results(batch.id));
    const again = await api<{ budget: { spent_micros: number } }>(
      running,
      'GET',
      `/api/budgets/seat:${seat}`,
    );
    expect(again.budget.spent_micros).toBe(total);
  });

  it('two replicas reading the results at once settle each request once', async () => {
    running ??= await server(backend, dataDir, prefix, upstream.url);
    const other = await server(backend, dataDir, prefix, upstream.url);
    try {
      const seat = `batch-pair-${backend}`;
      const { key } = await api<{ key: string }>(running, 'POST', '/api/keys', {
        team: 'batches',
        env: 'prod',
        seat,
      });
      const a = new Anthropic({ baseURL: running.url, apiKey: key, maxRetries: 0 });
      const b = new Anthropic({ baseURL: other.url, apiKey: key, maxRetries: 0 });
      const batch = await a.messages.batches.create({
        requests: ['z', 'y', 'x', 'w'].map((id, i) => ({
          custom_id: id,
          params: {
            model: 'claude-haiku-4-5',
            max_tokens: 300,
            messages: [
              { role: 'user' as const, content: `pair ${id} [[emulator:output_tokens=${15 + i * 11}]]` },
            ],
          },
        })),
      });
      const read = async (c: Anthropic) => {
        let got = await c.messages.batches.retrieve(batch.id);
        for (let i = 0; i < 100 && got.processing_status !== 'ended'; i++) {
          await new Promise((r) => setTimeout(r, 50));
          got = await c.messages.batches.retrieve(batch.id);
        }
        const out = [];
        for await (const r of await c.messages.batches.results(batch.id)) out.push(r.custom_id);
        return out;
      };
      const [ra, rb] = await Promise.all([read(a), read(b)]);
      expect(ra.sort()).toEqual(['w', 'x', 'y', 'z']);
      expect(rb.sort()).toEqual(['w', 'x', 'y', 'z']);
      const bill = emulator.billing.list().filter((e) => e.batchId === batch.id);
      const total = bill.reduce((n, e) => n + e.costMicros, 0);
      const ledger = await api<{ entries: { requestId: string; outcome: string; cost: number }[] }>(
        other,
        'GET',
        `/api/ledger?scope=seat:${seat}&limit=100`,
      );
      expect(ledger.entries.map((e) => e.requestId).sort()).toEqual(
        ['w', 'x', 'y', 'z'].map((c) => `${batch.id}:${c}`),
      );
      const budget = await api<{ budget: { reserved_micros: number; spent_micros: number } }>(
        other,
        'GET',
        `/api/budgets/seat:${seat}`,
      );
      expect(budget.budget).toMatchObject({ reserved_micros: 0, spent_micros: total });
    } finally {
      await other.stop();
    }
  });
});
