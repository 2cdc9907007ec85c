/**
 * A/B at saturation on one row of the gateway benchmark: this checkout's `chokepoint serve` against
 * another commit's (`--against <ref>`) and/or itself under other node flags (`--b-flags "…"`), and
 * the bare node:http proxy, in alternating rounds on the same upstream (bench/replay-upstream.ts, the
 * gateway benchmark's), so that the machine's noise falls on every contender alike. For each: req/s
 * (median round), CPU µs a call of the whole process and of its main thread alone (schedstat), and
 * the share of the bare proxy's req/s within each round (median).
 *
 * Why the main thread apart: a gateway at saturation is held by its main thread (one core), while
 * work on other threads (V8's parallel GC helpers, a worker) runs on the second core beside the
 * load generator and the upstream.
 *
 *   node bin/run-ts.js bench/ab.ts [--latency 20] [--connections 200] [--stream] [--redis]
 *     [--against <ref>] [--b-flags "--max-semi-space-size=128"] [--rounds 6] [--secs 3] [--warmup 4]
 */

import { execSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { benchCli } from './lib/built.ts';
import { median, tinyMessages } from './lib/load.ts';
import {
  api,
  chokepointConfig,
  chokepointEnv,
  cleanRedis,
  cpuNs,
  type Proc,
  startEmulator,
  startNode,
  stop,
  stopAll,
} from './lib/procs.ts';
import type { Answer, Recording } from './replay-upstream.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : dflt;
};
const latency = Number(opt('latency', '20'));
const connections = Number(opt('connections', latency ? '200' : '50'));
const stream = argv.includes('--stream');
const redis = argv.includes('--redis');
const against = opt('against', '');
const bFlags = opt('b-flags', '').split(/\s+/).filter(Boolean);
/** `--proxy <file>` (repeatable): another bare proxy to measure (started as `<file> <upstream URL>`). */
const extra = argv.flatMap((a, i) => (a === '--proxy' ? [argv[i + 1]!] : []));
const rounds = Number(opt('rounds', '6'));
const secs = Number(opt('secs', '3'));
const warmup = Number(opt('warmup', '4'));
const TOKEN = 'cpo_bench-token-0123456789abcdef';
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const root = fileURLToPath(new URL('..', import.meta.url));
const runTs = join(root, 'bin/run-ts.js');
const body = tinyMessages(stream);

interface Side {
  name: string;
  url: string;
  pid: number;
  headers: Record<string, string>;
  rps: number[];
  cpu: number[];
  main: number[];
  share: number[];
}

/** That commit's tree, built (dist/), runnable with this checkout's dependencies. */
function builtCheckout(ref: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cp-ab-'));
  execSync(
    `git -C ${JSON.stringify(root)} archive ${JSON.stringify(ref)} | tar -x -C ${JSON.stringify(dir)}`,
  );
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  execSync(`${JSON.stringify(process.execPath)} bin/run-ts.js scripts/build.ts`, {
    cwd: dir,
    stdio: 'ignore',
  });
  return join(dir, 'dist/runtime/faces/cli/main.js');
}

async function record(cli: string): Promise<string> {
  const emulator = await startEmulator(cli, 0);
  try {
    const answer = async (b: string): Promise<Answer> => {
      const res = await fetch(`${emulator.url}/v1/messages`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-api-key': 'sk-emulator-local',
          'anthropic-version': '2023-06-01',
        },
        body: b,
      });
      const bytes = Buffer.from(await res.arrayBuffer());
      return {
        status: res.status,
        contentType: res.headers.get('content-type') ?? '',
        body: bytes.toString('base64'),
      };
    };
    const rec: Recording = {
      message: await answer(tinyMessages(false)),
      stream: await answer(tinyMessages(true)),
    };
    const file = join(mkdtempSync(join(tmpdir(), 'cp-ab-replay-')), 'recording.json');
    writeFileSync(file, JSON.stringify(rec));
    return file;
  } finally {
    await stop(emulator.proc);
  }
}

const mainNs = (pid: number) =>
  Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]);

let upstreamPid = 0;
/** The load generator's (this process's) and the upstream's CPU µs a call, per measurement. */
const harness: Array<{ gen: number; up: number }> = [];

async function drive(
  s: Side,
  seconds: number,
): Promise<{ ok: number; secs: number; cpu: number; main: number }> {
  const c0 = cpuNs([s.pid]);
  const m0 = mainNs(s.pid);
  const u0 = cpuNs([upstreamPid]);
  const g0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await autocannon({
    url: `${s.url}/v1/messages`,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...s.headers },
    body,
    connections,
    duration: seconds,
  });
  const took = (performance.now() - t0) / 1000;
  if (r.non2xx || r.errors) throw new Error(`${s.name}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  const g = process.cpuUsage(g0);
  const ok = r['2xx'];
  harness.push({ gen: (g.user + g.system) / ok, up: (cpuNs([upstreamPid]) - u0) / 1000 / ok });
  return { ok, secs: took, cpu: cpuNs([s.pid]) - c0, main: mainNs(s.pid) - m0 };
}

async function main() {
  const cli = benchCli();
  const upstream: Proc = await startNode([
    runTs,
    join(root, 'bench/replay-upstream.ts'),
    await record(cli),
    '--latency',
    String(latency),
  ]);
  upstreamPid = upstream.pid;
  const provider = `provider: { kind: emulator, baseUrl: "${upstream.url}", countTokensNearCeiling: false }`;
  const prefix = `{cpab${process.pid}}`;
  const store = redis ? `\nstore: { backend: redis, redisUrl: "${REDIS_URL}", prefix: "${prefix}" }` : '';
  const gateway = async (name: string, cliPath: string, flags: string[] = []): Promise<Side> => {
    const config = chokepointConfig(provider + store);
    const p = await startNode([...flags, cliPath, 'serve', '--port', '0'], {
      env: chokepointEnv(config, TOKEN, redis ? REDIS_URL : ''),
    });
    const who = { team: 'bench', env: 'bench', seat: 'bench' };
    const key = (await api<{ key: string }>(p.url, TOKEN, 'POST', '/api/keys', who)).key;
    return {
      name,
      url: p.url,
      pid: p.pid,
      headers: { 'x-api-key': key },
      rps: [],
      cpu: [],
      main: [],
      share: [],
    };
  };
  const bare = await startNode([runTs, join(root, 'bench/bare-proxy.ts'), upstream.url]);
  const sides: Side[] = [
    {
      name: 'bare node:http proxy',
      url: bare.url,
      pid: bare.pid,
      headers: {},
      rps: [],
      cpu: [],
      main: [],
      share: [],
    },
    await gateway('A (this checkout)', cli),
  ];
  if (against) sides.push(await gateway(`B (${against})`, builtCheckout(against)));
  for (const file of extra) {
    const p = await startNode([runTs, file, upstream.url]);
    sides.push({
      name: file.replace(/^.*\//, ''),
      url: p.url,
      pid: p.pid,
      headers: {},
      rps: [],
      cpu: [],
      main: [],
      share: [],
    });
  }
  if (bFlags.length) sides.push(await gateway(`A ${bFlags.join(' ')}`, cli, bFlags));
  console.error(
    `${latency} ms upstream, ${stream ? 'streaming' : 'non-streaming'}, ${connections} connections, ${redis ? 'Redis' : 'embedded'}; ${rounds} rounds of ${secs} s`,
  );
  for (const s of sides) await drive(s, warmup);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [...sides].reverse() : sides;
    const got = new Map<Side, number>();
    for (const s of order) {
      await drive(s, 1); // re-warm after idling
      const m = await drive(s, secs);
      const rps = m.ok / m.secs;
      got.set(s, rps);
      s.rps.push(rps);
      s.cpu.push(m.cpu / 1000 / m.ok);
      s.main.push(m.main / 1000 / m.ok);
    }
    for (const s of sides) s.share.push(got.get(s)! / got.get(sides[0]!)!);
    console.error(`round ${r + 1}: ${sides.map((s) => `${s.name} ${Math.round(got.get(s)!)}`).join(' · ')}`);
  }
  const f = (n: number) => n.toFixed(1);
  console.log(
    '| contender | req/s (median) | rounds | vs bare (median within rounds) | CPU µs/call | main thread µs/call |',
  );
  console.log('| --- | --: | --- | --: | --: | --: |');
  for (const s of sides)
    console.log(
      `| ${s.name} | ${Math.round(median(s.rps))} | ${s.rps.map(Math.round).join(', ')} | ${(median(s.share) * 100).toFixed(0)}% | ${f(median(s.cpu))} | ${f(median(s.main))} |`,
    );
  console.log(
    `load generator (autocannon, this process) ${f(median(harness.map((h) => h.gen)))} µs a call, upstream ${f(median(harness.map((h) => h.up)))} µs a call (medians)`,
  );
  if (redis) await cleanRedis(REDIS_URL, prefix);
}

try {
  await main();
} finally {
  await stopAll();
}
