/**
 * Approvals benchmark, per backend, in one process on the zero-latency in-process emulator:
 *
 * 1. The inbox list with 10,000 pending items: the first page (50, newest first) through the
 *    store and through `GET /api/approvals`, p50/p95 over 200 requests each.
 * 2. 1,000 approvals resumed: 1,000 runs of a gated agent (model → gated tool) suspend at their
 *    gate; every item is approved (50 decisions in flight) and the runs resume through the runs
 *    queue and finish (tool → model). Reports the total time from the first decision to the last
 *    run done, and decisions per second.
 *
 *   node bin/run-ts.js bench/approvals.ts [--quick]
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { compose } from '../runtime/compose.ts';
import { resolveConfig } from '../runtime/config/load.ts';
import { createApp } from '../runtime/faces/http/app.ts';
import { listen } from '../runtime/faces/http/listen.ts';
import { createLogger } from '../runtime/log.ts';
import type { ApprovalItem } from '../runtime/store/approvals.ts';
import { cleanRedis } from './lib/procs.ts';

type Backend = 'embedded' | 'redis';
const TOKEN = 'cpo_bench-approvals-0123456789abcdef';
const BIG = { ceiling: '1000000', window: 'day' };
const WHO = { team: 'bench', env: 'prod', seat: 'bench' };

export interface ApprovalsBenchResult {
  backend: Backend;
  pending: number;
  listStore: { p50Ms: number; p95Ms: number };
  listApi: { p50Ms: number; p95Ms: number };
  resumed: number;
  resumeTotalMs: number;
  decisionsPerSec: number;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * 1000) / 1000;
};

const WORKFLOWS = fileURLToPath(new URL('./workflows/', import.meta.url));

async function open(backend: Backend, redisUrl: string) {
  const dataDir = mkdtempSync(join(tmpdir(), 'cp-bench-approvals-'));
  const prefix = `{cp-bench-${randomBytes(4).toString('hex')}}`;
  const config = resolveConfig(
    {
      dataDir,
      server: { port: 0 },
      ...(backend === 'redis' ? { store: { backend: 'redis', redisUrl, prefix } } : {}),
      budgets: { defaults: { global: BIG, team: BIG, env: BIG, seat: BIG, workflow: BIG } },
      workflows: { dir: WORKFLOWS },
      workers: { concurrency: 64 },
    },
    { env: { CHOKEPOINT_ADMIN_TOKEN: TOKEN } },
  );
  const rt = await compose(config, createLogger({ level: 'silent' }));
  const approvals = rt.approvals!;
  const server = await listen(createApp(rt), { port: 0, host: '127.0.0.1' });
  return {
    rt,
    approvals,
    url: server.url,
    async close() {
      await server.close();
      await rt.close();
      if (backend === 'redis') await cleanRedis(redisUrl, prefix);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function syntheticItem(i: number, now: number): ApprovalItem {
  const runId = `run_bench${String(i).padStart(6, '0')}`;
  return {
    id: `${runId}.1`,
    kind: 'run',
    runId,
    workflow: i % 2 ? 'research' : 'triage',
    version: '1',
    identity: { ...WHO, workflow: 'research', run: runId },
    reason: 'time_box',
    summary: 'time box: ran 10m of 10m',
    detail: { elapsedMs: 600_000, timeBox: 600_000, steps: 12 },
    context: {
      spendByModel: { 'claude-haiku-4-5': 12_345 },
      spent: 12_345,
      elapsedMs: 600_000,
      steps: 12,
      cacheHitRate: 0.83,
      lastMessages: [
        { role: 'assistant', text: 'Searching the archive for the order history → search({"q":"A-1001"})' },
        { role: 'tool search', text: 'found 3 results: shipped, delayed, delivered' },
      ],
    },
    state: 'pending',
    createdAt: now - 100_000 + i,
    expiresAt: now + 86_400_000,
  };
}

async function timed(n: number, fn: () => Promise<unknown>): Promise<{ p50Ms: number; p95Ms: number }> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return { p50Ms: quantile(ms, 0.5), p95Ms: quantile(ms, 0.95) };
}

async function listBench(backend: Backend, redisUrl: string, pending: number) {
  const c = await open(backend, redisUrl);
  try {
    const store = c.approvals.store;
    const now = Date.now();
    for (let i = 0; i < pending; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, pending - i) }, (_, j) => store.open(syntheticItem(i + j, now))),
      );
    }
    const counts = await store.counts();
    if (counts.pending !== pending)
      throw new Error(`expected ${pending} pending, the store has ${counts.pending}`);
    await timed(20, () => store.list({ state: 'pending', limit: 50 }));
    const listStore = await timed(200, () => store.list({ state: 'pending', limit: 50 }));
    const listApi = await timed(200, async () => {
      const res = await fetch(`${c.url}/api/approvals?limit=50`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      const body = (await res.json()) as { approvals: unknown[] };
      if (body.approvals.length !== 50) throw new Error(`the API listed ${body.approvals.length} items`);
    });
    return { listStore, listApi };
  } finally {
    await c.close();
  }
}

async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function resumeBench(backend: Backend, redisUrl: string, runs: number) {
  const c = await open(backend, redisUrl);
  const host = c.rt.runs!;
  try {
    const task = { task: 'Where is my order? [[emulator:tool_use lookup={"order":"A1"}]]' };
    for (let i = 0; i < runs; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, runs - i) }, () => host.start('gated', task, WHO)));
    }
    await until(
      `${runs} approval items`,
      120_000,
      async () => (await c.approvals.store.counts()).pending >= runs,
    );
    const items: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await c.approvals.list({ state: 'pending', limit: 1000, cursor });
      items.push(...page.items.map((i) => i.id));
      cursor = page.next;
    } while (cursor);
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < items.length) {
          const id = items[next++]!;
          await c.approvals.decide(id, { action: 'approve', actor: 'bench', reason: 'benchmark' });
        }
      }),
    );
    const decidedMs = performance.now() - t0;
    await until(`${runs} runs done`, 180_000, async () => (await host.runs.counts()).done >= runs);
    const total = performance.now() - t0;
    return {
      resumed: runs,
      resumeTotalMs: Math.round(total),
      decisionsPerSec: Math.round((runs / decidedMs) * 1000),
    };
  } finally {
    await c.close();
  }
}

export async function runApprovalsBench(
  opts: { pending?: number; runs?: number; backends?: Backend[]; redisUrl?: string } = {},
): Promise<ApprovalsBenchResult[]> {
  const redisUrl = opts.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const pending = opts.pending ?? 10_000;
  const runs = opts.runs ?? 1_000;
  const results: ApprovalsBenchResult[] = [];
  for (const backend of opts.backends ?? (['embedded', 'redis'] as Backend[])) {
    console.error(`approvals: ${backend}: listing ${pending} pending items`);
    const list = await listBench(backend, redisUrl, pending);
    console.error(`approvals: ${backend}: ${runs} runs suspended at a gate, approved and resumed`);
    const resume = await resumeBench(backend, redisUrl, runs);
    results.push({ backend, pending, ...list, ...resume });
  }
  return results;
}

export function formatApprovalsBench(rs: ApprovalsBenchResult[]): string {
  const rows = rs.map(
    (r) =>
      `| ${r.backend} | ${r.pending} | ${r.listStore.p50Ms} / ${r.listStore.p95Ms} | ${r.listApi.p50Ms} / ${r.listApi.p95Ms} | ${r.resumed} | ${(r.resumeTotalMs / 1000).toFixed(1)} s | ${r.decisionsPerSec} |`,
  );
  return [
    '| backend | pending items | list first page, store p50 / p95 ms | `GET /api/approvals` p50 / p95 ms | approvals resumed | first decision → last run done | decisions/s |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  const results = await runApprovalsBench(quick ? { pending: 2_000, runs: 200 } : {});
  console.log(formatApprovalsBench(results));
  if (!quick) {
    const dir = fileURLToPath(new URL('./results/', import.meta.url));
    mkdirSync(dir, { recursive: true });
    const at = new Date().toISOString();
    writeFileSync(
      join(dir, 'approvals.json'),
      `${JSON.stringify({ bench: 'approvals', at, machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version }, results }, null, 2)}\n`,
    );
  }
  process.exit(0);
}
