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
 *     [--node-flag <flag>]… [--valgrind <callgrind option>]… [--keep]
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
  if (!argv.includes('--keep')) rmSync(dir, { recursive: true, force: true });
  else
    process.stderr.write(
      `kept ${dir} (JIT names with --node-flag --perf-basic-prof: /tmp/perf-${gw.pid}.map)\n`,
    );
}

try {
  await main();
} finally {
  await stopAll();
}
