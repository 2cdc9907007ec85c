/**
 * Money store benchmark: admit + settle round trips (the two store calls on every model call's hot
 * path), per backend. Sequential calls give the latency one request pays (p50/p99); 16 concurrent
 * callers give throughput. The embedded store uses a file in a temp dir; Redis uses REDIS_URL
 * (default 127.0.0.1:6379) under a throwaway prefix that is deleted afterwards.
 *
 *   node bin/run-ts.js bench/store.ts [--quick]   (results: bench/results/store.json)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openEmbeddedStore } from '../runtime/backends/embedded/money/store.ts';
import { openRedisStore, type RedisMoneyStore } from '../runtime/backends/redis/money/store.ts';
import type { Identity, ScopeKind } from '../runtime/identity.ts';
import type { BudgetSpec, LedgerInput, MoneyStore, MoneyStoreOptions } from '../runtime/store/port.ts';

export interface StoreBenchResult {
  backend: 'embedded' | 'redis';
  /** Sequential admit+settle round trips. */
  roundTrips: number;
  roundTripsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Round trips per second with `concurrency` callers at once. */
  concurrentPerSec: number;
  concurrency: number;
}

export interface StoreBenchOptions {
  redisUrl?: string;
  /** Time spent measuring each phase, per backend (ms). Default 2500. */
  phaseMs?: number;
  concurrency?: number;
  backends?: ('embedded' | 'redis')[];
}

const BIG: BudgetSpec = { ceiling: 1_000_000 * 1_000_000, window: 'day' };
const OPTIONS: MoneyStoreOptions = {
  defaults: Object.fromEntries(
    ['global', 'team', 'env', 'seat', 'workflow', 'run'].map((k) => [k, BIG]),
  ) as Record<ScopeKind, BudgetSpec>,
  timeZone: 'Europe/Berlin',
  reservationTtlMs: 600_000,
};

function identityFor(i: number): Identity {
  return { team: `team-${i % 4}`, env: 'prod', seat: `seat-${i % 32}`, workflow: 'bench' };
}

function entry(identity: Identity, reserved: number): LedgerInput {
  return {
    requestId: 'bench',
    identity,
    kind: 'model',
    name: 'claude-sonnet-4-5',
    tokens: { input: 1200, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 800, output: 300 },
    reserved,
    cost: Math.floor(reserved / 2),
    outcome: 'ok',
    latencyMs: 1,
  };
}

async function roundTrip(store: MoneyStore, i: number): Promise<void> {
  const identity = identityFor(i);
  const a = await store.admit({ identity, amount: 50_000 });
  if (!a.ok) throw new Error(`benchmark call refused: ${JSON.stringify(a.refusal)}`);
  await store.settle(a.reservation.id, entry(identity, 50_000));
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

async function measure(
  backend: StoreBenchResult['backend'],
  store: MoneyStore,
  phaseMs: number,
  concurrency: number,
): Promise<StoreBenchResult> {
  for (let i = 0; i < 300; i++) await roundTrip(store, i);

  const samples: number[] = [];
  const start = performance.now();
  let i = 0;
  while (performance.now() - start < phaseMs) {
    const t0 = performance.now();
    await roundTrip(store, i++);
    samples.push(performance.now() - t0);
  }
  const seqSeconds = (performance.now() - start) / 1000;
  samples.sort((a, b) => a - b);

  let done = 0;
  const cStart = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, lane) => {
      for (let j = lane; performance.now() - cStart < phaseMs; j += concurrency) {
        await roundTrip(store, j);
        done++;
      }
    }),
  );
  const cSeconds = (performance.now() - cStart) / 1000;

  const round = (n: number, d = 3) => Number(n.toFixed(d));
  return {
    backend,
    roundTrips: samples.length,
    roundTripsPerSec: Math.round(samples.length / seqSeconds),
    p50Ms: round(percentile(samples, 50)),
    p99Ms: round(percentile(samples, 99)),
    concurrentPerSec: Math.round(done / cSeconds),
    concurrency,
  };
}

/** Runs the benchmark for each backend and returns one result per backend. */
export async function runStoreBench(opts: StoreBenchOptions = {}): Promise<StoreBenchResult[]> {
  const phaseMs = opts.phaseMs ?? 2500;
  const concurrency = opts.concurrency ?? 16;
  const backends = opts.backends ?? ['embedded', 'redis'];
  const results: StoreBenchResult[] = [];

  if (backends.includes('embedded')) {
    const dir = mkdtempSync(join(tmpdir(), 'cp-bench-'));
    const store = openEmbeddedStore(join(dir, 'bench.db'), OPTIONS);
    try {
      results.push(await measure('embedded', store, phaseMs, concurrency));
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  if (backends.includes('redis')) {
    const url = opts.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    const prefix = `{cp-bench-${randomBytes(4).toString('hex')}}`;
    const store: RedisMoneyStore = await openRedisStore(url, { ...OPTIONS, prefix });
    try {
      results.push(await measure('redis', store, phaseMs, concurrency));
    } finally {
      await deletePrefix(store, prefix);
      await store.close();
    }
  }
  return results;
}

async function deletePrefix(store: RedisMoneyStore, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await store.redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await store.redis.unlink(...keys);
  } while (cursor !== '0');
}

export function formatStoreBench(results: StoreBenchResult[]): string {
  const head = ['backend', 'admit+settle/s', 'p50 ms', 'p99 ms', 'concurrent/s'];
  const rows = results.map((r) => [
    r.backend,
    String(r.roundTripsPerSec),
    r.p50Ms.toFixed(3),
    r.p99Ms.toFixed(3),
    `${r.concurrentPerSec} (c=${r.concurrency})`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  const results = await runStoreBench(quick ? { phaseMs: 500 } : {});
  console.log(formatStoreBench(results));
  if (quick) process.stderr.write('(--quick: results not written)\n');
  else {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      new URL('results/store.json', import.meta.url),
      `${JSON.stringify({ measuredAt: new Date().toISOString(), results }, null, 2)}\n`,
    );
  }
}
