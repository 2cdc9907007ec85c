/**
 * System calls per call: the emulator upstream, one gateway (or the bare node:http proxy) with
 * `strace -f -c` attached, a fixed number of calls from autocannon, then the count of each system
 * call per call answered. Where the kernel half of a proxy's CPU goes (every write on loopback runs
 * the receiver's TCP stack too), counted rather than timed. Needs strace (Debian: `apt-get install
 * strace`); strace slows the process, which changes how many calls share a write, so compare
 * contenders under the same options, not with the gateway benchmark's numbers.
 *
 *   node bin/run-ts.js bench/syscalls.ts [--bare] [--stream] [--calls 20000] [--connections 50] [--latency 0]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
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
const calls = Number(opt('calls', '20000'));
const connections = Number(opt('connections', '50'));
const latency = opt('latency', '0');
const TOKEN = 'cpo_bench-token-0123456789abcdef';
const root = fileURLToPath(new URL('..', import.meta.url));

async function main() {
  const cli = benchCli();
  const emulator = await startEmulator(cli, latency);
  const config = chokepointConfig(
    `provider: { kind: emulator, baseUrl: "${emulator.url}", countTokensNearCeiling: false }`,
  );
  const gw = bare
    ? await startNode([join(root, 'bin/run-ts.js'), join(root, 'bench/bare-proxy.ts'), emulator.url])
    : await startNode([cli, 'serve', '--port', '0'], { env: chokepointEnv(config, TOKEN, '') });
  const key = bare
    ? ''
    : (await api<{ key: string }>(gw.url, TOKEN, 'POST', '/api/keys', { team: 'p', env: 'p', seat: 'p' }))
        .key;
  const body = tinyMessages(stream);
  const load = (amount: number) => loadMessages(gw.url, key, body, { connections, amount });
  await load(Math.min(calls, 5000)); // warm
  const out = join(mkdtempSync(join(tmpdir(), 'chokepoint-strace-')), 'strace.txt');
  const strace = spawn('strace', ['-f', '-c', '-o', out, '-p', String(gw.pid)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1000)); // attached
  const res = await load(calls);
  const exited = new Promise((r) => strace.once('exit', r));
  strace.kill('SIGINT');
  await exited;
  const answered = res['2xx'];
  const rows = readFileSync(out, 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 5 && /^\d/.test(f[0]!) && f.at(-1) !== 'total')
    .map((f) => ({ name: f.at(-1)!, n: Number(f[3]) }))
    .sort((a, b) => b.n - a.n);
  process.stdout.write(
    `${bare ? 'bare node:http proxy' : 'chokepoint embedded'}${stream ? ', streaming' : ''}: ${answered} calls answered\n`,
  );
  for (const r of rows) process.stdout.write(`  ${(r.n / answered).toFixed(3).padStart(8)}  ${r.name}\n`);
}

try {
  await main();
} finally {
  await stopAll();
}
