import Anthropic from '@anthropic-ai/sdk';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.ts';
import {
  hasRedisServer,
  NO_REDIS_SERVER,
  type RedisCluster,
  startRedisCluster,
} from '../helpers/redis-cluster.ts';

/**
 * Two runtimes on a real 3-node Redis Cluster (`redis-cluster://` URL), taking gateway calls
 * through the Anthropic SDK: budgets, kill switches across replicas, keys, runs on the BullMQ
 * queue, and the key families spread over the cluster's nodes.
 */

if (!hasRedisServer) console.warn(`skipping the Redis Cluster end-to-end test: ${NO_REDIS_SERVER}`);

const WORKFLOWS = new URL('../approvals/fixtures/workflows', import.meta.url).pathname;
const PREFIX = '{cpcluster}';

describe.skipIf(!hasRedisServer)('a runtime on a real 3-node Redis Cluster', () => {
  let cluster: RedisCluster;
  let a: Harness;
  let b: Harness;
  beforeAll(async () => {
    cluster = await startRedisCluster({ nodes: 3 });
    const opts = { backend: 'redis' as const, redisUrl: cluster.url, prefix: PREFIX, workflows: WORKFLOWS };
    a = await startHarness(opts);
    b = await startHarness(opts);
  }, 15_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await cluster?.stop();
  });

  const ask = (client: Anthropic) =>
    client.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 10,
      messages: [{ role: 'user', content: 'x' }],
    });

  it('takes SDK calls, and refuses on the other replica the call after a kill switch', async () => {
    const { key } = await a.client({ team: 'clustered', seat: 'k1' });
    const onB = new Anthropic({ baseURL: b.url, apiKey: key, maxRetries: 0 });
    const msg = await ask(new Anthropic({ baseURL: a.url, apiKey: key, maxRetries: 0 }));
    expect(msg.content.length).toBeGreaterThan(0);
    await ask(onB);
    expect(
      (await a.api('POST', '/api/kill-switches', { scope: 'team:clustered', reason: 'drill' })).status,
    ).toBe(201);
    const err = await ask(onB).catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(err.error.chokepoint.code).toBe('killed');
    await b.api('POST', '/api/kill-switches/team:clustered/lift', { reason: 'done' });
    await expect(ask(onB)).resolves.toBeTruthy();
  });

  it('never passes a seat ceiling under 200 concurrent SDK calls over both replicas', async () => {
    const { key } = await a.client({ team: 'clustered', seat: 'burst' });
    expect(
      (await a.api('POST', '/api/budgets/seat:burst/ceiling', { amount: '0.005', reason: 'test' })).status,
    ).toBe(200);
    const clients = [a, b].map((h) => new Anthropic({ baseURL: h.url, apiKey: key, maxRetries: 0 }));
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        ask(clients[i % 2]!).then(
          () => 'ok',
          (e) => (e as { error?: { chokepoint?: { code?: string } } }).error?.chokepoint?.code ?? String(e),
        ),
      ),
    );
    const ok = outcomes.filter((o) => o === 'ok').length;
    expect(outcomes.filter((o) => o !== 'ok' && o !== 'budget_exhausted')).toEqual([]);
    expect(ok).toBeGreaterThan(0);
    expect(ok).toBeLessThan(200);
    // Settlements may reach the store in batches (leases): wait until every admitted call is on the ledger.
    const ledger = async () =>
      (
        await a.api<{ entries: { cost: number; outcome: string }[] }>(
          'GET',
          '/api/ledger?scope=seat:burst&limit=1000',
        )
      ).body.entries;
    let entries = await ledger();
    for (let i = 0; entries.filter((e) => e.outcome === 'ok').length < ok && i < 600; i++) {
      await new Promise((r) => setTimeout(r, 50));
      entries = await ledger();
    }
    expect(entries.filter((e) => e.outcome === 'ok')).toHaveLength(ok);
    expect(entries.reduce((s, e) => s + e.cost, 0)).toBeLessThanOrEqual(5_000);
    const budget = (await b.api<{ budget: { spent_micros: number } }>('GET', '/api/budgets/seat:burst')).body
      .budget;
    expect(budget.spent_micros).toBeLessThanOrEqual(5_000);
  });

  it('runs a workflow on the BullMQ runs queue of the cluster', async () => {
    const started = await a.api<{ run: { id: string } }>('POST', '/api/runs', {
      workflow: 'long',
      input: { n: 3 },
    });
    expect(started.status).toBe(201);
    const done = await b.api<{ run: { state: string; output: unknown } }>(
      'GET',
      `/api/runs/${started.body.run.id}?wait=60`,
    );
    expect(done.body.run).toMatchObject({ state: 'done', output: { iterations: 3 } });
  }, 90_000);

  it('spreads the key families over the nodes, the budgets in one slot', async () => {
    const nodeOf = new Map<string, number>();
    for (const port of cluster.ports) {
      const node = new Redis(port, '127.0.0.1');
      try {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', '{cpcluster*', 'COUNT', 1000);
          cursor = next;
          for (const k of keys) nodeOf.set(k, port);
        } while (cursor !== '0');
      } finally {
        node.disconnect();
      }
    }
    const tags = new Map<string, Set<number>>();
    for (const [k, port] of nodeOf) {
      const tag = /^\{([^}]*)\}/.exec(k)![1]!;
      if (!tags.has(tag)) tags.set(tag, new Set());
      tags.get(tag)!.add(port);
    }
    // The money store's keys (and the approvals') under `{cpcluster}`; keys, runs, the runs queue
    // … each under a tag of its own.
    expect([...nodeOf.keys()].some((k) => k.startsWith('{cpcluster}:b:'))).toBe(true);
    expect(tags.get('cpcluster/keys')?.size).toBe(1);
    expect(tags.has('cpcluster/runs')).toBe(true);
    expect(tags.has('cpcluster/runs-queue')).toBe(true);
    for (const ports of tags.values()) expect(ports.size).toBe(1);
    expect(new Set([...nodeOf.values()]).size).toBeGreaterThan(1);
  });
});
