/**
 * The gateway's hot path, one contender at a time, for profiling and quick before/after checks:
 * starts the emulator (zero latency) and one `chokepoint serve` (embedded, or Redis with
 * `--redis`), drives `/v1/messages` with autocannon at saturation and prints requests/s and the
 * serve process's CPU per request. `--profile <dir>` runs serve under `--cpu-prof` and leaves the
 * .cpuprofile there (open it in Chrome DevTools or speedscope).
 *
 *   node bin/run-ts.js bench/hotpath.ts [--redis] [--stream] [--duration 5] [--connections 20]
 *     [--profile /tmp/prof] [--bare] [--claude-code]
 *
 * `--rate N` measures a steady open-loop load of N req/s instead (next to direct), `--latency ms`
 * gives the emulator a fixed latency. `--seq` measures one call at a time instead (p50/p90/p99 to the microsecond, next to direct);
 * with it, `--metrics` prints serve's admission and call-duration histograms and `--verbose` its
 * output. `--node-flags "<flags>"` starts serve with extra node flags (e.g. --trace-gc).
 * `--bare` measures the bare node:http proxy instead, the limit for our design; `--hono` the bare
 * Hono + @hono/node-server + fetch proxy. `--idle-peer` (with `--redis`) starts a second, idle serve
 * on the same store: a replica beside the measured one. `--warmup s`: seconds of load before the
 * measured run (default 1).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { benchCli } from './lib/built.ts';
import { claudeCodeBodies } from './lib/claude-code-body.ts';
import { paced, r3, sequential } from './lib/load.ts';
import {
  api,
  chokepointConfig,
  chokepointEnv,
  cleanRedis,
  sample,
  startEmulator,
  startNode,
  stop,
  stopAll,
} from './lib/procs.ts';

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const duration = Number(opt('duration') ?? 5);
const connections = Number(opt('connections') ?? 20);
const profileDir = opt('profile');
const redis = flag('redis');
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const TOKEN = 'cpo_bench-token-0123456789abcdef';
const root = fileURLToPath(new URL('..', import.meta.url));
const cli = benchCli();

// `--claude-code`: the turns of a Claude Code session (~49 kB a call, streamed), sent in turn.
const bodies = flag('claude-code')
  ? claudeCodeBodies(8)
  : [
      JSON.stringify({
        model: 'claude-haiku-4-5',
        max_tokens: 64,
        ...(flag('stream') ? { stream: true } : {}),
        messages: [{ role: 'user', content: 'hi' }],
      }),
    ];
const body = bodies[0]!;

try {
  const emulator = await startEmulator(cli, opt('latency') ?? '0');
  let headers: Record<string, string> = {};
  let proc: Awaited<ReturnType<typeof startNode>>;
  if (flag('bare') || flag('hono')) {
    const script = flag('hono') ? 'bench/bare-hono-proxy.ts' : 'bench/bare-proxy.ts';
    if (profileDir) mkdirSync(profileDir, { recursive: true });
    const nodeFlags = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
    proc = await startNode([...nodeFlags, join(root, 'bin/run-ts.js'), join(root, script), emulator.url]);
  } else {
    const provider = `provider: { kind: emulator, baseUrl: "${emulator.url}", countTokensNearCeiling: false }`;
    const store = redis
      ? `\nstore: { backend: redis, redisUrl: "${REDIS_URL}", prefix: "{cphot${process.pid}}" }`
      : '';
    // `--config "<yaml lines>"`: more of serve's config (e.g. "store: { leases: { shipMs: 50 } }").
    const config = chokepointConfig(provider + store + (opt('config') ? `\n${opt('config')}` : ''));
    if (profileDir) mkdirSync(profileDir, { recursive: true });
    const nodeFlags = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
    if (opt('node-flags')) nodeFlags.push(...opt('node-flags')!.split(' '));
    proc = await startNode([...nodeFlags, cli, 'serve', '--port', '0'], {
      env: chokepointEnv(config, TOKEN, redis ? REDIS_URL : ''),
    });
    // `--idle-peer` (with --redis): a second serve on the same store, idle — a replica that is
    // there, as in bench/gateway.ts, where Redis ×1 runs beside the ×2 pair's other process.
    if (redis && flag('idle-peer')) {
      await startNode([cli, 'serve', '--port', '0'], { env: chokepointEnv(config, TOKEN, REDIS_URL) });
    }
    const who = { team: 'bench', env: 'bench', seat: 'bench' };
    headers = { 'x-api-key': (await api<{ key: string }>(proc.url, TOKEN, 'POST', '/api/keys', who)).key };
  }
  const { url, pid } = proc;
  const shoot = (seconds: number) =>
    autocannon({
      url: `${url}/v1/messages`,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers },
      body,
      ...(bodies.length > 1 ? { requests: bodies.map((b) => ({ body: b })) } : {}),
      connections,
      duration: seconds,
    });
  /** Stops serve with SIGINT first when profiling, so it writes its profile. */
  const finish = async () => {
    if (!profileDir) return;
    // serve's graceful stop may take a while (open connections); the profile is written at exit.
    const exited = new Promise((r) => proc.proc.once('exit', r));
    proc.proc.kill('SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    await stop(proc.proc);
    console.log(`profile written to ${profileDir}`);
  };
  if (opt('rate')) {
    // A steady open-loop load, next to direct-to-emulator in the same run.
    const v = { 'anthropic-version': '2023-06-01' };
    const rate = Number(opt('rate'));
    const d = {
      name: 'direct',
      urls: [emulator.url],
      headers: { 'x-api-key': 'sk-emulator-local', ...v },
      pids: [],
    };
    const direct = await paced(d, bodies, duration, rate);
    const mine = await paced(
      { name: 'contender', urls: [url], headers: { ...headers, ...v }, pids: [pid] },
      bodies,
      duration,
      rate,
    );
    const show = (q: typeof direct) => `p50 ${q.p50} p90 ${q.p90} p99 ${q.p99} ms, CPU ${q.cpuPct ?? '—'}%`;
    console.log(`@${rate} req/s direct:    ${show(direct)}\n@${rate} req/s contender: ${show(mine)}`);
    console.log(`added: p50 ${r3(mine.p50 - direct.p50)} p99 ${r3(mine.p99 - direct.p99)} ms`);
    if (flag('verbose')) console.log(proc.output().slice(-20_000));
    await finish();
    await cleanUp();
    process.exit(0);
  }
  if (flag('seq')) {
    // One call at a time, to the microsecond, next to direct-to-emulator in the same run.
    const secs = duration;
    const v = { 'anthropic-version': '2023-06-01' };
    const direct = await sequential(
      { name: 'direct', urls: [emulator.url], headers: { 'x-api-key': 'sk-emulator-local', ...v }, pids: [] },
      body,
      secs,
    );
    const mine = await sequential(
      { name: 'contender', urls: [url], headers: { ...headers, ...v }, pids: [pid] },
      body,
      secs,
    );
    const show = (q: typeof direct) => `p50 ${q.p50} p90 ${q.p90} p99 ${q.p99} p99.9 ${q.p999} ms (n=${q.n})`;
    console.log(`direct:    ${show(direct)}\ncontender: ${show(mine)}`);
    console.log(`added: p50 ${r3(mine.p50 - direct.p50)} p99 ${r3(mine.p99 - direct.p99)} ms`);
    if (flag('verbose')) console.log(proc.output().slice(-20_000));
    if (flag('metrics')) {
      const m = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      console.log(
        (await m.text())
          .split('\n')
          .filter((l) => /^chokepoint_(admission|call_duration)_seconds/.test(l))
          .join('\n'),
      );
    }
    await finish();
    await cleanUp();
    process.exit(0);
  }
  await shoot(Number(opt('warmup') ?? 1)); // warm up: JIT, pools, prepared statements (`--warmup s`)
  const redisPid = Number(spawnSync('pidof', ['redis-server'], { encoding: 'utf8' }).stdout.split(' ')[0]);
  const others = { emulator: [emulator.pid], ...(redis && redisPid ? { redis: [redisPid] } : {}) };
  const sampleOthers = () => Object.values(others).map((pids) => sample(pids).cpuMs);
  const before = sample([pid]);
  const othersBefore = sampleOthers();
  const selfBefore = process.cpuUsage();
  const r = await shoot(duration);
  const after = sample([pid]);
  const othersAfter = sampleOthers();
  const self = process.cpuUsage(selfBefore);
  const n = r.requests.total;
  const bad = r.non2xx + r.errors;
  const cpuUs = ((after.cpuMs - before.cpuMs) * 1000) / Math.max(1, n);
  console.log(
    `${flag('bare') ? 'bare node:http proxy' : flag('hono') ? 'bare Hono+fetch proxy' : redis ? 'chokepoint redis' : 'chokepoint embedded'}` +
      `${flag('stream') ? ' (stream)' : ''}: ${Math.round(r.requests.average)} req/s, ` +
      `p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, CPU ${Math.round(cpuUs)} µs/req, ` +
      `${bad} bad of ${n}, RSS ${Math.round(after.rss / 2 ** 20)} MB`,
  );
  const perReq = (ms: number) => `${Math.round((ms * 1000) / Math.max(1, n))} µs/req`;
  console.log(
    `  elsewhere: ${Object.keys(others)
      .map((name, i) => `${name} ${perReq(othersAfter[i]! - othersBefore[i]!)}`)
      .join(', ')}, load generator ${perReq((self.user + self.system) / 1000)}`,
  );
  if (flag('verbose')) console.log(proc.output().slice(-20_000));
  await finish();
} finally {
  await cleanUp();
}

/** Stops every process started here and deletes this run's Redis keys. */
async function cleanUp(): Promise<void> {
  await stopAll();
  if (redis) await cleanRedis(REDIS_URL, `{cphot${process.pid}}`);
}
