/**
 * Where a Redis Cluster's work goes with the money store in one slot and spread over partitions
 * (runtime/backends/redis/money/partitioned.ts). Starts its own 3-node cluster (as the tests do),
 * then per layout runs `--stores` money stores (as that many processes would, each admitting in
 * its own partition) doing per-call admit + settle — the heaviest use of the store, no leases — on
 * identities that share the global, env and team budgets. Reports calls per second (bound by this
 * one Node process on a small machine) and, per node, Redis's main-thread CPU per call (INFO cpu):
 * the busiest node's is what bounds the cluster. Then drives the shared team budget to its ceiling
 * and checks that nothing passed it.
 *
 *   node bin/run-ts.js bench/cluster-spread.ts [--stores 8] [--calls 4000] [--concurrency 8]
 */
import { Redis } from 'ioredis';
import {
  openPartitionedStore,
  type PartitionedMoneyStore,
} from '../runtime/backends/redis/money/partitioned.ts';
import { openRedisStore } from '../runtime/backends/redis/money/store.ts';
import type { Identity } from '../runtime/identity.ts';
import type { MoneyStore } from '../runtime/store/port.ts';
import { startRedisCluster } from '../test/helpers/redis-cluster.ts';
import { everyKind } from './lib/budgets.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const STORES = opt('stores', 8);
const CALLS = opt('calls', 4000);
const CONC = opt('concurrency', 8);
const USD = 1_000_000;
const defaults = everyKind(1_000_000 * USD);
const base = { defaults, timeZone: 'UTC', reservationTtlMs: 600_000 };

console.error('starting a 3-node Redis Cluster…');
const cluster = await startRedisCluster({ nodes: 3 });
const nodes = cluster.ports.map((port) => new Redis(port, '127.0.0.1'));
const cpuUs = async () =>
  Promise.all(
    nodes.map(async (n) => {
      const info = await n.info('cpu');
      const secs = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
      return 1e6 * (secs('used_cpu_sys_main_thread') + secs('used_cpu_user_main_thread'));
    }),
  );

const identityOf = (i: number): Identity => ({ team: `team${i % 2}`, env: 'prod', seat: `seat${i}` });
const entry = (identity: Identity, reserved: number, cost: number) => ({
  requestId: 'r',
  identity,
  kind: 'model' as const,
  name: 'claude-sonnet-4-5',
  tokens: { input: 100, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 10 },
  reserved,
  cost,
  outcome: 'ok' as const,
  latencyMs: 1,
});

/** `CALLS` admit + settle over the stores, CONC at a time each; returns refusals. */
async function drive(
  stores: MoneyStore[],
  calls: number,
  amount: number,
  cost: number,
  who: (i: number) => Identity = identityOf,
) {
  let left = calls;
  let refused = 0;
  await Promise.all(
    stores.flatMap((s, i) =>
      Array.from({ length: CONC }, async () => {
        const identity = who(i);
        while (left > 0) {
          left--;
          const a = await s.admit({ identity, amount });
          if (!a.ok) {
            refused++;
            continue;
          }
          await s.settle(a.reservation.id, entry(identity, amount, cost));
        }
      }),
    ),
  );
  return refused;
}

const rows: string[] = [];
const results: Record<string, unknown>[] = [];
try {
  for (const partitions of [0, 8]) {
    const prefix = `{spread${partitions}}`;
    const stores: MoneyStore[] = await Promise.all(
      Array.from({ length: STORES }, (_, i) =>
        partitions === 0
          ? openRedisStore(cluster.url, { ...base, prefix })
          : openPartitionedStore(cluster.url, { ...base, prefix, partitions, partition: i % partitions }),
      ),
    );
    await drive(stores, STORES * CONC * 4, 1000, 500); // warm: budgets, caps, scripts
    const homeOps = () =>
      stores
        .map((s) => (s as PartitionedMoneyStore).stats)
        .filter(Boolean)
        .reduce((a, s) => a + s.raises + s.reclaims, 0);
    const warmOps = homeOps();
    const before = await cpuUs();
    const t0 = performance.now();
    await drive(stores, CALLS, 1000, 500);
    const secs = (performance.now() - t0) / 1000;
    const after = await cpuUs();
    const mainOps = homeOps() - warmOps;
    const perCall = after.map((a, i) => (a - before[i]!) / CALLS);
    const busiest = Math.max(...perCall);
    const total = perCall.reduce((a, b) => a + b, 0);
    // To the ceiling: a new team whose budget has room for exactly 300 calls' worst case, asked
    // 1,200 calls from every store at once.
    await stores[0]!.setCeiling('team:edge', 300 * 1000, { actor: 'bench', reason: 'ceiling check' });
    const refusedAtCeiling = await drive(stores, 1200, 1000, 1000, (i) => ({
      team: 'edge',
      env: 'prod',
      seat: `seat${i}`,
    }));
    const team = await stores[0]!.getBudget('team:edge');
    const overshoot = Math.max(0, (team?.spent ?? 0) + (team?.reserved ?? 0) - (team?.ceiling ?? 0));
    const edgeOps = homeOps() - warmOps - mainOps;
    const layout = partitions === 0 ? 'one slot' : `${partitions} partitions`;
    rows.push(
      `| ${layout} | ${STORES} | ${Math.round(CALLS / secs)} | ${perCall.map((u) => u.toFixed(0)).join(' / ')} | ${total.toFixed(0)} | ${Math.round((100 * busiest) / total)}% | ${Math.round(1e6 / busiest)} | ${1200 - refusedAtCeiling} of 1200 (room: 300) | ${overshoot} | ${mainOps} / ${edgeOps} |`,
    );
    results.push({
      layout,
      stores: STORES,
      callsPerSec: CALLS / secs,
      redisUsPerCallByNode: perCall,
      admittedAtCeiling: 1200 - refusedAtCeiling,
      overshoot,
      homeOpsMain: mainOps,
      homeOpsAtCeiling: edgeOps,
    });
    await Promise.all(stores.map((s) => s.close()));
  }
  console.log(
    `\n${CALLS} calls (admit + settle each, no leases) from ${STORES} stores, ${CONC} at a time each, on a 3-node cluster\n`,
  );
  console.log(
    '| layout | stores | calls/s (one Node process) | Redis µs per call, node 1 / 2 / 3 | all nodes | busiest node | calls/s the busiest node carries | to a ceiling: admitted | overshoot | home steps (cap raises, take-backs): main run / to the ceiling |',
  );
  console.log('| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |');
  for (const r of rows) console.log(r);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(
    new URL('./results/cluster-spread.json', import.meta.url),
    `${JSON.stringify(results, null, 2)}\n`,
  );
} finally {
  for (const n of nodes) n.disconnect();
  await cluster.stop();
}
