/**
 * A CPU profile of `chokepoint serve` at saturation: the emulator upstream (0 ms), one gateway
 * started under `node --cpu-prof`, autocannon driving one body for `--duration` s, then SIGTERM (the
 * profile is written on a clean exit). Prints the profile's path and its summary
 * (bench/lib/cpuprofile.ts): self time by place (the money store, node, each file), then self and
 * inclusive time per function, in µs per call answered.
 *
 *   node bin/run-ts.js bench/profile.ts [--bare | --redis] [--leases] [--body tiny|tiny-stream|claude-code]
 *     [--duration 8] [--connections 50] [--latency 0] [--top 40] [--out dir] [--alloc | --alloc-survivors] [--idle-peer]
 *     [--node-flag <flag>]… [--ship 200ms]
 *
 * `--alloc` profiles allocations instead of CPU: V8's sampling heap profiler over the measured run,
 * objects already collected included (bench/lib/alloc-sampler.mjs), summarised in bytes allocated
 * per call by place and by function (bench/lib/allocprofile.ts): what each call gives the garbage
 * collector to do. `--alloc-survivors`: only what outlived a scavenge (promoted, or still alive):
 * what each scavenge copies and the old generation collects.
 */
import { mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { summariseAlloc } from './lib/allocprofile.ts';
import { benchCli } from './lib/built.ts';
import { claudeCodeBodies } from './lib/claude-code-body.ts';
import { byCaller, byPlace, summarise } from './lib/cpuprofile.ts';
import {
  api,
  chokepointConfig,
  chokepointEnv,
  cleanRedis,
  cpuNs,
  startEmulator,
  startNode,
  stop,
  stopAll,
} from './lib/procs.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : dflt;
};
const redis = argv.includes('--redis');
const leases = argv.includes('--leases');
const bare = argv.includes('--bare');
const survivors = argv.includes('--alloc-survivors');
const alloc = argv.includes('--alloc') || survivors;
const bodyKind = opt('body', 'tiny');
const duration = Number(opt('duration', '8'));
const connections = Number(opt('connections', '50'));
const latency = opt('latency', '0');
const top = Number(opt('top', '40'));
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const TOKEN = 'cpo_bench-token-0123456789abcdef';
const root = fileURLToPath(new URL('..', import.meta.url));
const cli = benchCli();
const outDir = opt('out', join(tmpdir(), 'chokepoint-profiles'));
// `--node-flag <flag>` (repeatable): a V8/node flag for the gateway's process only, e.g.
// `--node-flag --max-semi-space-size=32`; `--node-flag --trace-gc` also prints what the garbage
// collector did in the measured run (count and ms of each kind of pause, per call).
const nodeFlags = argv.flatMap((a, i) => (a === '--node-flag' ? [argv[i + 1]!] : []));

const tiny = (stream: boolean) =>
  JSON.stringify({
    model: 'claude-haiku-4-5',
    max_tokens: 64,
    ...(stream ? { stream: true } : {}),
    messages: [{ role: 'user', content: 'hi' }],
  });
const bodies: string[] =
  bodyKind === 'claude-code' ? claudeCodeBodies(8) : [tiny(bodyKind === 'tiny-stream')];

async function main() {
  mkdirSync(outDir, { recursive: true });
  const emulator = await startEmulator(cli, latency);
  const provider = `provider: { kind: emulator, baseUrl: "${emulator.url}", countTokensNearCeiling: false }`;
  // `--ship 50ms`: how often settled calls go to the store (store.leases.ship).
  const ship = opt('ship', '');
  const leaseConf = ship ? `, leases: { ship: "${ship}" }` : leases ? ', leases: true' : '';
  const store = redis
    ? `\nstore: { backend: redis, redisUrl: "${REDIS_URL}", prefix: "{cpprof${process.pid}}"${leaseConf} }`
    : leaseConf
      ? `\nstore: { ${leaseConf.slice(2)} }`
      : '';
  const config = chokepointConfig(provider + store);
  const name = `${bare ? 'bare' : redis ? 'redis' : 'embedded'}${leases ? '-leases' : ''}-${bodyKind}${latency === '0' ? '' : `-${latency}ms`}`;
  // A folder of its own: every thread writes a profile (tsx's loader runs in one), the main
  // thread's is the largest.
  const dir = mkdtempSync(join(outDir, `${name}-`));
  const allocFile = join(dir, 'alloc.heapprofile');
  const prof = [
    ...nodeFlags,
    ...(alloc
      ? ['--import', join(root, 'bench/lib/alloc-sampler.mjs')]
      : ['--cpu-prof', '--cpu-prof-dir', dir]),
  ];
  const allocEnv = { CHOKEPOINT_ALLOC_OUT: allocFile, CHOKEPOINT_ALLOC_SURVIVORS: survivors ? '1' : '' };
  const gw = bare
    ? await startNode(
        [...prof, join(root, 'bin/run-ts.js'), join(root, 'bench/bare-proxy.ts'), emulator.url],
        {
          env: allocEnv,
        },
      )
    : await startNode([...prof, cli, 'serve', '--port', '0'], {
        env: { ...chokepointEnv(config, TOKEN, redis ? REDIS_URL : ''), ...allocEnv },
      });
  // `--idle-peer` (with --redis): a second serve on the same store, idle (bench/hotpath.ts has it too).
  if (redis && argv.includes('--idle-peer')) {
    await startNode([cli, 'serve', '--port', '0'], { env: chokepointEnv(config, TOKEN, REDIS_URL) });
  }
  const key = bare
    ? ''
    : (await api<{ key: string }>(gw.url, TOKEN, 'POST', '/api/keys', { team: 'p', env: 'p', seat: 'p' }))
        .key;
  // Warm-up, then the measured run.
  const run = (secs: number) =>
    new Promise<autocannon.Result>((resolve, reject) => {
      const requests = bodies.map((body) => ({ method: 'POST' as const, body }));
      autocannon(
        {
          url: `${gw.url}/v1/messages`,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': key },
          requests,
          connections,
          duration: secs,
        },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
    });
  await run(2);
  if (alloc) gw.proc.kill('SIGUSR2'); // sampling starts
  const cpu0 = cpuNs([gw.pid]);
  const out0 = gw.output().length;
  const t0 = performance.now();
  const res = await run(duration);
  const t1 = performance.now();
  const gcLines = gw.output().slice(out0);
  const cpuUs = (cpuNs([gw.pid]) - cpu0) / 1000;
  const calls = res['2xx'];
  const bad = res.non2xx + res.errors;
  if (alloc) {
    gw.proc.kill('SIGUSR2'); // the profile is written
    while (!gw.output().includes('allocation profile written')) await new Promise((r) => setTimeout(r, 100));
    await stopAll();
    process.stdout.write(
      `${name}: ${Math.round(calls / duration)} req/s, ${bad} failed, CPU ${Math.round(cpuUs / calls)} µs/call (this run, sampling)\n${allocFile}\n${summariseAlloc(allocFile, calls, top, survivors)}\n`,
    );
    return;
  }
  await stop(gw.proc);
  const t2 = performance.now();
  await stopAll();
  const file = readdirSync(dir)
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
  process.stdout.write(
    `${name}: ${Math.round(calls / duration)} req/s, ${bad} failed, CPU ${Math.round(cpuUs / calls)} µs/call (this run)\n${file}\n`,
  );
  // The profile covers start-up and warm-up too: only its samples in the measured run's window
  // (counted back from its end: the shutdown took t2 - t1) are summarised.
  const windowUs = { fromEndUs: (t2 - t0) * 1000, toEndUs: (t2 - t1) * 1000 };
  if (nodeFlags.includes('--trace-gc')) process.stdout.write(gcSummary(gcLines, calls));
  if (process.env.GC_DUMP) writeFileSync(process.env.GC_DUMP, gcLines);
  process.stdout.write(
    `-- by place --\n${byPlace(file, { calls, ...windowUs })}\n-- by caller of ours --\n${byCaller(file, { calls, ...windowUs })}\n${summarise(file, { top, calls, ...windowUs })}`,
  );
}

/** `--trace-gc` lines (`… ms: Scavenge 20.1 (40.2) -> 10.3 (41.2) MB, 1.2 / 0.0 ms …`) summed by kind. */
function gcSummary(text: string, calls: number): string {
  const kinds = new Map<string, { n: number; ms: number }>();
  for (const m of text.matchAll(/ms: ([A-Za-z-]+(?: \([a-z ]+\))?)[^,]*?MB, ([\d.]+) \/ ([\d.]+) ms/g)) {
    const k = kinds.get(m[1]!) ?? { n: 0, ms: 0 };
    k.n++;
    k.ms += Number(m[2]);
    kinds.set(m[1]!, k);
  }
  const rows = [...kinds].map(
    ([kind, { n, ms }]) =>
      `  ${kind}: ${n} pauses, ${ms.toFixed(1)} ms, ${((ms * 1000) / calls).toFixed(2)} µs/call`,
  );
  return `-- garbage collector in the measured run (--trace-gc) --\n${rows.join('\n')}\n`;
}

try {
  await main();
} finally {
  await stopAll();
  if (redis) await cleanRedis(REDIS_URL, `{cpprof${process.pid}}`);
}
