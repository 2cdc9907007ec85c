/**
 * What one call costs the gateway in CPU, beside a bare node:http keep-alive proxy measured in the
 * same run on the same machine: the ratio is the figure to watch (absolute µs move with the
 * machine and its load; the ratio much less).
 *
 * Two bodies: a tiny non-streaming call, and the turns of a Claude Code session (~49 kB a call,
 * most of it an unchanged prefix of tools and system prompt, `stream: true`; bench/lib/
 * claude-code-body.ts). The upstream is the emulator, zero latency unless `--latency`. Each contender gets
 * `--connections` calls in flight (closed loop, as bench/hotpath.ts; or a steady `--rate` calls/s)
 * for `--duration` s (after a warm-up); its CPU is read from /proc/<pid>/task/<tid>/schedstat
 * (every thread, to the nanosecond) before and after, and divided by the calls answered. Short
 * rounds alternate between the contenders so that a change in the machine's load falls on all of
 * them; the ratio is taken within each round, and the median round is reported.
 *
 * `--against <git ref>` adds that commit's `chokepoint serve` as a contender (its tree extracted
 * with `git archive` into a temporary folder, this checkout's node_modules linked in): before and
 * after in one run.
 *
 *   node bin/run-ts.js bench/percall.ts [--quick] [--connections 10 | --rate 300] [--duration 2] [--latency 0]
 *     [--rounds 9] [--against <ref>] [--only tiny|claude-code] [--no-http]
 *
 * Then the body work alone (parse, check, fingerprint, drift, the estimate's walk, the cache
 * verdict, the log line) of each checkout, in this process, interleaved: the part that is ours,
 * without the machine's noise (`--no-http`: only this).
 *
 * Results: bench/results/percall.{json,md} (not written with --quick).
 */
import { execSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { benchCli } from './lib/built.ts';
import { claudeCodeBodies } from './lib/claude-code-body.ts';
import { type Contender, paced } from './lib/load.ts';
import {
  api,
  chokepointConfig,
  chokepointEnv,
  cpuNs,
  startEmulator,
  startNode,
  stopAll,
} from './lib/procs.ts';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const rate = opt('rate') ? Number(opt('rate')) : undefined;
const connections = Number(opt('connections') ?? 10);
const duration = Number(opt('duration') ?? 2);
const rounds = Number(opt('rounds') ?? (quick ? 3 : 9));
const against = opt('against');
const only = opt('only');
// `--latency 20`: the emulator answers after 20 ms (as the gateway benchmark's second upstream).
const latency = Number(opt('latency') ?? 0);
const TOKEN = 'cpo_bench-token-0123456789abcdef';
const root = fileURLToPath(new URL('..', import.meta.url));
const runTs = join(root, 'bin/run-ts.js');

const cc = claudeCodeBodies(8);
const BODIES: Record<string, string[]> = {
  tiny: [
    JSON.stringify({
      model: 'claude-haiku-4-5',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi' }],
    }),
  ],
  'claude-code': cc,
};
const meanBytes = (b: string[]) => Math.round(b.reduce((n, x) => n + Buffer.byteLength(x), 0) / b.length);

export interface PerCallRow {
  body: string;
  bodyBytes: number;
  contender: string;
  /** CPU µs per call, the median round. */
  cpuUs: number;
  /** cpuUs / the bare proxy's cpuUs in the same round (median over rounds). */
  ratio: number;
  rounds: number[];
  bad: number;
}

/** A checkout of `ref` runnable with this checkout's dependencies. */
function checkout(ref: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cp-percall-'));
  execSync(
    `git -C ${JSON.stringify(root)} archive ${JSON.stringify(ref)} | tar -x -C ${JSON.stringify(dir)}`,
  );
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

async function chokepoint(name: string, cliPath: string, emulatorUrl: string) {
  const config = chokepointConfig(
    `provider: { kind: emulator, baseUrl: "${emulatorUrl}", countTokensNearCeiling: false }`,
  );
  const p = await startNode([cliPath, 'serve', '--port', '0'], {
    env: chokepointEnv(config, TOKEN),
  });
  const who = { team: 'bench', env: 'bench', seat: 'bench' };
  const key = (await api<{ key: string }>(p.url, TOKEN, 'POST', '/api/keys', who)).key;
  return { name, urls: [p.url], headers: { 'x-api-key': key }, pids: [p.pid] } satisfies Contender;
}

/**
 * `secs` of load on one contender: closed-loop (`--connections` calls in flight, as fast as it
 * answers; the bodies in turn), or open-loop at `--rate` calls/s when given.
 */
async function load(c: Contender, bodies: string[], secs: number): Promise<{ ok: number; bad: number }> {
  const headers = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...c.headers };
  if (rate) {
    const m = await paced({ ...c, headers }, bodies, secs, rate);
    return { ok: Math.round(secs * rate) - m.non2xx - m.errors, bad: m.non2xx + m.errors };
  }
  const r = await autocannon({
    url: `${c.urls[0]}/v1/messages`,
    method: 'POST',
    headers,
    requests: bodies.map((body) => ({ body })),
    connections,
    duration: secs,
  });
  return { ok: r['2xx'], bad: r.non2xx + r.errors + r.timeouts };
}

/**
 * The per-call body work of one checkout, in this process (no HTTP, no store, no other process's
 * noise): parse and check the body, fingerprint its prompt (remembered per stream where that
 * checkout can), check drift, the admission estimate's walk, the stream's cache verdict and the
 * info log line (written nowhere). Returns a function running it for the i-th body.
 */
async function bodyWork(dir: string): Promise<(raw: Buffer) => void> {
  const at = (f: string) => import(pathToFileURL(join(dir, f)).href);
  const { parseJson } = await at('runtime/faces/gateway/common.ts');
  const { checkBody, inspect } = await at('runtime/gateway/messages.ts');
  const { fingerprint } = await at('runtime/gateway/prefix.ts');
  const { StreamTracker } = await at('runtime/gateway/streams.ts');
  // A stream's unchanged tail parsed once, where that checkout can.
  const tails = existsSync(join(dir, 'runtime/gateway/tail-memo.ts'))
    ? new (await at('runtime/gateway/tail-memo.ts')).TailMemo()
    : undefined;
  const { createLogger } = await at('runtime/log.ts');
  const { callObserver } = await at('runtime/observability/observe.ts');
  const streams = new StreamTracker();
  const log = createLogger({ level: 'info', pretty: false, write: () => {} });
  const observer = callObserver(
    () => log,
    () => undefined,
  );
  const identity = { team: 'bench', env: 'bench', seat: 'bench', keyId: 'key_bench' };
  const tokens = { input: 3_000, cacheWrite5m: 200, cacheWrite1h: 0, cacheRead: 9_000, output: 300 };
  const key = 'key_bench::';
  let n = 0;
  return (raw) => {
    const body = checkBody(tails ? tails.parse(key, raw, parseJson) : parseJson(raw));
    const fp = streams.fingerprint ? streams.fingerprint(key, body) : fingerprint(body);
    streams.drift(key, fp);
    inspect(body);
    streams.observe(key, fp, tokens, n, undefined);
    const record = {
      status: 200,
      model: body.model,
      provider: 'default',
      tokens,
      cost: 1,
      reserved: 2,
      outcome: 'ok',
    };
    observer.call({ identity, requestId: `req_${n++}`, body }, record, {
      started: 0,
      admitted: 1,
      responded: 2,
      ended: 3,
    });
  };
}

/** µs per call of each checkout's body work, best of `rounds` interleaved rounds. */
async function inProcess(checkouts: Array<[string, string]>, bodies: string[]): Promise<number[]> {
  const raws = bodies.map((b) => Buffer.from(b));
  const works = await Promise.all(checkouts.map(([, dir]) => bodyWork(dir)));
  const best = works.map(() => Number.POSITIVE_INFINITY);
  const calls = raws[0]!.length > 10_000 ? 400 : 4_000; // ~50 ms a round
  for (let r = 0; r < rounds + 2; r++)
    for (const [i, work] of works.entries()) {
      const t0 = process.cpuUsage();
      for (let k = 0; k < calls; k++) work(raws[k % raws.length]!);
      const t = process.cpuUsage(t0);
      if (r >= 2) best[i] = Math.min(best[i]!, (t.user + t.system) / calls); // two rounds warm the JIT
    }
  return best;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const r1 = (n: number) => Math.round(n * 10) / 10;

const dirs: string[] = [];
try {
  if (against) dirs.push(checkout(against));
  const rows: PerCallRow[] = [];
  if (!argv.includes('--no-http')) {
    const emulator = await startEmulator(join(root, 'bin/chokepoint.js'), latency);
    const bare = await startNode([runTs, join(root, 'bench/bare-proxy.ts'), emulator.url]);
    const contenders: Contender[] = [
      { name: 'bare node:http proxy', urls: [bare.url], headers: {}, pids: [bare.pid] },
    ];
    if (against) {
      const cli = join(dirs[0]!, 'bin/chokepoint.js');
      contenders.push(await chokepoint(`chokepoint @ ${against}`, cli, emulator.url));
    }
    contenders.push(
      await chokepoint('chokepoint (this checkout)', join(root, 'bin/chokepoint.js'), emulator.url),
    );
    if (argv.includes('--dist')) {
      contenders.push(await chokepoint('chokepoint (this checkout, dist/)', benchCli(), emulator.url));
    }
    for (const [kind, bodies] of Object.entries(BODIES)) {
      if (only && only !== kind) continue;
      const perRound = contenders.map(() => [] as number[]);
      const bad = contenders.map(() => 0);
      for (const c of contenders) await load(c, bodies, 1); // warm-up: JIT, sockets, prepared statements
      for (let r = 0; r < rounds; r++) {
        for (const [i, c] of contenders.entries()) {
          const before = cpuNs(c.pids);
          const m = await load(c, bodies, duration);
          perRound[i]!.push((cpuNs(c.pids) - before) / 1000 / Math.max(1, m.ok));
          bad[i]! += m.bad;
        }
      }
      const bareRounds = perRound[0]!;
      for (const [i, c] of contenders.entries()) {
        const row: PerCallRow = {
          body: kind,
          bodyBytes: meanBytes(bodies),
          contender: c.name,
          cpuUs: r1(median(perRound[i]!)),
          ratio: Math.round(median(perRound[i]!.map((us, r) => us / bareRounds[r]!)) * 100) / 100,
          rounds: perRound[i]!.map(r1),
          bad: bad[i]!,
        };
        rows.push(row);
        console.log(
          `${kind.padEnd(12)} ${String(row.bodyBytes).padStart(6)} B  ${c.name.padEnd(34)} ${String(row.cpuUs).padStart(7)} µs/call  ×${row.ratio} bare${row.bad ? `  (${row.bad} failed)` : ''}`,
        );
      }
    }
  }
  // The same body work in this process, each checkout in turn: the part of the difference that is ours.
  const checkouts: Array<[string, string]> = [
    ...(against ? ([[`@ ${against}`, dirs[0]!]] as Array<[string, string]>) : []),
    ['this checkout', root],
  ];
  const inproc: Array<{ body: string; checkout: string; cpuUs: number }> = [];
  for (const [kind, bodies] of Object.entries(BODIES)) {
    if (only && only !== kind) continue;
    const us = await inProcess(checkouts, bodies);
    for (const [i, [name]] of checkouts.entries()) {
      inproc.push({ body: kind, checkout: name, cpuUs: r1(us[i]!) });
      console.log(
        `${kind.padEnd(12)} body work in-process, ${name.padEnd(20)} ${String(r1(us[i]!)).padStart(7)} µs/call`,
      );
    }
  }
  if (quick) process.stderr.write('(--quick: results not written)\n');
  else {
    const dir = join(root, 'bench/results');
    const meta = {
      at: new Date().toISOString(),
      load: rate ? `${rate} calls/s` : `${connections} connections`,
      duration,
      rounds,
      against: against ?? null,
    };
    writeFileSync(join(dir, 'percall.json'), `${JSON.stringify({ meta, rows, inproc }, null, 2)}\n`);
    const md = [
      `CPU per call, ${meta.load}, median of ${rounds} rounds of ${duration} s (contenders alternating), ${latency ? `emulator upstream answering after ${latency} ms` : 'zero-latency emulator upstream'}.`,
      '',
      '| body | bytes | contender | CPU µs/call | × bare proxy |',
      '|---|---:|---|---:|---:|',
      ...rows.map((r) => `| ${r.body} | ${r.bodyBytes} | ${r.contender} | ${r.cpuUs} | ${r.ratio} |`),
      '',
      'The body work alone (parse, check, fingerprint, drift, estimate walk, cache verdict, log line), in one process, best round:',
      '',
      '| body | checkout | CPU µs/call |',
      '|---|---|---:|',
      ...inproc.map((r) => `| ${r.body} | ${r.checkout} | ${r.cpuUs} |`),
    ];
    writeFileSync(join(dir, 'percall.md'), `${md.join('\n')}\n`);
  }
} finally {
  await stopAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.exit(0);
