/**
 * Workflow runtime benchmark, per backend, all in one process on one machine:
 *
 * 1. Runs per second of a 3-step agent (model → tool → model) on the in-process emulator with
 *    zero latency. Sequential runs (start + wait, one at a time) give the latency one run pays
 *    (p50/p99); `concurrency` runs at a time give throughput. Each backend is measured twice in
 *    the same run: with its durable run store (SQLite on the money store's file, or Redis) and
 *    with the in-memory run store on the same money store, so the ratio is what durability costs.
 * 2. Store size of a suspended run: N runs of an agent capped at 2 steps (each suspends at its
 *    step cap after model + tool, 2 journaled calls). Reported three ways: the store's own
 *    `sizeOf` (record + journal bytes), what the run store's tables/keys take (SQLite `dbstat`
 *    growth of the run tables; Redis `MEMORY USAGE` of a sample of runs' keys plus their share of
 *    the run indexes), and everything the database grew by per run (the money store's ledger
 *    rows and run budget included: SQLite `page_count * page_size`, Redis `MEMORY USAGE` of every
 *    key under the prefix).
 *
 * The embedded backend uses files in a temp dir; Redis uses REDIS_URL (default 127.0.0.1:6379)
 * under throwaway prefixes that are deleted afterwards.
 *
 *   node bin/run-ts.js bench/runs.ts [--quick]
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { SqliteRunStore } from '../runtime/backends/embedded/runs.ts';
import { RedisRunStore } from '../runtime/backends/redis/runs.ts';
import { resolveConfig } from '../runtime/config/load.ts';
import { createLogger } from '../runtime/log.ts';
import { openRuntime, type Runtime } from '../runtime/runtime.ts';
import { MemoryRunStore, type RunStore } from '../runtime/store/runs.ts';
import { defineAgent } from '../runtime/workflows/agent.ts';
import type { Workflow } from '../runtime/workflows/define.ts';
import { WorkflowExecutor } from '../runtime/workflows/executor.ts';

type Backend = 'embedded' | 'redis';
type RunStoreKind = 'memory' | 'sqlite' | 'redis';

export interface RunsThroughputResult {
  /** Where the money store (budgets, ledger) lives. */
  backend: Backend;
  /** Where runs live: `memory` is the no-durability baseline on the same money store. */
  runStore: RunStoreKind;
  /** Sequential runs (start + wait, one at a time). */
  runs: number;
  runsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Runs per second with `concurrency` runs in flight at once. */
  concurrentPerSec: number;
  concurrency: number;
  /** Throughput as a share of the memory run store on the same backend (1 for the baseline). */
  vsMemory: { sequential: number; concurrent: number };
}

export interface RunsSizeResult {
  backend: Backend;
  runStore: Exclude<RunStoreKind, 'memory'>;
  /** Runs left suspended at their step cap, 2 journaled calls each. */
  suspendedRuns: number;
  /** `RunStore.sizeOf` averaged over the runs: the record's and journal entries' bytes. */
  sizeOfBytes: number;
  /** What the run store holds per run: SQLite, growth of the run tables and their indexes
   * (`dbstat`) / N; Redis, `MEMORY USAGE` of a sample of runs' keys plus the run indexes / N. */
  runStoreBytes: number;
  /** Everything the database grew by, per run (money store ledger rows and run budget too):
   * SQLite, `page_count * page_size` growth / N; Redis, `MEMORY USAGE` of every key under the
   * prefix, growth / N. */
  totalBytes: number;
  /** Runs whose keys were measured one by one (Redis). */
  sample?: number;
}

export interface RunsBenchResult {
  throughput: RunsThroughputResult[];
  size: RunsSizeResult[];
}

export interface RunsBenchOptions {
  redisUrl?: string;
  /** Time spent measuring each phase (sequential, concurrent) per contender (ms). Default 3000. */
  phaseMs?: number;
  concurrency?: number;
  /** Runs left suspended for the size measurement. Default 1,000. */
  suspendedRuns?: number;
  /** Runs whose Redis keys are measured one by one. Default 100. */
  sample?: number;
  backends?: Backend[];
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
}

const WHO = { team: 'bench', env: 'prod', seat: 'bench' };
const TASK = { task: 'Where is my order? [[emulator:tool_use lookup={"order":"A1"}]]' };
const BIG = { ceiling: '1000000', window: 'day' };

/** A one-tool agent; the task's emulator directive makes the first answer a tool call. */
function agent(id: string, steps: number): Workflow {
  return defineAgent({
    id,
    version: 1,
    description: 'benchmark agent',
    input: z.object({ task: z.string() }),
    system: 'You look up orders.',
    tools: {
      lookup: {
        description: 'Looks up an order',
        input_schema: z.object({ order: z.string() }),
        run: ({ order }: { order: string }) => `order ${order}: shipped`,
      },
    },
    limits: { spend: '$1.00', time: '10m', steps },
    task: (i) => i.task,
  });
}

interface Contender {
  kind: RunStoreKind;
  rt: Runtime;
  runs: RunStore;
  executor: WorkflowExecutor;
  dataDir: string;
  prefix: string;
  redis?: Redis;
  close(): Promise<void>;
}

/** A runtime on `backend` (silent, emulator provider, generous budgets) with an executor whose
 * runs live in `runStore`. */
async function open(backend: Backend, runStore: RunStoreKind, redisUrl: string): Promise<Contender> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cp-bench-runs-'));
  const prefix = `{cp-bench-${randomBytes(4).toString('hex')}}`;
  const config = resolveConfig(
    {
      dataDir,
      server: { port: 0 },
      ...(backend === 'redis' ? { store: { backend: 'redis', redisUrl, prefix } } : {}),
      budgets: { defaults: { global: BIG, team: BIG, env: BIG, seat: BIG, workflow: BIG } },
      routing: { classes: { cheap: ['claude-haiku-4-5'] } },
    },
    // No environment: REDIS_URL or ANTHROPIC_API_KEY must not change the backend or provider.
    { env: {} },
  );
  const rt = await openRuntime(config, createLogger({ level: 'silent' }));
  let redis: Redis | undefined;
  let runs: RunStore;
  if (runStore === 'sqlite') runs = new SqliteRunStore(join(dataDir, 'chokepoint.db'));
  else if (runStore === 'redis') {
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
    runs = new RedisRunStore(redis, prefix);
  } else runs = new MemoryRunStore(rt.now);
  const executor = new WorkflowExecutor(rt, { runs });
  return {
    kind: runStore,
    rt,
    runs,
    executor,
    dataDir,
    prefix,
    redis,
    async close() {
      await executor.close();
      await runs.close();
      await rt.close();
      if (backend === 'redis') {
        const r = redis ?? new Redis(redisUrl);
        await deletePrefix(r, prefix);
        r.disconnect();
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function deletePrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}

/** One run, start to end; throws unless it ended as expected. */
async function oneRun(ex: WorkflowExecutor, w: Workflow, expect: 'done' | 'suspended'): Promise<string> {
  const { id } = await ex.start(w, TASK, WHO);
  const run = await ex.wait(id);
  const steps = expect === 'done' ? 3 : 2;
  if (run.state !== expect || run.steps !== steps) {
    throw new Error(
      `benchmark run ${id} ended ${run.state} (${run.reason ?? ''} ${run.error ?? ''}) after ${run.steps} steps, expected ${expect} after ${steps}`,
    );
  }
  return id;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

const round = (n: number, d = 3) => Number(n.toFixed(d));

/** Sequential runs for `ms`: each run's latency, and the seconds spent. */
async function sequential(c: Contender, w: Workflow, ms: number): Promise<{ samples: number[]; s: number }> {
  const samples: number[] = [];
  const start = performance.now();
  while (performance.now() - start < ms) {
    const t0 = performance.now();
    await oneRun(c.executor, w, 'done');
    samples.push(performance.now() - t0);
  }
  return { samples, s: (performance.now() - start) / 1000 };
}

/** `concurrency` runs in flight at once for `ms`: runs completed, and the seconds spent. */
async function concurrent(
  c: Contender,
  w: Workflow,
  ms: number,
  concurrency: number,
): Promise<{ done: number; s: number }> {
  let done = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() - start < ms) {
        await oneRun(c.executor, w, 'done');
        done++;
      }
    }),
  );
  return { done, s: (performance.now() - start) / 1000 };
}

/**
 * Throughput of the memory baseline (`a`) and the durable run store (`b`) on the same backend,
 * measured in halves in the order a b b a, so whatever drifts during the process (JIT warm-up,
 * the money store growing, other load on the machine) weighs on both alike.
 */
async function throughput(
  backend: Backend,
  a: Contender,
  b: Contender,
  phaseMs: number,
  concurrency: number,
  progress: (line: string) => void,
): Promise<RunsThroughputResult[]> {
  const w = agent('bench-three-step', 20);
  // Warm-up, untimed: JIT, the stores' first pages and statements, connections.
  for (const c of [a, b]) {
    await sequential(c, w, Math.max(300, phaseMs / 6));
    await concurrent(c, w, Math.max(300, phaseMs / 6), concurrency);
  }
  const order = [a, b, b, a];
  const seq = new Map<Contender, { samples: number[]; s: number }>();
  for (const c of order) {
    const r = await sequential(c, w, phaseMs / 2);
    const acc = seq.get(c) ?? { samples: [], s: 0 };
    seq.set(c, { samples: acc.samples.concat(r.samples), s: acc.s + r.s });
  }
  const conc = new Map<Contender, { done: number; s: number }>();
  for (const c of order) {
    const r = await concurrent(c, w, phaseMs / 2, concurrency);
    const acc = conc.get(c) ?? { done: 0, s: 0 };
    conc.set(c, { done: acc.done + r.done, s: acc.s + r.s });
  }
  const rows = [a, b].map((c) => {
    const { samples, s } = seq.get(c)!;
    samples.sort((x, y) => x - y);
    const cc = conc.get(c)!;
    const row = {
      backend,
      runStore: c.kind,
      runs: samples.length,
      runsPerSec: Math.round(samples.length / s),
      p50Ms: round(percentile(samples, 50)),
      p99Ms: round(percentile(samples, 99)),
      concurrentPerSec: Math.round(cc.done / cc.s),
      concurrency,
    };
    progress(
      `  ${c.kind} run store: ${row.runsPerSec} runs/s sequential (p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms), ${row.concurrentPerSec} runs/s at c=${concurrency}`,
    );
    return row;
  });
  const base = rows[0]!;
  return rows.map((r) => ({
    ...r,
    vsMemory: {
      sequential: round(r.runsPerSec / base.runsPerSec, 2),
      concurrent: round(r.concurrentPerSec / base.concurrentPerSec, 2),
    },
  }));
}

/** Bytes of the run store's tables and indexes, and of the whole database, in a SQLite file. */
function sqliteBytes(file: string): { runTables: number; total: number } {
  const db = new Database(file, { readonly: true });
  try {
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const pages = db.pragma('page_count', { simple: true }) as number;
    const rows = db.prepare('SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name').all() as {
      name: string;
      bytes: number;
    }[];
    const runTables = rows
      .filter((r) => RUN_TABLES.has(r.name) || r.name.startsWith('sqlite_autoindex_run'))
      .reduce((n, r) => n + r.bytes, 0);
    return { runTables, total: pageSize * pages };
  } finally {
    db.close();
  }
}

const RUN_TABLES = new Set([
  'runs',
  'runs_state_started',
  'runs_started',
  'runs_workflow_started',
  'run_journal',
  'run_journal_order',
  'run_leases',
  'workflow_prefixes',
]);

/** `MEMORY USAGE` of every key under the prefix. */
async function redisPrefixBytes(redis: Redis, prefix: string): Promise<number> {
  let total = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    total += await memoryUsage(redis, keys);
  } while (cursor !== '0');
  return total;
}

async function memoryUsage(redis: Redis, keys: string[]): Promise<number> {
  if (keys.length === 0) return 0;
  const p = redis.pipeline();
  for (const k of keys) p.call('MEMORY', 'USAGE', k, 'SAMPLES', '0');
  const out = (await p.exec()) ?? [];
  return out.reduce((n, [err, v]) => {
    if (err) throw err;
    return n + Number(v ?? 0);
  }, 0);
}

async function storeSize(
  c: Contender,
  backend: Backend,
  n: number,
  sample: number,
  concurrency: number,
): Promise<RunsSizeResult> {
  const w = agent('bench-capped', 2);
  // One run first so the workflow's prefix row/field and the tables' first pages exist.
  await oneRun(c.executor, w, 'suspended');
  const file = join(c.dataDir, 'chokepoint.db');
  const before =
    backend === 'embedded'
      ? sqliteBytes(file)
      : { runTables: 0, total: await redisPrefixBytes(c.redis!, c.prefix) };

  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        ids.push(await oneRun(c.executor, w, 'suspended'));
      }
    }),
  );

  let sizeOf = 0;
  for (const id of ids) sizeOf += await c.runs.sizeOf(id);

  if (backend === 'embedded') {
    const after = sqliteBytes(file);
    return {
      backend,
      runStore: 'sqlite',
      suspendedRuns: ids.length,
      sizeOfBytes: Math.round(sizeOf / ids.length),
      runStoreBytes: Math.round((after.runTables - before.runTables) / ids.length),
      totalBytes: Math.round((after.total - before.total) / ids.length),
    };
  }
  const redis = c.redis!;
  const picked = ids.slice(0, Math.min(sample, ids.length));
  const run = (id: string) => `${c.prefix}:run:${id}`;
  const perRun =
    (await memoryUsage(
      redis,
      picked.flatMap((id) => [run(id), `${run(id)}:journal`, `${run(id)}:journal:keys`, `${run(id)}:lease`]),
    )) / picked.length;
  // The run indexes hold every run: their size over the runs in them is each run's share.
  const indexes = [`${c.prefix}:runs:all`, `${c.prefix}:runs:state:suspended`];
  const indexShare = (await memoryUsage(redis, indexes)) / (ids.length + 1);
  const total = await redisPrefixBytes(redis, c.prefix);
  return {
    backend,
    runStore: 'redis',
    suspendedRuns: ids.length,
    sizeOfBytes: Math.round(sizeOf / ids.length),
    runStoreBytes: Math.round(perRun + indexShare),
    totalBytes: Math.round((total - before.total) / ids.length),
    sample: picked.length,
  };
}

/** Runs the benchmark for each backend: throughput (memory baseline and durable), then size. */
export async function runRunsBench(opts: RunsBenchOptions = {}): Promise<RunsBenchResult> {
  const phaseMs = opts.phaseMs ?? 3000;
  const concurrency = opts.concurrency ?? 16;
  const n = opts.suspendedRuns ?? 1000;
  const sample = opts.sample ?? 100;
  const backends = opts.backends ?? ['embedded', 'redis'];
  const redisUrl = opts.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const progress = opts.progress ?? (() => {});
  const result: RunsBenchResult = { throughput: [], size: [] };

  for (const backend of backends) {
    const durable: RunStoreKind = backend === 'embedded' ? 'sqlite' : 'redis';
    progress(`runs: ${backend} money store, memory vs ${durable} run store: throughput`);
    const memory = await open(backend, 'memory', redisUrl);
    try {
      const stored = await open(backend, durable, redisUrl);
      try {
        result.throughput.push(
          ...(await throughput(backend, memory, stored, phaseMs, concurrency, progress)),
        );
      } finally {
        await stored.close();
      }
    } finally {
      await memory.close();
    }

    progress(`runs: ${backend} (${durable} run store): size of ${n} suspended runs`);
    const c = await open(backend, durable, redisUrl);
    try {
      const s = await storeSize(c, backend, n, sample, concurrency);
      result.size.push(s);
      progress(
        `  sizeOf ${s.sizeOfBytes} B, run store ${s.runStoreBytes} B, total ${s.totalBytes} B per suspended run`,
      );
    } finally {
      await c.close();
    }
  }
  return result;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatRunsBench(r: RunsBenchResult): string {
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const speed = table(
    ['backend', 'run store', 'runs/s', 'p50 ms', 'p99 ms', 'concurrent runs/s', 'vs memory (seq / conc)'],
    r.throughput.map((t) => [
      t.backend,
      t.runStore,
      String(t.runsPerSec),
      t.p50Ms.toFixed(2),
      t.p99Ms.toFixed(2),
      `${t.concurrentPerSec} (c=${t.concurrency})`,
      `${pct(t.vsMemory.sequential)} / ${pct(t.vsMemory.concurrent)}`,
    ]),
  );
  const size = table(
    ['backend', 'run store', 'suspended runs', 'sizeOf B/run', 'run store B/run', 'total growth B/run'],
    r.size.map((s) => [
      s.backend,
      s.runStore,
      String(s.suspendedRuns),
      String(s.sizeOfBytes),
      `${s.runStoreBytes}${s.sample ? ` (sample ${s.sample})` : ''}`,
      String(s.totalBytes),
    ]),
  );
  return [
    '3-step agent runs (model → tool → model), emulator with zero latency, one process:',
    '',
    speed,
    '',
    'Suspended runs (step cap 2: model + tool journaled):',
    '',
    size,
  ].join('\n');
}

/** Writes the result (with the machine and options) to bench/results/runs.json. */
export function writeRunsResults(result: RunsBenchResult, opts: RunsBenchOptions = {}): string {
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'runs.json');
  const { progress: _p, redisUrl: _u, ...options } = opts;
  const doc = {
    bench: 'runs',
    at: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      node: process.version,
      platform: process.platform,
    },
    options: {
      phaseMs: 3000,
      concurrency: 16,
      suspendedRuns: 1000,
      sample: 100,
      backends: ['embedded', 'redis'],
      ...options,
    },
    ...result,
  };
  writeFileSync(`${file}.tmp`, `${JSON.stringify(doc, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  return file;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  const opts: RunsBenchOptions = {
    ...(quick ? { phaseMs: 750, suspendedRuns: 200 } : {}),
    progress: (line) => process.stderr.write(`${line}\n`),
  };
  const result = await runRunsBench(opts);
  console.log(formatRunsBench(result));
  if (quick) process.stderr.write('(--quick: results not written)\n');
  else process.stderr.write(`wrote ${writeRunsResults(result, opts)}\n`);
}
