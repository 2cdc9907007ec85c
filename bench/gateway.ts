/**
 * Gateway overhead, every contender in one run on one machine, with the same request bodies:
 *
 *   direct to the upstream (the floor) · a bare Hono + @hono/node-server + fetch proxy · a bare
 *   node:http proxy · Chokepoint embedded · Chokepoint Redis with 1 and with 2 gateway processes ·
 *   Portkey's open-source gateway (`@portkey-ai/gateway`, pointed at the upstream through its
 *   `x-portkey-custom-host` header) when it can be installed and answers.
 *
 * Upstream: its own process, with zero latency and with a fixed latency (20 ms): by default the
 * emulator's answers to the two bodies, recorded from a real emulator at the start of the run and
 * served from memory (bench/replay-upstream.ts), so that the upstream takes as little of the two
 * shared cores as a provider on another machine would; `--upstream emulator` forwards to the
 * emulator itself, whose per-call work then caps every contender.
 * Bodies: a small non-streaming call and the same call with `stream: true`. For each contender:
 * - requests/s at saturation (autocannon, `--connections` in flight at 0 ms upstream latency and
 *   `--latent-connections` at 20 ms: with 20 ms upstream, 50 connections cap any proxy at
 *   50 / 0.02 s = 2,500 req/s, which measures the load generator's concurrency, not the contender);
 * - one call at a time (`--sequential` seconds on one keep-alive connection): p50/p90/p99 and the
 *   latency added to direct's — the added latency the targets speak of;
 * - a steady open-loop load of `--rate` req/s spread evenly over time (not autocannon's
 *   overallRate, which sends each second's quota in a burst): p50/p90/p99, added latency, CPU
 *   (user+system from /proc/<pid>/stat) and peak RSS (/proc/<pid>/status) of the contender's own
 *   processes.
 *
 * Two gateway processes: the load is split between them (two autocannon instances with half the
 * connections each; the paced and one-at-a-time loads alternate between them), rather than a
 * balancer in front: a balancer would be one more hop and one more process on the same two cores,
 * and would measure the balancer.
 *
 * Before measuring, every contender gets one probe request per body; a contender that does not
 * answer it with a complete reply is skipped, and the reason (status, body) is recorded.
 *
 *   node bin/run-ts.js bench/gateway.ts [--quick] [--duration 4] [--connections 50] [--latent-connections 200] [--rate 500]
 *     [--sequential 2] [--latency 20] [--warmup 5] [--rounds 5] [--round-secs 2] [--rewarm 1] [--no-portkey]
 *     [--upstream replay|emulator]
 *   node bin/run-ts.js bench/gateway.ts --render bench/results/gateway.json   # its results page again, from the JSON
 *
 * Every contender gets `--warmup` seconds of saturating load before its first measurement in each
 * upstream-latency phase (each phase starts fresh processes). The contenders the bar compares then
 * get `--rounds` - 1 more saturation rounds in turn (see `rounds` below): their req/s is the
 * median round's, their share of a bare proxy the median of the shares within each round.
 *
 * Results: bench/results/gateway.{json,md,svg} (not written with --quick).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { benchCli, fromSource } from './lib/built.ts';
import {
  type Contender,
  type Measured,
  measured,
  median,
  paced,
  r2,
  r3,
  reqPerSec,
  type Sequential,
  sequential,
  shareOf,
  withinRounds,
} from './lib/load.ts';
import {
  api,
  chokepointConfig,
  chokepointEnv,
  cleanRedis,
  freePort,
  type Proc,
  sample,
  startEmulator,
  startNode,
  stop,
  stopAll,
} from './lib/procs.ts';
import { svgChart } from './lib/svg.ts';
import type { Answer, Recording } from './replay-upstream.ts';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const num = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const duration = num('duration', quick ? 1 : 4);
const connections = num('connections', 50);
const latentConnections = num('latent-connections', 200);
/** Seconds of saturating load before a contender's first measurement in each phase: a fresh serve
 * keeps getting faster for seconds (V8 optimising its call path, the heap growing to its load) —
 * after 1 s a Redis gateway did 2,400–2,600 req/s at 350–390 µs a call, after 5 s 3,000–4,600 at
 * 200–300 (bench/hotpath.ts --warmup) — while a bare proxy, with little code, is warm at once. */
const warmup = num('warmup', quick ? 0 : 5);
/** Connections in flight at saturation for an upstream latency (see the header). */
const connectionsAt = (upstreamLatency: number) => (upstreamLatency === 0 ? connections : latentConnections);
const rate = num('rate', 500);
const latencyMs = num('latency', 20);
const withPortkey = !argv.includes('--no-portkey');
/** What the contenders forward to (`--upstream`): `replay` (default), the emulator's answers
 * recorded once and served from memory by bench/replay-upstream.ts (~35 µs of CPU a call), or
 * `emulator`, the emulator itself (~80–120 µs a call: it does a provider's work per call, and on two
 * shared cores that work caps every contender's throughput — see bench/replay-upstream.ts). */
const upstreamKind = (() => {
  const i = argv.indexOf('--upstream');
  const v = i >= 0 ? argv[i + 1] : 'replay';
  if (v !== 'replay' && v !== 'emulator') throw new Error(`--upstream: replay or emulator, not ${v}`);
  return v;
})();
const DIRECT = 'direct to upstream';
const seqSecs = num('sequential', quick ? 1 : 2);
/** Saturation rounds per contender of ROUNDS_FOR (`--rounds`): after every contender's first
 * measurement in a phase, each gets `rounds - 1` more, in turn, the order reversed every other
 * round, so that a change in the machine's load (these cores are shared with other machines) falls
 * on every contender alike; its req/s is the median round, and its share of a bare proxy the median
 * of the shares within each round. */
const rounds = num('rounds', quick ? 1 : 5);
/** Seconds of each round after the first (`--round-secs`). */
const roundSecs = num('round-secs', 2);
/** Seconds of load, not measured, before every saturation measurement but a phase's first
 * (`--rewarm`): a process left idle (while the others are measured) gives memory back — V8 shrinks
 * its young generation, which then grows again under load, page by page — so a measurement that
 * starts cold counts the regrowth; every contender gets the same. */
const rewarm = num('rewarm', quick ? 0 : 1);
/** The contenders the bar compares (issue 21: Chokepoint against the bare proxies and Portkey). */
const ROUNDS_FOR = /^(bare |Chokepoint (embedded|Redis ×[12])$|Portkey)/;
const PORTKEY_VERSION = '1.15.2';
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const TOKEN = 'cpo_bench-token-0123456789abcdef';
const root = fileURLToPath(new URL('..', import.meta.url));
const runTs = join(root, 'bin/run-ts.js');
/** The CLI the contenders run (not needed to render a results file again). */
const cli = argv.includes('--render') ? '' : benchCli();

const BODIES = {
  'non-streaming': JSON.stringify({
    model: 'claude-haiku-4-5',
    max_tokens: 64,
    messages: [{ role: 'user', content: 'hi' }],
  }),
  streaming: JSON.stringify({
    model: 'claude-haiku-4-5',
    max_tokens: 64,
    stream: true,
    messages: [{ role: 'user', content: 'hi' }],
  }),
};
type BodyKind = keyof typeof BODIES;

export interface GatewayRow {
  upstreamLatencyMs: number;
  body: BodyKind;
  contender: string;
  skipped?: string;
  saturation?: Measured;
  /** req/s and CPU µs per request of each saturation round (the first is `saturation`'s). */
  rounds?: { reqPerSec: number; cpuUsPerReq: number | null }[];
  fixedRate?: Measured;
  addedP50Ms?: number;
  addedP99Ms?: number;
  /** One request at a time on one keep-alive connection: the latency a single call pays. */
  sequential?: Sequential;
  addedSeqP50Ms?: number;
  addedSeqP99Ms?: number;
  /** During the saturation run, per call answered: calls into the money store (admissions,
   * settlement batches, kill switch reads: chokepoint_lease_operations{op="store_calls"}) and, on
   * Redis, from INFO commandstats: script calls (evalsha, one atomic store step each) and every
   * command Redis ran, the scripts' own and the queues' included; and the µs Redis spent running
   * the CPU Redis's main thread spent (INFO cpu: commands, scripts and network I/O — what bounds
   * one node, and one hash slot). */
  storeCallsPerCall?: number;
  redisScriptsPerCall?: number;
  redisCommandsPerCall?: number;
  redisUsecPerCall?: number;
}

/** The money store's counters of a Chokepoint contender (summed over its processes). */
async function storeCounters(c: Contender): Promise<{ calls: number; store: number } | undefined> {
  if (!c.name.startsWith('Chokepoint')) return undefined;
  let calls = 0;
  let store = 0;
  for (const url of c.urls) {
    const text = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) =>
      r.text(),
    );
    const m = /^chokepoint_lease_operations\{op="store_calls"\} (\d+)/m.exec(text);
    store += m ? Number(m[1]) : 0;
    for (const line of text.matchAll(/^chokepoint_calls_total\{[^}]*\} (\d+)/gm)) calls += Number(line[1]);
  }
  return { calls, store };
}

/** INFO commandstats: script calls (evalsha/eval: one atomic store step each) and every command
 * Redis ran, the scripts' own and the queues' included. */
async function redisCommands(): Promise<{ all: number; top: number; usec: number }> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const info = await redis.info('commandstats');
    let all = 0;
    let top = 0;
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      const n = Number(m[2]);
      all += n;
      if (m[1] === 'evalsha' || m[1] === 'eval') top += n;
    }
    const cpu = await redis.info('cpu');
    const secs = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? Number.NaN);
    const usec = 1e6 * (secs('used_cpu_sys_main_thread') + secs('used_cpu_user_main_thread'));
    return { all, top, usec };
  } finally {
    redis.disconnect();
  }
}

async function drive(c: Contender, body: string, secs: number, connections: number): Promise<Measured> {
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let peakRss = 0;
  const before = sample(c.pids);
  const rssTimer = setInterval(() => {
    peakRss = Math.max(peakRss, sample(c.pids).rss);
  }, 250);
  const t0 = performance.now();
  await Promise.all(
    c.urls.map(
      (url, i) =>
        new Promise<void>((resolve, reject) => {
          const share = (n: number) => Math.floor(n / c.urls.length) + (i < n % c.urls.length ? 1 : 0);
          const inst = autocannon(
            {
              url: `${url}/v1/messages`,
              method: 'POST',
              headers: { 'content-type': 'application/json', ...c.headers },
              body,
              connections: share(connections),
              duration: secs,
            },
            (err) => (err ? reject(err) : resolve()),
          );
          inst.on('response', (_client, status, _bytes, ms) => {
            if (status >= 200 && status < 300) latencies.push(ms);
            else non2xx++;
          });
          inst.on('reqError', () => errors++);
        }),
    ),
  );
  const secsTaken = (performance.now() - t0) / 1000;
  clearInterval(rssTimer);
  return measured({ latencies, secsTaken, before, pids: c.pids, peakRss, non2xx, errors }, r2);
}

/** One request per body: skip the contender (with the reason) unless it answers completely. */
async function probe(c: Contender, kind: BodyKind): Promise<string | undefined> {
  try {
    const res = await fetch(`${c.urls[0]}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...c.headers },
      body: BODIES[kind],
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    const complete = kind === 'streaming' ? text.includes('message_stop') : text.includes('"usage"');
    if (res.ok && complete) return undefined;
    return `probe answered ${res.status}: ${text.slice(0, 300)}`;
  } catch (err) {
    return `probe failed: ${(err as Error).message}`;
  }
}

/**
 * Portkey's gateway as its authors ship it: the versions its own package-lock.json at v1.15.2
 * resolves for the two packages on its request path (@hono/node-server 1.13.5, hono 4.9.7). A bare
 * `npm install` takes the newest @hono/node-server 1.x instead, whose Response hands back a fetched
 * response's own (immutable) Headers, and Portkey 1.15.2 then fails every streaming call with
 * `TypeError: immutable` when it appends its x-portkey-* headers.
 */
const PORTKEY_PINS = { '@hono/node-server': '1.13.5', hono: '4.9.7' };

function ensurePortkey(): { entry?: string; why?: string } {
  const dir = process.env.PORTKEY_GATEWAY_DIR || join(tmpdir(), 'chokepoint-bench-portkey');
  const entry = join(dir, 'node_modules/@portkey-ai/gateway/build/start-server.js');
  const manifest = `${JSON.stringify({
    private: true,
    dependencies: { '@portkey-ai/gateway': PORTKEY_VERSION },
    overrides: PORTKEY_PINS,
  })}\n`;
  const manifestPath = join(dir, 'package.json');
  if (existsSync(entry) && existsSync(manifestPath) && readFileSync(manifestPath, 'utf8') === manifest)
    return { entry };
  mkdirSync(dir, { recursive: true });
  for (const old of ['node_modules', 'package-lock.json'])
    rmSync(join(dir, old), { recursive: true, force: true });
  writeFileSync(manifestPath, manifest);
  process.stderr.write(`installing @portkey-ai/gateway@${PORTKEY_VERSION} into ${dir} ...\n`);
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 180_000,
  });
  if (r.status !== 0 || !existsSync(entry))
    return { why: `npm install @portkey-ai/gateway failed: ${(r.stderr || String(r.error)).slice(-500)}` };
  return { entry };
}

let recording: string | undefined;

/** The emulator's answers to the two bodies, recorded from a real emulator once per run. */
async function recordAnswers(): Promise<string> {
  if (recording) return recording;
  const emulator = await startEmulator(cli, 0);
  try {
    const answer = async (body: string): Promise<Answer> => {
      const res = await fetch(`${emulator.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...ANTHROPIC },
        body,
      });
      const bytes = Buffer.from(await res.arrayBuffer());
      if (res.status !== 200) throw new Error(`the emulator answered ${res.status}: ${bytes}`);
      return {
        status: res.status,
        contentType: res.headers.get('content-type') ?? '',
        body: bytes.toString('base64'),
      };
    };
    const rec: Recording = {
      message: await answer(BODIES['non-streaming']),
      stream: await answer(BODIES.streaming),
    };
    recording = join(mkdtempSync(join(tmpdir(), 'cp-bench-replay-')), 'recording.json');
    writeFileSync(recording, JSON.stringify(rec));
    return recording;
  } finally {
    await stop(emulator.proc);
  }
}

function startUpstream(upstreamLatency: number): Promise<Proc> {
  if (upstreamKind === 'emulator') return startEmulator(cli, upstreamLatency);
  return recordAnswers().then((file) =>
    startNode([runTs, join(root, 'bench/replay-upstream.ts'), file, '--latency', String(upstreamLatency)]),
  );
}

const ANTHROPIC = { 'x-api-key': 'sk-emulator-local', 'anthropic-version': '2023-06-01' };

async function contendersFor(upstreamLatency: number, portkeyEntry: string | undefined, portkeyWhy?: string) {
  const upstream = await startUpstream(upstreamLatency);
  const [hono, bare] = await Promise.all([
    startNode([runTs, join(root, 'bench/bare-hono-proxy.ts'), upstream.url]),
    startNode([runTs, join(root, 'bench/bare-proxy.ts'), upstream.url]),
  ]);
  const serveEnv = (config: ReturnType<typeof chokepointConfig>, redis: boolean) =>
    chokepointEnv(config, TOKEN, redis ? REDIS_URL : '');
  const provider = `provider: { kind: emulator, baseUrl: "${upstream.url}", countTokensNearCeiling: false }`;
  const embeddedConfig = chokepointConfig(provider);
  const prefix = `{cpbench${process.pid}x${upstreamLatency}}`;
  const redisConfig = chokepointConfig(
    `${provider}\nstore: { backend: redis, redisUrl: "${REDIS_URL}", prefix: "${prefix}" }`,
  );
  // The same two stores with budget leases off (store.leases: false): every call admitted and
  // settled in the store, the baseline the leases (the default) are measured against.
  const embeddedPerCall = chokepointConfig(`${provider}\nstore: { leases: false }`);
  const redisPerCall = chokepointConfig(
    `${provider}\nstore: { backend: redis, redisUrl: "${REDIS_URL}", prefix: "${prefix}l", leases: false }`,
  );
  const [embedded, redisA, redisB, embeddedL, redisL] = await Promise.all([
    startNode([cli, 'serve', '--port', '0'], { env: serveEnv(embeddedConfig, false) }),
    startNode([cli, 'serve', '--port', '0'], { env: serveEnv(redisConfig, true) }),
    startNode([cli, 'serve', '--port', '0'], { env: serveEnv(redisConfig, true) }),
    startNode([cli, 'serve', '--port', '0'], { env: serveEnv(embeddedPerCall, false) }),
    startNode([cli, 'serve', '--port', '0'], { env: serveEnv(redisPerCall, true) }),
  ]);
  const who = { team: 'bench', env: 'bench', seat: 'bench' };
  const embeddedKey = (await api<{ key: string }>(embedded.url, TOKEN, 'POST', '/api/keys', who)).key;
  const redisKey = (await api<{ key: string }>(redisA.url, TOKEN, 'POST', '/api/keys', who)).key;
  const embeddedLKey = (await api<{ key: string }>(embeddedL.url, TOKEN, 'POST', '/api/keys', who)).key;
  const redisLKey = (await api<{ key: string }>(redisL.url, TOKEN, 'POST', '/api/keys', who)).key;
  let portkey: Proc | undefined;
  let portkeySkip = portkeyWhy;
  if (portkeyEntry) {
    const port = await freePort();
    try {
      portkey = await startNode([portkeyEntry, `--port=${port}`, '--headless'], {
        env: { NODE_ENV: 'production' },
        ready: /(Ready for connections|running at)/,
        url: `http://127.0.0.1:${port}`,
      });
    } catch (err) {
      portkeySkip = `Portkey did not start: ${(err as Error).message.slice(0, 500)}`;
    }
  }
  const list: Contender[] = [
    { name: DIRECT, urls: [upstream.url], headers: ANTHROPIC, pids: [] },
    { name: 'bare Hono+fetch proxy', urls: [hono.url], headers: {}, pids: [hono.pid] },
    { name: 'bare node:http proxy', urls: [bare.url], headers: {}, pids: [bare.pid] },
    {
      name: 'Chokepoint embedded',
      urls: [embedded.url],
      headers: { 'x-api-key': embeddedKey },
      pids: [embedded.pid],
    },
    {
      name: 'Chokepoint Redis ×1',
      urls: [redisA.url],
      headers: { 'x-api-key': redisKey },
      pids: [redisA.pid],
    },
    {
      name: 'Chokepoint Redis ×2',
      urls: [redisA.url, redisB.url],
      headers: { 'x-api-key': redisKey },
      pids: [redisA.pid, redisB.pid],
    },
    {
      name: 'Chokepoint embedded, per call',
      urls: [embeddedL.url],
      headers: { 'x-api-key': embeddedLKey },
      pids: [embeddedL.pid],
    },
    {
      name: 'Chokepoint Redis ×1, per call',
      urls: [redisL.url],
      headers: { 'x-api-key': redisLKey },
      pids: [redisL.pid],
    },
  ];
  if (withPortkey)
    list.push({
      name: `Portkey gateway ${PORTKEY_VERSION}`,
      urls: [portkey?.url ?? ''],
      headers: {
        ...ANTHROPIC,
        'x-portkey-provider': 'anthropic',
        'x-portkey-custom-host': `${upstream.url}/v1`,
      },
      pids: portkey ? [portkey.pid] : [],
      skip: portkey ? undefined : portkeySkip,
    });
  return { list, prefix, portkey };
}

const fmt = (n: number | null | undefined, d = 0) =>
  n === null || n === undefined || Number.isNaN(n)
    ? '—'
    : n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

const ops = (r: GatewayRow): string => {
  if (r.storeCallsPerCall === undefined) return '—';
  const redis =
    r.redisCommandsPerCall !== undefined
      ? ` (${fmt(r.redisScriptsPerCall, 3)}, ${fmt(r.redisCommandsPerCall, 1)}, ${fmt(r.redisUsecPerCall, 1)} µs)`
      : '';
  return `${fmt(r.storeCallsPerCall, 3)}${redis}`;
};

const cpuPerReq = (r: GatewayRow) => {
  const xs = (r.rounds ?? []).flatMap((x) => (x.cpuUsPerReq === null ? [] : [x.cpuUsPerReq]));
  return xs.length ? Math.round(median(xs)) : r.saturation?.cpuUsPerReq;
};

/** Each round's req/s, when there were several. */
const roundsNote = (r: GatewayRow) =>
  r.rounds && r.rounds.length > 1 ? ` <sub>(${r.rounds.map((x) => fmt(x.reqPerSec)).join(', ')})</sub>` : '';

export function markdown(
  rows: GatewayRow[],
  meta: { connections: number; latentConnections?: number; rate: number; rounds?: number },
): string {
  const out: string[] = [];
  const groups = [...new Set(rows.map((r) => `${r.upstreamLatencyMs}|${r.body}`))];
  for (const g of groups) {
    const [lat, body] = g.split('|');
    const rs = rows.filter((r) => `${r.upstreamLatencyMs}|${r.body}` === g);
    const bare = rs.find((r) => r.contender.startsWith('bare Hono'));
    const node = rs.find((r) => r.contender.startsWith('bare node'));
    const portkey = rs.find((r) => r.contender.startsWith('Portkey') && !r.skipped);
    out.push(
      `\n**Upstream latency ${lat} ms, ${body}** (saturation: ${lat === '0' ? meta.connections : (meta.latentConnections ?? meta.connections)} connections; latency and CPU at ${meta.rate} req/s offered${(meta.rounds ?? 1) > 1 ? `; req/s and CPU µs/req of the bare proxies, Chokepoint embedded and Redis and Portkey: the median of ${meta.rounds} rounds taken in turn, each round's req/s in small print, and their share of a bare proxy, CPU per call against the node:http proxy's and req/s against Portkey's the median of the ratios within each round` : ''})\n`,
      '| contender | req/s | vs Hono proxy | vs node:http proxy | vs Portkey | store calls / call (Redis: scripts, all commands, Redis CPU) | one at a time p50 / p99 ms | added one at a time p50 / p99 ms | p50 / p90 / p99 ms @ rate | added @ rate p50 / p99 ms | CPU % @ rate | CPU µs/req | CPU vs node:http proxy | RSS MB |',
      '| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |',
    );
    for (const r of rs) {
      if (r.skipped) {
        out.push(
          `| ${r.contender} | skipped: ${r.skipped.replace(/\|/g, '/').slice(0, 160)} | | | | | | | | | | | | |`,
        );
        continue;
      }
      const s = r.saturation!;
      const f = r.fixedRate!;
      const q = r.sequential;
      const vs = (b?: GatewayRow) => {
        const share = shareOf(r, b);
        return share === undefined ? '—' : `${Math.round(100 * share)}%`;
      };
      const bad = s.non2xx + s.errors + f.non2xx + f.errors;
      out.push(
        `| ${r.contender} | ${fmt(reqPerSec(r))}${bad ? ` (${bad} failed)` : ''}${roundsNote(r)} | ${vs(bare)} | ${vs(node)} | ${times(timesPortkey(r, portkey))} | ${ops(r)} | ${fmt(q?.p50, 3)} / ${fmt(q?.p99, 3)} | ${fmt(r.addedSeqP50Ms, 3)} / ${fmt(r.addedSeqP99Ms, 3)} | ${fmt(f.p50, 2)} / ${fmt(f.p90, 2)} / ${fmt(f.p99, 2)} | ${fmt(r.addedP50Ms, 2)} / ${fmt(r.addedP99Ms, 2)} | ${fmt(f.cpuPct)} | ${fmt(cpuPerReq(r))} | ${times(cpuVs(r, node))} | ${fmt(s.rssMb)} |`,
      );
    }
  }
  out.push(barTable(rows));
  return out.join('\n');
}

const times = (x: number | undefined) => (x === undefined ? '—' : `${x.toFixed(2)}×`);
/** CPU per call against `base`'s, the median of the ratios within each round. */
const cpuVs = (r: GatewayRow, base: GatewayRow | undefined) =>
  r === base ? undefined : withinRounds(r, base, (x) => x.cpuUsPerReq);
/** req/s against Portkey's, the median of the ratios within each round. */
const timesPortkey = (r: GatewayRow, portkey: GatewayRow | undefined) =>
  // 'direct to emulator' in results written before session 22.
  r === portkey || /^direct to /.test(r.contender) ? undefined : shareOf(r, portkey);

/**
 * Issue 21's bar, from this run alone: for Chokepoint embedded and Redis ×1 in each table,
 * throughput ≥ 50% of the bare node:http proxy's, CPU per call ≤ 2× its, throughput ≥ 6× Portkey's
 * (each the median of the ratios within each round).
 */
function barTable(rows: GatewayRow[]): string {
  const out = [
    "\n**Against issue 21's bar** (this run: share of the bare node:http proxy's req/s ≥ 50%, CPU per call ≤ 2× its, req/s ≥ 6× Portkey's; ✓ met, ✗ not)\n",
    '| upstream, body | contender | vs node:http proxy | CPU vs node:http proxy | vs Portkey |',
    '| --- | --- | --: | --: | --: |',
  ];
  const mark = (x: number | undefined, ok: (x: number) => boolean, show: string) =>
    x === undefined ? '—' : `${show} ${ok(x) ? '✓' : '✗'}`;
  for (const g of [...new Set(rows.map((r) => `${r.upstreamLatencyMs}|${r.body}`))]) {
    const [lat, body] = g.split('|');
    const rs = rows.filter((r) => `${r.upstreamLatencyMs}|${r.body}` === g && !r.skipped);
    const node = rs.find((r) => r.contender.startsWith('bare node'));
    const portkey = rs.find((r) => r.contender.startsWith('Portkey'));
    for (const r of rs.filter((x) => /^Chokepoint (embedded|Redis ×1)$/.test(x.contender))) {
      const share = shareOf(r, node);
      const cpu = cpuVs(r, node);
      const pk = timesPortkey(r, portkey);
      out.push(
        `| ${lat} ms, ${body} | ${r.contender} | ${mark(share, (x) => x >= 0.5, `${Math.round(100 * (share ?? 0))}%`)} | ${mark(cpu, (x) => x <= 2, times(cpu))} | ${mark(pk, (x) => x >= 6, times(pk))} |`,
      );
    }
  }
  return out.join('\n');
}

type Meta = {
  measuredAt: string;
  machine: { cpus: number; model: string; node: string; loadAverageAtStart: number[] };
  command: string;
  chokepoint: string;
  upstream?: string;
  connections: number;
  latentConnections?: number;
  rate: number;
  rounds?: number;
  portkey: { status: string };
};

/** bench/results/gateway.md: the run's tables and its bar. */
function resultsPage(meta: Meta, rows: GatewayRow[]): string {
  const upstream = meta.upstream ?? 'the emulator';
  return `# Gateway benchmark\n\n${meta.measuredAt}, ${meta.machine.cpus} × ${meta.machine.model}, Node ${meta.machine.node} (load average at start ${meta.machine.loadAverageAtStart.join(' / ')}; the load generator, the upstream, Redis and every contender share these cores). \`${meta.command}\`; Chokepoint runs ${meta.chokepoint}; upstream: ${upstream}.\n${markdown(rows, meta)}\n\nPortkey: ${meta.portkey.status}\n`;
}

async function main() {
  const renderAt = argv.indexOf('--render');
  if (renderAt >= 0) {
    // A results file rendered again (what the tables show changed, the run did not).
    const { meta, rows } = JSON.parse(readFileSync(argv[renderAt + 1]!, 'utf8')) as {
      meta: Meta;
      rows: GatewayRow[];
    };
    process.stdout.write(resultsPage(meta, rows));
    return;
  }
  const started = Date.now();
  const startLoad = loadavg().map((l) => Math.round(l * 100) / 100);
  let portkeyEntry: string | undefined;
  let portkeyWhy: string | undefined;
  if (withPortkey) ({ entry: portkeyEntry, why: portkeyWhy } = ensurePortkey());
  const rows: GatewayRow[] = [];
  const portkeyLogs: string[] = [];
  for (const upstreamLatency of [0, latencyMs]) {
    const secs = upstreamLatency === 0 ? duration : Math.max(1, Math.round(duration * 0.75));
    const { list, prefix, portkey } = await contendersFor(upstreamLatency, portkeyEntry, portkeyWhy);
    try {
      for (const c of list) {
        let warmed = false;
        for (const body of Object.keys(BODIES) as BodyKind[]) {
          const skipped = c.skip ?? (await probe(c, body));
          if (skipped) {
            rows.push({ upstreamLatencyMs: upstreamLatency, body, contender: c.name, skipped });
            process.stderr.write(
              `${upstreamLatency} ms ${body} ${c.name}: skipped (${skipped.slice(0, 200)})\n`,
            );
            continue;
          }
          if (!warmed && warmup > 0) await drive(c, BODIES[body], warmup, connectionsAt(upstreamLatency));
          else if (rewarm > 0) await drive(c, BODIES[body], rewarm, connectionsAt(upstreamLatency));
          warmed = true;
          const before = await storeCounters(c);
          const redisBefore = c.name.includes('Redis') ? await redisCommands() : undefined;
          const saturation = await drive(c, BODIES[body], secs, connectionsAt(upstreamLatency));
          const after = await storeCounters(c);
          const redisAfter = redisBefore ? await redisCommands() : undefined;
          const fixedRate = await paced(c, BODIES[body], secs, rate);
          const seq = await sequential(c, BODIES[body], seqSecs);
          const row: GatewayRow = {
            upstreamLatencyMs: upstreamLatency,
            body,
            contender: c.name,
            saturation,
            rounds: [{ reqPerSec: saturation.reqPerSec, cpuUsPerReq: saturation.cpuUsPerReq }],
            fixedRate,
            sequential: seq,
          };
          if (before && after && after.calls > before.calls) {
            const n = after.calls - before.calls;
            row.storeCallsPerCall = r3((after.store - before.store) / n);
            if (redisBefore && redisAfter) {
              row.redisScriptsPerCall = r3((redisAfter.top - redisBefore.top) / n);
              row.redisCommandsPerCall = r3((redisAfter.all - redisBefore.all) / n);
              row.redisUsecPerCall = r3((redisAfter.usec - redisBefore.usec) / n);
            }
          }
          const directRow = rows.find(
            (r) => r.upstreamLatencyMs === upstreamLatency && r.body === body && r.contender === DIRECT,
          );
          const direct = directRow?.fixedRate;
          if (direct) {
            row.addedP50Ms = r3(fixedRate.p50 - direct.p50);
            row.addedP99Ms = r3(fixedRate.p99 - direct.p99);
          }
          if (directRow?.sequential) {
            row.addedSeqP50Ms = r3(seq.p50 - directRow.sequential.p50);
            row.addedSeqP99Ms = r3(seq.p99 - directRow.sequential.p99);
          }
          rows.push(row);
          process.stderr.write(
            `${upstreamLatency} ms ${body} ${c.name}: ${saturation.reqPerSec} req/s; @${rate}: p50 ${fixedRate.p50} p99 ${fixedRate.p99} ms, cpu ${fixedRate.cpuPct ?? '—'}%; one at a time: p50 ${seq.p50} p99 ${seq.p99} ms\n`,
          );
        }
      }
      // The rounds after the first: every contender of the bar in turn, each body.
      for (let round = 2; round <= rounds; round++) {
        const order = list.filter((c) => ROUNDS_FOR.test(c.name));
        if (round % 2 === 0) order.reverse();
        for (const body of Object.keys(BODIES) as BodyKind[]) {
          for (const c of order) {
            const row = rows.find(
              (r) =>
                r.upstreamLatencyMs === upstreamLatency &&
                r.body === body &&
                r.contender === c.name &&
                r.saturation,
            );
            if (!row) continue;
            if (rewarm > 0) await drive(c, BODIES[body], rewarm, connectionsAt(upstreamLatency));
            const m = await drive(c, BODIES[body], roundSecs, connectionsAt(upstreamLatency));
            row.rounds!.push({ reqPerSec: m.reqPerSec, cpuUsPerReq: m.cpuUsPerReq });
            process.stderr.write(
              `${upstreamLatency} ms ${body} ${c.name}: round ${round}: ${m.reqPerSec} req/s\n`,
            );
          }
        }
      }
      if (portkey) portkeyLogs.push(portkey.output().slice(-1500));
    } finally {
      await stopAll();
      await cleanRedis(REDIS_URL, prefix);
      await cleanRedis(REDIS_URL, `${prefix}l`);
    }
  }
  const meta = {
    measuredAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      loadAverageAtStart: startLoad,
    },
    command: 'npm run bench -- --only gateway',
    chokepoint: fromSource ? 'the sources through tsx (--source)' : 'the compiled package (dist/)',
    durationSecs: duration,
    warmupSecs: warmup,
    rounds,
    roundSecs,
    rewarmSecs: rewarm,
    roundsFor: String(ROUNDS_FOR),
    connections,
    latentConnections,
    rate,
    upstreamLatenciesMs: [0, latencyMs],
    upstream:
      upstreamKind === 'replay'
        ? "the emulator's answers, recorded once and served from memory (bench/replay-upstream.ts)"
        : 'the emulator',
    twoProcesses: 'autocannon connections and offered rate split between the two gateway processes',
    portkey: {
      version: PORTKEY_VERSION,
      status: portkeyWhy
        ? `not run: ${portkeyWhy}`
        : rows
            .filter((r) => r.contender.startsWith('Portkey'))
            .map(
              (r) =>
                `${r.upstreamLatencyMs} ms ${r.body}: ${r.skipped ? `skipped: ${r.skipped}` : 'measured'}`,
            )
            .join('; '),
      stderrTail: portkeyLogs.map((l) =>
        l
          .split('\n')
          .filter((x) => /Error|error/.test(x))
          .slice(0, 6),
      ),
    },
    totalSecs: Math.round((Date.now() - started) / 1000),
  };
  const md = markdown(rows, meta);
  console.log(md);
  console.log(
    `\n(${meta.totalSecs} s; ${duration} s per measurement; two processes: ${meta.twoProcesses}; CPU and RSS are the contender's own processes)`,
  );
  if (quick) {
    process.stderr.write('(--quick: results not written)\n');
    return;
  }
  const dir = join(root, 'bench/results');
  writeFileSync(join(dir, 'gateway.json'), `${JSON.stringify({ meta, rows }, null, 2)}\n`);
  writeFileSync(join(dir, 'gateway.md'), resultsPage(meta, rows));
  writeFileSync(join(dir, 'gateway.svg'), svgChart(rows, { rate, latencyMs }));
}

try {
  await main();
} finally {
  await stopAll();
  if (recording) rmSync(dirname(recording), { recursive: true, force: true });
}
