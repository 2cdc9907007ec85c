/**
 * Budget leases beyond one machine, in numbers (issue 21): N replicas (10, 100, 1,000) each at R
 * calls/s (1, 10, 100) against shared budgets, on the real lease code (one LeasedMoneyStore per
 * replica, upkeep driven by `tick()`) over ONE shared embedded store, on a virtual clock. Counts the
 * store's operations per second of virtual time, with leases and with per-call admission (the plain
 * store), and — with a team budget driven to its ceiling — the calls refused that a perfect
 * admission (one global counter: spent + in flight + the call within the ceiling) would have let
 * through. The model (traffic, costs, turns, the oracle) is described in bench/lib/replica-sim.ts.
 *
 *   node bin/run-ts.js bench/scale-sim.ts [--quick] [--lease callsPerLease=64,share=8,idleMs=5000]
 *     [--replicas 10,100,1000] [--rates 1,10,100]
 *
 * Exits 1 if any budget was overshot or money was lost or left reserved. Results:
 * bench/results/scale-sim.json and .md (not written with --quick, --lease, --replicas or --rates).
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { LeaseOptions } from '../runtime/store/leases.ts';
import { type SimResult, type SimScenario, simulate } from './lib/replica-sim.ts';

/** Calls per second of virtual time simulated in a load row: more replicas are scaled from these. */
const LOAD_CAP = 400;
const LOAD_MS = 12_000;
const WARMUP_MS = 4_000;
/** A near-ceiling row simulates every replica (they share the budget): its length is bounded by
 * the calls and the upkeep ticks it takes. */
const CEILING_CALLS = 8_000;
const CEILING_TICKS = 40_000;

export interface ScaleSimOptions {
  replicas: number[];
  rates: number[];
  lease: Partial<LeaseOptions>;
  sticky: boolean;
  ceiling: boolean;
}

export function scenarios(o: ScaleSimOptions): SimScenario[] {
  const out: SimScenario[] = [];
  for (const replicas of o.replicas) {
    for (const rate of o.rates) {
      const simulated = Math.min(replicas, Math.max(1, Math.floor(LOAD_CAP / rate)));
      const load = { replicas, rate, simulated, durationMs: LOAD_MS, warmupMs: WARMUP_MS };
      out.push({ ...load, leases: o.lease }, { ...load, leases: false });
      if (o.sticky) out.push({ ...load, leases: o.lease, routing: 'sticky' });
      if (!o.ceiling) continue;
      // Team t0 (a tenth of the traffic) runs into its ceiling; only its calls are simulated.
      const lambda = (replicas * rate) / 10;
      const durationMs = Math.round(
        1000 * Math.max(4, Math.min(60, CEILING_CALLS / lambda, CEILING_TICKS / (2 * replicas))),
      );
      const ceiling = { replicas, rate, durationMs, warmupMs: 0, ceiling: 'team' as const };
      out.push({ ...ceiling, leases: o.lease }, { ...ceiling, leases: false });
    }
  }
  return out;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function formatTable(results: SimResult[]): string {
  const load = results.filter((r) => !r.ceiling);
  const near = results.filter((r) => r.ceiling);
  const table = (head: string[], rows: string[][]) => {
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
    return [line(head), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
  };
  const loadRows = load.map((r) => {
    const perCall = load.find((b) => b.mode === 'per-call' && b.replicas === r.replicas && b.rate === r.rate);
    const ops = r.opsPerSec;
    return [
      `${r.replicas} × ${r.rate}/s`,
      r.mode === 'leases' ? `leases (${r.routing})` : 'per call',
      `${r.simulated}`,
      `${r.calls}`,
      `${r.storeOpsPerSec}`,
      r.storeOpsPerCall.toFixed(2),
      r.mode === 'leases' && perCall ? `${(r.storeOpsPerSec / perCall.storeOpsPerSec).toFixed(2)}×` : '',
      `${ops.admit ?? 0}`,
      `${ops.leaseOps ?? 0}`,
      `${(ops.settle ?? 0) + (ops.release ?? 0)}`,
      `${ops.listKills ?? 0}`,
      r.mode === 'leases' ? pct(r.fromMemory / Math.max(1, r.admitted)) : '',
      `${r.overshoot}`,
    ];
  });
  const nearRows = near.map((r) => [
    `${r.replicas} × ${r.rate}/s`,
    r.mode === 'leases' ? 'leases' : 'per call',
    `${r.virtualSeconds}`,
    `${r.calls}`,
    `${r.near!.firstRefusalAtSec ?? '-'}`,
    `${r.refused}`,
    `${r.near!.falseRefusalsAll} of ${r.near!.oracleAdmitsAll}`,
    pct(r.near!.falseRefusalRateAll),
    `${r.near!.falseRefusals} of ${r.near!.oracleAdmits}`,
    pct(r.near!.falseRefusalRate),
    `${r.storeOpsPerSec}`,
    r.storeOpsPerCall.toFixed(2),
    `${r.overshoot}`,
  ]);
  return [
    'Load (ample budgets; store ops per second of virtual time, after a 4 s warm-up, for all N replicas):',
    '',
    table(
      [
        'N × R',
        'admission',
        'sim',
        'calls',
        'store ops/s',
        'ops/call',
        'vs per call',
        'admit/s',
        'leaseOps/s',
        'settle/s',
        'listKills/s',
        'from memory',
        'overshoot',
      ],
      loadRows,
    ),
    '',
    "Near the ceiling (team t0's calls only, every replica simulated): false refusals are calls refused",
    'while the oracle — spent + in flight + the call within every ceiling — would have admitted them;',
    "'near ceiling' counts from when spent + in flight first reached 90% of the ceiling:",
    '',
    table(
      [
        'N × R',
        'admission',
        'virtual s',
        'calls',
        'first refusal s',
        'refused',
        'false refusals / oracle admits',
        'false %',
        'near ceiling (≥90%): false / oracle',
        'near false %',
        'store ops/s',
        'ops/call',
        'overshoot',
      ],
      nearRows,
    ),
  ].join('\n');
}

function parseLease(arg: string | undefined): Partial<LeaseOptions> {
  if (!arg) return {};
  const out: Record<string, number> = {};
  for (const kv of arg.split(',')) {
    const [k, v] = kv.split('=');
    const n = Number(v);
    if (
      !k ||
      !['callsPerLease', 'maxLease', 'share', 'ttlMs', 'idleMs', 'validityMs'].includes(k) ||
      !Number.isFinite(n)
    ) {
      throw new Error(
        `--lease: expected name=number pairs (callsPerLease, maxLease, share, ttlMs, idleMs, validityMs), got ${JSON.stringify(kv)}`,
      );
    }
    out[k] = n;
  }
  return out as Partial<LeaseOptions>;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const leaseAt = argv.indexOf('--lease');
  const lease = parseLease(leaseAt >= 0 ? argv[leaseAt + 1] : undefined);
  const list = (name: string): number[] | undefined => {
    const at = argv.indexOf(`--${name}`);
    if (at < 0) return undefined;
    const v = (argv[at + 1] ?? '').split(',').map(Number);
    if (!v.length || v.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new Error(`--${name}: expected a comma-separated list of whole numbers, got ${argv[at + 1]}`);
    }
    return v;
  };
  const base: ScaleSimOptions = quick
    ? { replicas: [10, 100], rates: [1, 10], lease, sticky: false, ceiling: true }
    : { replicas: [10, 100, 1000], rates: [1, 10, 100], lease, sticky: true, ceiling: true };
  const opts: ScaleSimOptions = {
    ...base,
    replicas: list('replicas') ?? base.replicas,
    rates: list('rates') ?? base.rates,
  };
  const t0 = performance.now();
  const results: SimResult[] = [];
  for (const s of scenarios(opts)) {
    const r = await simulate(s);
    results.push(r);
    process.stderr.write(
      `${r.replicas}×${r.rate}/s ${r.mode}${r.ceiling ? ' near ceiling' : ''}${r.routing === 'sticky' ? ' sticky' : ''}: ${r.calls} calls, ${r.wallMs} ms\n`,
    );
  }
  const wallSec = Math.round((performance.now() - t0) / 1000);
  const table = formatTable(results);
  console.log(table);
  console.log(`\n(${wallSec} s)`);
  const bad = results.filter((r) => r.overshoot > 0 || r.ledgerMismatch !== 0 || r.leftReserved !== 0);
  const write = !quick && leaseAt < 0 && !argv.includes('--replicas') && !argv.includes('--rates');
  if (write) {
    const measuredAt = new Date().toISOString();
    writeFileSync(
      new URL('results/scale-sim.json', import.meta.url),
      `${JSON.stringify({ measuredAt, wallSec, options: opts, results }, null, 2)}\n`,
    );
    writeFileSync(
      new URL('results/scale-sim.md', import.meta.url),
      `# bench/scale-sim.ts — ${measuredAt}\n\n${table}\n`,
    );
  } else process.stderr.write('(--quick, --lease, --replicas or --rates: results not written)\n');
  if (bad.length) {
    for (const r of bad) {
      console.error(
        `FAILED ${r.replicas}×${r.rate}/s ${r.mode}: overshoot ${r.overshoot} µ$, ledger mismatch ${r.ledgerMismatch} µ$, left reserved ${r.leftReserved} µ$`,
      );
    }
    process.exit(1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
