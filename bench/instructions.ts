/**
 * Instructions per call, counted rather than timed: one gateway (or the bare node:http proxy) runs
 * under valgrind's callgrind with counting off, is warmed with `--warm` calls (V8 compiles the hot
 * path; its optimising compiler keeps working for ~20 s of load), then counts the user-space
 * instructions (Ir) of exactly `--calls` calls. The count is the same whatever else the machine's
 * cores are doing — the timed benchmarks on these shared cores swing by 2× within minutes — so an
 * A/B of a change to the hot path is read here. It leaves out the kernel (a third of a proxy's CPU)
 * and what the instructions cost (cache misses), and valgrind runs a process's threads one at a
 * time (~50× slower), so compare contenders under the same options, not with the timed numbers.
 * Needs valgrind (Debian: `apt-get install valgrind`).
 *
 *   node bin/run-ts.js bench/instructions.ts [--bare] [--stream] [--warm 6000] [--calls 1500] [--connections 1] [--ship 10s] [--threaded]
 *     [--node-flag <flag>]… [--valgrind <callgrind option>]… [--keep] [--top 40]
 *
 * `--top N` prints the N functions that spent the most instructions of their own, per call, with
 * V8's compiled functions named from the map node writes with --perf-basic-prof (added for it).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchCli } from './lib/built.ts';
import { loadMessages, tinyMessages } from './lib/load.ts';
import { api, chokepointConfig, chokepointEnv, startEmulator, startNode, stopAll } from './lib/procs.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : dflt;
};
/** `--proxy <file>`: another bare proxy in place of bench/bare-proxy.ts (args: upstream URL). */
const proxy = argv.includes('--proxy') ? opt('proxy', '') : undefined;
const bare = argv.includes('--bare') || proxy !== undefined;
const stream = argv.includes('--stream');
const warm = Number(opt('warm', '6000'));
const calls = Number(opt('calls', '1500'));
/** One connection by default: every call then runs alone, the same way each time (two runs agree
 * within ~0.5%); with 50, how many calls share a turn of the event loop changes from run to run
 * (±5%), though the mix is closer to a saturated gateway's. */
const connections = Number(opt('connections', '1'));
/** `--node-flag <flag>` (repeatable): a flag for the measured node; `--valgrind <option>`: one for callgrind. */
const nodeFlags = [
  // V8's compiler and collector on the main thread (`--threaded`: on their own): when code is
  // optimised no longer depends on how threads were scheduled.
  ...(argv.includes('--threaded') ? [] : ['--single-threaded']),
  ...argv.flatMap((a, i) => (a === '--node-flag' ? [argv[i + 1]!] : [])),
];
const top = Number(opt('top', '0'));
if (top > 0 && !nodeFlags.includes('--perf-basic-prof')) nodeFlags.push('--perf-basic-prof');
/** How often settled calls go to the store (store.leases.ship): valgrind runs the gateway ~50×
 * slower, so the default 200 ms would ship a batch every few calls, not every ~1,000 as natively,
 * and weigh per-batch work (the SQLite transaction) far above its share; 10 s by default here. */
const ship = opt('ship', '10s');
const valgrindOpts = argv.flatMap((a, i) => (a === '--valgrind' ? [argv[i + 1]!] : []));
const TOKEN = 'cpo_bench-token-0123456789abcdef';
const root = fileURLToPath(new URL('..', import.meta.url));

async function main() {
  const cli = benchCli();
  const emulator = await startEmulator(cli, 0);
  const config = chokepointConfig(
    `provider: { kind: emulator, baseUrl: "${emulator.url}", countTokensNearCeiling: false }\nstore: { leases: { ship: "${ship}" } }`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'chokepoint-callgrind-'));
  const under = [
    'valgrind',
    '--tool=callgrind',
    '--instr-atstart=no',
    '--dump-instr=no',
    `--callgrind-out-file=${join(dir, 'cg.out')}`,
    ...valgrindOpts,
  ];
  const timeoutMs = 180_000;
  const gw = bare
    ? await startNode(
        [...nodeFlags, join(root, 'bin/run-ts.js'), proxy ?? join(root, 'bench/bare-proxy.ts'), emulator.url],
        { under, timeoutMs, cwd: dir },
      )
    : await startNode([...nodeFlags, cli, 'serve', '--port', '0'], {
        env: chokepointEnv(config, TOKEN, ''),
        under,
        timeoutMs,
        cwd: dir,
      });
  const key = bare
    ? ''
    : (await api<{ key: string }>(gw.url, TOKEN, 'POST', '/api/keys', { team: 'p', env: 'p', seat: 'p' }))
        .key;
  const body = tinyMessages(stream);
  const load = (amount: number) => loadMessages(gw.url, key, body, { connections, amount, timeout: 60 });
  const t0 = Date.now();
  process.stderr.write(`warming with ${warm} calls under valgrind…\n`);
  await load(warm);
  const control = (...args: string[]) =>
    execFileSync('callgrind_control', [...args, String(gw.pid)], { encoding: 'utf8', timeout: 60_000 });
  control('-i', 'on');
  process.stderr.write(`counting ${calls} calls…\n`);
  const res = await load(calls);
  control('-d');
  control('-i', 'off');
  const answered = res['2xx'];
  // The dump asked for (cg.out.1); cg.out is written at exit.
  const dump = readdirSync(dir).find((f) => /^cg\.out\.\d+$/.test(f));
  const text = dump ? readFileSync(join(dir, dump), 'utf8') : '';
  const total = Number(/^summary:\s+(\d+)/m.exec(text)?.[1] ?? Number.NaN);
  process.stdout.write(
    `${bare ? 'bare node:http proxy' : 'chokepoint embedded'}${stream ? ', streaming' : ''}: ${answered} calls answered (${res.non2xx} not 2xx), ${(total / answered / 1000).toFixed(1)} k instructions a call (callgrind, user space; ${Math.round((Date.now() - t0) / 1000)} s)\n`,
  );
  if (top > 0 && dump)
    process.stdout.write(topFunctions(join(dir, dump), `/tmp/perf-${gw.pid}.map`, answered));
  if (!argv.includes('--keep')) {
    rmSync(dir, { recursive: true, force: true });
    if (top > 0) rmSync(`/tmp/perf-${gw.pid}.map`, { force: true });
  } else
    process.stderr.write(
      `kept ${dir} (JIT names with --node-flag --perf-basic-prof: /tmp/perf-${gw.pid}.map)\n`,
    );
}

/** The `top` functions by their own instructions per call; JIT code named from node's perf map. */
function topFunctions(dump: string, perfMap: string, calls: number): string {
  const jit: { start: number; end: number; name: string }[] = [];
  try {
    for (const line of readFileSync(perfMap, 'utf8').split('\n')) {
      const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
      if (m)
        jit.push({ start: parseInt(m[1]!, 16), end: parseInt(m[1]!, 16) + parseInt(m[2]!, 16), name: m[3]! });
    }
  } catch {}
  jit.sort((a, b) => a.start - b.start);
  const named = (addr: number): string => {
    let lo = 0;
    let hi = jit.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = jit[mid]!;
      if (addr < e.start) hi = mid - 1;
      else if (addr >= e.end) lo = mid + 1;
      else return e.name;
    }
    return `0x${addr.toString(16)}`;
  };
  const out = execFileSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', dump], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const own = new Map<string, number>();
  for (const line of out.split('\n')) {
    const m = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (!m || m[2]!.includes('PROGRAM TOTALS')) continue;
    const fn = m[2]!.replace(
      /^\?\?\?:0x([0-9a-f]+) \[\?\?\?\]$/,
      (_, a: string) => `JIT ${named(parseInt(a, 16))}`,
    );
    own.set(fn, (own.get(fn) ?? 0) + Number(m[1]!.replaceAll(',', '')));
  }
  return `${[...own]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, ir]) => `${(ir / calls / 1000).toFixed(1).padStart(8)}k  ${fn.slice(0, 160)}`)
    .join('\n')}\n`;
}

try {
  await main();
} finally {
  await stopAll();
}
