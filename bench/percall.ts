/**
 * What one call costs the gateway in CPU, beside a bare node:http keep-alive proxy measured in the
 * same run on the same machine: the ratio is the figure to watch (absolute µs move with the
 * machine and its load; the ratio much less).
 *
 * Two bodies: a tiny non-streaming call, and the turns of a Claude Code session (~49 kB a call,
 * most of it an unchanged prefix of tools and system prompt, `stream: true`; bench/lib/
 * claude-code-body.ts). The upstream is the emulator with zero latency. Each contender gets a
 * steady open-loop load of `--rate` calls/s for `--duration` s (after a warm-up); its CPU is read
 * from /proc/<pid>/task/<tid>/schedstat (every thread, to the nanosecond) before and after, and
 * divided by the calls answered. The rounds alternate between contenders so that a change in the
 * machine's load falls on all of them; the median round is reported.
 *
 * `--against <git ref>` adds that commit's `chokepoint serve` as a contender (its tree extracted
 * with `git archive` into a temporary folder, this checkout's node_modules linked in): before and
 * after in one run.
 *
 *   node bin/run-ts.js bench/percall.ts [--quick] [--rate 300] [--duration 4] [--rounds 3]
 *     [--against <ref>] [--only tiny|claude-code]
 *
 * Results: bench/results/percall.{json,md} (not written with --quick).
 */
import { execSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { claudeCodeBodies } from './lib/claude-code-body.ts';
import { type Contender, paced } from './lib/load.ts';
import { api, chokepointConfig, chokepointEnv, cpuNs, startNode, stopAll } from './lib/procs.ts';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const rate = Number(opt('rate') ?? 300);
const duration = Number(opt('duration') ?? (quick ? 2 : 4));
const rounds = Number(opt('rounds') ?? (quick ? 1 : 3));
const against = opt('against');
const only = opt('only');
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

async function chokepoint(name: string, dir: string, emulatorUrl: string) {
  const config = chokepointConfig(
    `provider: { kind: emulator, baseUrl: "${emulatorUrl}", countTokensNearCeiling: false }`,
  );
  const p = await startNode([join(dir, 'bin/chokepoint.js'), 'serve', '--port', '0'], {
    env: chokepointEnv(config, TOKEN),
  });
  const who = { team: 'bench', env: 'bench', seat: 'bench' };
  const key = (await api<{ key: string }>(p.url, TOKEN, 'POST', '/api/keys', who)).key;
  return { name, urls: [p.url], headers: { 'x-api-key': key }, pids: [p.pid] } satisfies Contender;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const r1 = (n: number) => Math.round(n * 10) / 10;

const dirs: string[] = [];
try {
  const emulator = await startNode([
    join(root, 'bin/chokepoint.js'),
    'emulator',
    '--port',
    '0',
    '--latency',
    '0',
  ]);
  const bare = await startNode([runTs, join(root, 'bench/bare-proxy.ts'), emulator.url]);
  const contenders: Contender[] = [
    { name: 'bare node:http proxy', urls: [bare.url], headers: {}, pids: [bare.pid] },
  ];
  if (against) {
    const dir = checkout(against);
    dirs.push(dir);
    contenders.push(await chokepoint(`chokepoint @ ${against}`, dir, emulator.url));
  }
  contenders.push(await chokepoint('chokepoint (this checkout)', root, emulator.url));
  const v = { 'anthropic-version': '2023-06-01' };
  const rows: PerCallRow[] = [];
  for (const [kind, bodies] of Object.entries(BODIES)) {
    if (only && only !== kind) continue;
    const perRound = contenders.map(() => [] as number[]);
    const bad = contenders.map(() => 0);
    for (const c of contenders) await paced({ ...c, headers: { ...c.headers, ...v } }, bodies, 1, rate); // warm-up
    for (let r = 0; r < rounds; r++) {
      for (const [i, c] of contenders.entries()) {
        const before = cpuNs(c.pids);
        const m = await paced({ ...c, headers: { ...c.headers, ...v } }, bodies, duration, rate);
        const calls = Math.round(duration * rate) - m.non2xx - m.errors;
        perRound[i]!.push((cpuNs(c.pids) - before) / 1000 / Math.max(1, calls));
        bad[i]! += m.non2xx + m.errors;
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
  if (quick) process.stderr.write('(--quick: results not written)\n');
  else {
    const dir = join(root, 'bench/results');
    const meta = { at: new Date().toISOString(), rate, duration, rounds, against: against ?? null };
    writeFileSync(join(dir, 'percall.json'), `${JSON.stringify({ meta, rows }, null, 2)}\n`);
    const md = [
      `CPU per call at ${rate} calls/s (median of ${rounds} rounds of ${duration} s), zero-latency emulator upstream.`,
      '',
      '| body | bytes | contender | CPU µs/call | × bare proxy |',
      '|---|---:|---|---:|---:|',
      ...rows.map((r) => `| ${r.body} | ${r.bodyBytes} | ${r.contender} | ${r.cpuUs} | ${r.ratio} |`),
    ];
    writeFileSync(join(dir, 'percall.md'), `${md.join('\n')}\n`);
  }
} finally {
  await stopAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.exit(0);
