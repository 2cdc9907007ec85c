/**
 * Admission exactness under load, the zero-overshoot check: 4 `chokepoint serve` processes on one
 * Redis, one small team budget, 1,000 concurrent calls spread over the 4 processes at once. Checks
 * that the team's spend never passes its ceiling (overshoot 0), that nothing stays reserved, and
 * that the ledger's sum equals the emulator's own billing record (calls and micro-dollars).
 *
 *   node bin/run-ts.js bench/exactness.ts [--quick] [--cluster] [--calls 1000] [--processes 4]
 *
 * `--cluster` runs the same check on a real 3-node Redis Cluster it starts (and stops) itself, as
 * the tests do (test/helpers/redis-cluster.ts; needs redis-server and redis-cli), through a
 * `redis-cluster://` URL. Exits 1 when a check fails. Results: bench/results/exactness.json
 * (exactness-cluster.json with --cluster; neither written with --quick).
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { type RedisCluster, startRedisCluster } from '../test/helpers/redis-cluster.ts';
import { benchCli } from './lib/built.ts';
import { api, chokepointConfig, startNode, stopAll } from './lib/procs.ts';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const num = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const calls = num('calls', 1000);
const processes = num('processes', 4);
// Each call costs ~520 µ$ (about 20 input + 100 output tokens of Haiku): ~190 fit in $0.10.
const CEILING_USD = '0.10';
const CEILING_MICROS = 100_000;
const onCluster = argv.includes('--cluster');
const cluster: RedisCluster | undefined = onCluster ? await startRedisCluster({ nodes: 3 }) : undefined;
const REDIS_URL = cluster?.url ?? (process.env.REDIS_URL || 'redis://127.0.0.1:6379');
const TOKEN = 'cpo_bench-exactness-0123456789abcdef';
const EMULATOR_KEY = { 'x-api-key': 'sk-emulator-local' };
const root = fileURLToPath(new URL('..', import.meta.url));
const cli = benchCli();
const prefix = `{cpexact${process.pid}}`;

async function main() {
  const emulator = await startNode([cli, 'emulator', '--port', '0']);
  const config = chokepointConfig(
    `provider: { kind: emulator, baseUrl: "${emulator.url}", countTokensNearCeiling: false }\nstore: { backend: redis, redisUrl: "${REDIS_URL}", prefix: "${prefix}" }`,
  );
  const t0 = Date.now();
  const gateways = await Promise.all(
    Array.from({ length: processes }, () =>
      startNode([cli, 'serve', '--port', '0'], {
        env: {
          REDIS_URL,
          CHOKEPOINT_CONFIG: config.file,
          CHOKEPOINT_DATA_DIR: join(config.dir, 'data'),
          CHOKEPOINT_WORKFLOWS_DIR: config.dir,
          CHOKEPOINT_ADMIN_TOKEN: TOKEN,
          CHOKEPOINT_LOG_LEVEL: 'warn',
        },
        timeoutMs: 60_000,
      }),
    ),
  );
  process.stderr.write(`${processes} gateway processes up in ${Date.now() - t0} ms\n`);
  const first = gateways[0]!.url;
  const { key } = await api<{ key: string }>(first, TOKEN, 'POST', '/api/keys', {
    team: 'exact',
    env: 'prod',
    seat: 'burst',
  });
  await api(first, TOKEN, 'POST', '/api/budgets/team:exact/ceiling', {
    amount: CEILING_USD,
    reason: 'exactness bench',
  });
  await fetch(`${emulator.url}/_emulator/billing`, { method: 'DELETE', headers: EMULATOR_KEY });

  let ok = 0;
  const refused: Record<string, number> = {};
  const scopes: Record<string, number> = {};
  const errors: string[] = [];
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: calls }, async (_, i) => {
      const t = performance.now();
      try {
        const res = await fetch(`${gateways[i % processes]!.url}/v1/messages`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-api-key': key,
            'anthropic-version': '2023-06-01',
          },
          body: JSON.stringify({
            model: 'claude-haiku-4-5',
            max_tokens: 200,
            messages: [{ role: 'user', content: `call ${i} [[emulator:output_tokens=100]]` }],
          }),
        });
        const body = (await res.json()) as {
          chokepoint?: { code?: string; budget?: { scope?: string } };
        };
        latencies.push(performance.now() - t);
        if (res.ok) ok++;
        else if (body.chokepoint?.code) {
          const code = body.chokepoint.code;
          refused[code] = (refused[code] ?? 0) + 1;
          const scope = body.chokepoint.budget?.scope ?? '-';
          scopes[scope] = (scopes[scope] ?? 0) + 1;
        } else errors.push(`${res.status} ${JSON.stringify(body).slice(0, 200)}`);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }),
  );
  const wallMs = Math.round(performance.now() - started);

  const budget = (
    await api<{ budget: { spent_micros: number; reserved_micros: number; ceiling_micros: number } }>(
      gateways[processes - 1]!.url,
      TOKEN,
      'GET',
      '/api/budgets/team:exact',
    )
  ).budget;
  const ledger = (
    await api<{ entries: { cost: number; outcome: string }[] }>(
      first,
      TOKEN,
      'GET',
      '/api/ledger?scope=team:exact&outcome=ok&limit=1000',
    )
  ).entries;
  const billing = (await (
    await fetch(`${emulator.url}/_emulator/billing`, { headers: EMULATOR_KEY })
  ).json()) as { total_micros: number; calls: number };
  const ledgerMicros = ledger.reduce((n, e) => n + e.cost, 0);
  // After the money is counted: the kill check's calls are billed too.
  const kill = await killCheck(gateways.map((g) => g.url));
  latencies.sort((a, b) => a - b);
  const result = {
    measuredAt: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version },
    redis: cluster
      ? 'Redis Cluster, 3 primaries (local), money store over 8 partitions (the default)'
      : 'one Redis',
    processes,
    calls,
    ceilingMicros: budget.ceiling_micros ?? CEILING_MICROS,
    admitted: ok,
    refused,
    refusedScopes: scopes,
    errors: errors.length,
    spentMicros: budget.spent_micros,
    reservedMicros: budget.reserved_micros,
    ledgerOkEntries: ledger.length,
    ledgerMicros,
    billingCalls: billing.calls,
    billingMicros: billing.total_micros,
    overshootMicros: Math.max(0, budget.spent_micros - (budget.ceiling_micros ?? CEILING_MICROS)),
    wallMs,
    kill,
    p50Ms: Math.round(latencies[Math.floor(latencies.length * 0.5)] ?? 0),
    p99Ms: Math.round(latencies[Math.floor(latencies.length * 0.99)] ?? 0),
  };
  const checks: [string, boolean][] = [
    ['no errors', errors.length === 0],
    ['every call admitted or refused', ok + Object.values(refused).reduce((a, b) => a + b, 0) === calls],
    ['overshoot is 0 (spent ≤ ceiling)', result.overshootMicros === 0],
    ['nothing left reserved', budget.reserved_micros === 0],
    ['ledger sum = emulator billing', ledgerMicros === billing.total_micros],
    ['admitted calls = billed calls = ok ledger entries', ok === billing.calls && ok === ledger.length],
    ['spent = emulator billing', budget.spent_micros === billing.total_micros],
    [
      `kill switch: no call started after the kill returned was admitted (${kill.after} calls, ${kill.processes} processes)`,
      kill.admittedAfter === 0 && kill.after > 0,
    ],
  ];
  const usd = (m: number) => `$${(m / 1e6).toFixed(6)}`;
  console.log(
    `\n| processes | calls in flight | ceiling | admitted | refused | spent (ledger) | emulator billed | overshoot | wall time | p50 / p99 |`,
  );
  console.log('| --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |');
  console.log(
    `| ${processes} | ${calls} | ${usd(result.ceilingMicros)} | ${ok} | ${Object.entries(refused)
      .map(([k, v]) => `${v} ${k}`)
      .join(
        ', ',
      )} | ${usd(ledgerMicros)} | ${usd(billing.total_micros)} (${billing.calls} calls) | ${usd(result.overshootMicros)} | ${(wallMs / 1000).toFixed(1)} s | ${result.p50Ms} / ${result.p99Ms} ms |`,
  );
  console.log('');
  for (const [name, pass] of checks) console.log(`${pass ? 'ok  ' : 'FAIL'} ${name}`);
  if (errors.length) console.log(`errors (first 5): ${errors.slice(0, 5).join('; ')}`);
  if (!quick)
    writeFileSync(
      join(root, `bench/results/exactness${cluster ? '-cluster' : ''}.json`),
      `${JSON.stringify({ ...result, checks: Object.fromEntries(checks) }, null, 2)}\n`,
    );
  else process.stderr.write('(--quick: results not written)\n');
  return checks.every(([, pass]) => pass);
}

/**
 * The kill switch under load: a second team calls on every process (so each holds a budget lease on
 * it), calls keep going from 32 loops, and the team is killed through the first process's API. Every
 * call that starts after the kill returned, on any process, must be refused `killed`.
 */
async function killCheck(urls: string[]) {
  const { key } = await api<{ key: string }>(urls[0]!, TOKEN, 'POST', '/api/keys', {
    team: 'exact-kill',
    env: 'prod',
    seat: 'k',
  });
  const call = async (url: string) => {
    const res = await fetch(`${url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({
        model: 'claude-haiku-4-5',
        max_tokens: 20,
        messages: [{ role: 'user', content: 'kill check [[emulator:output_tokens=5]]' }],
      }),
    });
    const body = (await res.json()) as { chokepoint?: { code?: string } };
    return { ok: res.ok, code: body.chokepoint?.code };
  };
  // Two calls per process, one after the other: the second is admitted from a slice.
  for (const url of urls) for (let i = 0; i < 2; i++) await call(url);
  let killedAt = Number.POSITIVE_INFINITY;
  let after = 0;
  let admittedAfter = 0;
  let before = 0;
  let stop = false;
  const loops = Array.from({ length: 32 }, async (_, i) => {
    while (!stop) {
      const startedAt = performance.now();
      const r = await call(urls[i % urls.length]!);
      if (startedAt > killedAt) {
        after++;
        if (r.ok || r.code !== 'killed') admittedAfter++;
        if (after >= 400) stop = true;
      } else if (r.ok) before++;
    }
  });
  await new Promise((r) => setTimeout(r, 300));
  await api(urls[0]!, TOKEN, 'POST', '/api/kill-switches', {
    scope: 'team:exact-kill',
    reason: 'exactness bench',
  });
  killedAt = performance.now();
  await Promise.all(loops);
  return { processes: urls.length, admittedBefore: before, after, admittedAfter };
}

let passed = false;
try {
  passed = await main();
} finally {
  await stopAll();
  if (cluster) await cluster.stop();
  else {
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
}
process.exit(passed ? 0 : 1);
