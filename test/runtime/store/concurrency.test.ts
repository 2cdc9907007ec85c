import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { MoneyStore } from '../../../runtime/store/port.ts';
import {
  openWorkerStore,
  runWorker,
  type WorkerConfig,
  type WorkerSummary,
} from './fixtures/admit-worker.ts';
import { REDIS_URL, testPrefixes } from './redis-harness.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const WORKER = 'test/runtime/store/fixtures/admit-worker.ts';
const CEILING = 5_000_000;
const shared = { backend: 'redis', team: 'shared', calls: 250, spreadMs: 300 } as const;

interface Worker {
  ready: Promise<void>;
  done: Promise<WorkerSummary>;
  go(): void;
}

function spawnWorker(config: WorkerConfig): Worker {
  const child = spawn(process.execPath, ['bin/run-ts.js', WORKER, JSON.stringify(config)], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    // A worker that dies before it is ready fails the test at once, with its output.
    child.once('exit', (code) =>
      reject(new Error(`worker ${config.worker} exited with ${code} before ready: ${out}`)),
    );
  });
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.startsWith('ready\n')) markReady();
  });
  const done = new Promise<WorkerSummary>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`worker ${config.worker} exited with ${code}: ${out}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as WorkerSummary);
    });
  });
  return { ready, done, go: () => child.stdin.end('go\n') };
}

/** Starts the workers together once all of them are connected. */
async function runWorkers(configs: WorkerConfig[]): Promise<WorkerSummary[]> {
  const workers = configs.map(spawnWorker);
  await Promise.all(workers.map((w) => w.ready));
  for (const w of workers) w.go();
  return Promise.all(workers.map((w) => w.done));
}

/** The invariants: no overshoot, refusals name the team budget, nothing left reserved, one entry per call. */
async function expectNoOvershoot(store: MoneyStore, team: string, results: WorkerSummary[], calls: number) {
  const settled = results.reduce((s, r) => s + r.settledCost, 0);
  const budget = await store.getBudget(`team:${team}`);
  expect(budget?.spent).toBe(settled);
  expect(settled).toBeLessThanOrEqual(CEILING);
  expect(results.reduce((s, r) => s + r.refused, 0)).toBeGreaterThan(0);
  expect(results.reduce((s, r) => s + r.admitted + r.refused, 0)).toBe(calls);
  expect(new Set(results.flatMap((r) => r.refusedBy))).toEqual(new Set([`team:${team}`]));
  for (const b of await store.listBudgets()) expect(b.reserved).toBe(0);
  expect(await store.listLedger({ scope: `team:${team}`, limit: calls + 10 })).toHaveLength(calls);
}

describe('concurrency: the sum of settled spend never passes a ceiling', () => {
  describe('Redis, 4 processes x 250 concurrent admissions', () => {
    const prefixes = testPrefixes('concurrency');
    afterAll(() => prefixes.cleanup());

    it('admits at most the team ceiling across processes and leaves nothing reserved', async () => {
      const prefix = prefixes.next();
      const store = await openWorkerStore({
        backend: 'redis',
        target: REDIS_URL,
        prefix,
        team: 'x',
        worker: 0,
        calls: 0,
      });
      try {
        await store.ensureBudget('team:shared', { ceiling: CEILING, window: 'total' });
        const results = await runWorkers(
          [1, 2, 3, 4].map((worker) => ({ ...shared, target: REDIS_URL, prefix, worker })),
        );
        await expectNoOvershoot(store, 'shared', results, 1000);
        // global, env and the seats were first seen by racing processes: still one budget each.
        expect((await store.listBudgets()).map((b) => b.scope)).toEqual([
          'env:prod',
          'global',
          'seat:worker-1',
          'seat:worker-2',
          'seat:worker-3',
          'seat:worker-4',
          'team:shared',
        ]);
      } finally {
        await store.close();
      }
    }, 60_000);
  });

  describe('embedded SQLite', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cp-concurrency-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('admits at most the team ceiling with 1,000 concurrent callers in one process', async () => {
      const target = join(dir, 'one.db');
      const store = await openWorkerStore({ backend: 'embedded', target, team: 'x', worker: 0, calls: 0 });
      try {
        await store.ensureBudget('team:shared', { ceiling: CEILING, window: 'total' });
        const results = await Promise.all(
          [1, 2, 3, 4].map((worker) => runWorker({ ...shared, backend: 'embedded', target, worker }, store)),
        );
        await expectNoOvershoot(store, 'shared', results, 1000);
      } finally {
        await store.close();
      }
    });

    it('admits at most the team ceiling with 2 processes sharing one file', async () => {
      const target = join(dir, 'two.db');
      const store = await openWorkerStore({ backend: 'embedded', target, team: 'x', worker: 0, calls: 0 });
      try {
        await store.ensureBudget('team:shared', { ceiling: CEILING, window: 'total' });
        const results = await runWorkers(
          [1, 2].map((worker) => ({ ...shared, backend: 'embedded', target, worker })),
        );
        await expectNoOvershoot(store, 'shared', results, 500);
      } finally {
        await store.close();
      }
    }, 60_000);
  });
});
