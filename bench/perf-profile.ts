/**
 * Where a gateway's CPU goes, counted by the kernel rather than by V8: `perf record` (a cpu-clock
 * sample every 200 µs of CPU the process really used) on `chokepoint serve` — or the bare node:http
 * proxy — at saturation, node run with `--perf-basic-prof` so JIT-compiled functions have names.
 * Prints µs of CPU per call answered by kind of work (the kernel, V8's builtins by what they do:
 * property lookups, promises, strings, JSON, the garbage collector…, malloc, our own compiled
 * functions, node's) and the symbols that cost most; `--callers <symbol>` lists which functions
 * called it (samples taken with call graphs, `-g`).
 *
 * V8's own profiler (bench/profile.ts) samples on a timer and charges a function for time its
 * thread spent waiting for a core: under load on shared cores a write(2) that was preempted looks
 * ten times dearer than it is. This one sees only CPU that was used — compare with `--bare` for
 * what is ours. Needs perf (Debian: `apt-get install linux-perf`).
 *
 *   node bin/run-ts.js bench/perf-profile.ts [--bare] [--stream] [--latency 0] [--connections 50] [--duration 6]
 *     [--rate 500] [--top 30] [--node-flag <flag>]… [--callers <symbol> [--dwarf]] [--kind <kind>]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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
const bare = argv.includes('--bare');
const stream = argv.includes('--stream');
const latency = Number(opt('latency', '0'));
const connections = Number(opt('connections', latency ? '200' : '50'));
const duration = Number(opt('duration', '6'));
/** `--rate N`: N requests a second offered (as the gateway bench measures CPU), not saturation. */
const rate = Number(opt('rate', '0'));
const top = Number(opt('top', '30'));
const callers = opt('callers', '');
/** `--kind <prefix>`: the top symbols of one kind of work (e.g. `other`, `garbage`). */
const kindOf = opt('kind', '');
const nodeFlags = argv.flatMap((a, i) => (a === '--node-flag' ? [argv[i + 1]!] : []));
const HZ = 4999;
const TOKEN = 'cpo_bench-token-0123456789abcdef';
const root = fileURLToPath(new URL('..', import.meta.url));

/** Kinds of work, first match wins (V8's builtins and runtime are in the node binary). */
const KINDS: [string, RegExp][] = [
  ['kernel', /\[kernel/],
  ['ours (compiled JS)', /\[JIT\].*(\/dist\/|\/runtime\/|\/adapters\/)/],
  ['node (compiled JS)', /\[JIT\]/],
  ['promises, async', /Generator|Promise|Microtask|AsyncFunction|Await/],
  ['property lookups', /LoadIC|StoreIC|GetProperty|LookupIterator|SetProperty|DefineKeyedOwn|HasProperty/],
  ['garbage collector', /Scaveng|Heap|Marking|Sweep|Evacuat|RecordWrite|MemoryAllocator|Compactor/],
  ['malloc', /malloc|free|_int_|unlink_chunk|consolidate|operator new|operator delete/],
  ['JSON', /Json/],
  ['strings', /String|Utf8|WriteToFlat|Latin1|OneByte/],
  ['calls', /CallFunction|Invoke|InterpreterEntry|CallVarargs|Construct|JSEntry|CEntry|CallApiCallback/],
  ['Map, Set', /OrderedHash|MapPrototype|SetPrototype|Collection/],
  ['object copies', /SetDataProperties|CopyDataProperties|CloneObject|CreateDataProperty/],
  ['SQLite', /better_sqlite3/],
];

async function main() {
  const cli = benchCli();
  const emulator = await startEmulator(cli, latency);
  const config = chokepointConfig(
    `provider: { kind: emulator, baseUrl: "${emulator.url}", countTokensNearCeiling: false }`,
  );
  const flags = ['--perf-basic-prof', ...nodeFlags];
  // Its own working folder: V8 writes a log per isolate there with these flags.
  const dir = mkdtempSync(join(tmpdir(), 'chokepoint-perf-'));
  const gw = bare
    ? await startNode(
        [...flags, join(root, 'bin/run-ts.js'), join(root, 'bench/bare-proxy.ts'), emulator.url],
        {
          cwd: dir,
        },
      )
    : await startNode([...flags, cli, 'serve', '--port', '0'], {
        cwd: dir,
        env: chokepointEnv(config, TOKEN, ''),
      });
  const key = bare
    ? ''
    : (await api<{ key: string }>(gw.url, TOKEN, 'POST', '/api/keys', { team: 'p', env: 'p', seat: 'p' }))
        .key;
  const body = tinyMessages(stream);
  const load = (secs: number) =>
    loadMessages(gw.url, key, body, { connections, duration: secs, ...(rate ? { overallRate: rate } : {}) });
  await load(3); // warm: JIT, sockets, prepared statements
  const data = join(dir, 'perf.data');
  // `--dwarf`: call graphs unwound from stack copies, through C and C++ frames (malloc's callers)
  // that keep no frame pointer; slower, and perf's files are large.
  const graph = argv.includes('--dwarf') ? ['--call-graph', 'dwarf,16384'] : ['-g'];
  const record = ['record', ...(callers ? graph : []), '-e', 'cpu-clock', '-F', String(HZ)];
  const perf = spawn('perf', [...record, '-p', String(gw.pid), '-o', data], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500)); // attached
  const res = await load(duration);
  const exited = new Promise((r) => perf.once('exit', r));
  perf.kill('SIGINT');
  await exited;
  await stopAll();
  const calls = res['2xx'];
  const us = (samples: number) => (samples * (1e6 / HZ)) / calls;
  const report = (extra: string[]) =>
    spawnSync('perf', ['report', '-i', data, '--stdio', ...extra], { encoding: 'utf8', maxBuffer: 1 << 28 })
      .stdout;
  const bySymbol = new Map<string, number>();
  for (const line of report(['-n', '--no-children', '--sort', 'dso,sym']).split('\n')) {
    const m = /^\s+[\d.]+%\s+(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const name = m[2]!
      .replace(/tid \d+/, 'tid')
      .replace(/\s+/g, ' ')
      .trim();
    bySymbol.set(name, (bySymbol.get(name) ?? 0) + Number(m[1]));
  }
  const kinds = new Map<string, number>();
  let total = 0;
  for (const [name, n] of bySymbol) {
    const kind = KINDS.find(([, re]) => re.test(name))?.[0] ?? 'other (node, V8, libc)';
    kinds.set(kind, (kinds.get(kind) ?? 0) + n);
    total += n;
  }
  const who = bare ? 'bare node:http proxy' : 'chokepoint embedded';
  const out = [
    `${who}${stream ? ', streaming' : ''}, ${latency} ms upstream, ${connections} connections${rate ? ` at ${rate} req/s` : ''}: ${calls} calls in ${duration} s; CPU ${us(total).toFixed(1)} µs a call (perf, ${HZ} Hz)`,
    '-- by kind of work, µs a call --',
    ...[...kinds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${us(n).toFixed(1).padStart(8)}  ${k}`),
    '-- by symbol, µs a call --',
    ...[...bySymbol]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, n]) => `${us(n).toFixed(2).padStart(8)}  ${k.slice(0, 140)}`),
  ];
  if (kindOf) {
    out.push(`-- top symbols of ${kindOf} --`);
    out.push(
      ...[...bySymbol]
        .filter(([name]) =>
          (KINDS.find(([, re]) => re.test(name))?.[0] ?? 'other (node, V8, libc)').startsWith(kindOf),
        )
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([k, n]) => `${us(n).toFixed(2).padStart(8)}  ${k.slice(0, 140)}`),
    );
  }
  if (callers) {
    out.push(`-- callers of ${callers} (% of all samples) --`);
    const tree = report(['--no-children', '-S', callers, '-g', 'caller,0.01,callee', '--max-stack', '6']);
    out.push(...tree.split('\n').filter((l) => /--[\d.]+%--/.test(l)));
  }
  process.stdout.write(`${out.join('\n')}\n`);
  rmSync(dir, { recursive: true, force: true });
  rmSync(`/tmp/perf-${gw.pid}.map`, { force: true }); // --perf-basic-prof's names
}

try {
  await main();
} finally {
  await stopAll();
}
