// Child processes for the HTTP benchmarks: start one and wait until it listens, sample its CPU
// time and RSS from /proc (itself plus its descendants), stop it.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Proc {
  url: string;
  proc: ChildProcess;
  pid: number;
  output: () => string;
}

const running: ChildProcess[] = [];

/** Starts `node <args>`; resolves with the URL once `ready` matches its output (or `probe` answers). */
/**
 * The node flags `npm start` runs Chokepoint with (package.json: `node <flags> bin/chokepoint.js
 * serve`; the Dockerfile and the systemd unit set the same in NODE_OPTIONS): every process the
 * benchmarks start runs with them — Chokepoint as it is deployed, and every other contender (the
 * bare proxies, Portkey) and the emulator alike.
 */
export const LAUNCH_FLAGS: readonly string[] = (() => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    scripts: { start: string };
  };
  const m = /^node((?: --\S+)*) bin\/chokepoint\.js serve$/.exec(pkg.scripts.start);
  if (!m) throw new Error(`package.json: unexpected start script ${JSON.stringify(pkg.scripts.start)}`);
  return m[1]!.trim().split(/\s+/).filter(Boolean);
})();

export function startNode(
  args: string[],
  opts: {
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    ready?: RegExp;
    url?: string;
    timeoutMs?: number;
    /** A command node runs under (`['valgrind', '--tool=callgrind']`): it and its options first. */
    under?: string[];
  } = {},
): Promise<Proc> {
  const cmd = [...(opts.under ?? []), process.execPath, ...LAUNCH_FLAGS, ...args];
  const proc = spawn(cmd[0]!, cmd.slice(1), {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(proc);
  let out = '';
  const ready = opts.ready ?? /listening on (http:\/\/\S+)/;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${args.join(' ')} did not start:\n${out.slice(-2000)}`)),
      opts.timeoutMs ?? 30_000,
    );
    const check = () => {
      const m = ready.exec(out);
      // `chokepoint serve`'s banner ends with the admin token line.
      if (!m || (args.includes('serve') && !/admin token/.test(out))) return;
      clearTimeout(timer);
      resolve({ url: opts.url ?? m[1]!, proc, pid: proc.pid!, output: () => out });
    };
    proc.stdout!.on('data', (d) => {
      out += d;
      check();
    });
    proc.stderr!.on('data', (d) => {
      out += d;
      if (out.length > 200_000) out = out.slice(-100_000);
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with ${code}:\n${out.slice(-2000)}`));
    });
  });
}

/** Stops every process started here (SIGTERM, then SIGKILL after 3 s). */
export async function stopAll(): Promise<void> {
  await Promise.all(running.splice(0).map(stop));
}

export function stop(p: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (p.exitCode !== null || p.signalCode !== null) return done();
    const t = setTimeout(() => p.kill('SIGKILL'), 3000);
    p.once('exit', () => {
      clearTimeout(t);
      done();
    });
    p.kill('SIGTERM');
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function descendants(pid: number): number[] {
  const out = [pid];
  try {
    for (const tid of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean))
      out.push(...descendants(Number(tid)));
  } catch {}
  return out;
}

const TICK_MS = 10; // CLK_TCK is 100 on Linux

/** CPU time (user + system, ms) and RSS (bytes) of these processes and their descendants. */
export function sample(pids: number[]): { cpuMs: number; rss: number } {
  let cpuMs = 0;
  let rss = 0;
  for (const pid of pids.flatMap(descendants)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpuMs += (Number(f[11]) + Number(f[12])) * TICK_MS; // utime, stime (fields 14, 15)
      rss += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {}
  }
  return { cpuMs, rss };
}

/**
 * CPU time (ns) of these processes and their descendants, every thread counted, from
 * /proc/<pid>/task/<tid>/schedstat: nanosecond resolution where /proc/<pid>/stat counts 10 ms ticks
 * (a per-call figure over a few thousand calls needs it). Threads that exited are not counted.
 */
export function cpuNs(pids: number[]): number {
  let ns = 0;
  for (const pid of pids.flatMap(descendants)) {
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`))
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {}
  }
  return ns;
}

/** A config file for `chokepoint serve` with every budget far out of reach. */
export function chokepointConfig(extra: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cp-bench-'));
  const file = join(dir, 'chokepoint.config.yaml');
  const big = '{ ceiling: "1000000", window: day }';
  writeFileSync(
    file,
    `${extra}\nlog: { level: warn }\nbudgets: { defaults: { global: ${big}, team: ${big}, env: ${big}, seat: ${big} } }\n`,
  );
  return { dir, file };
}

/** The environment of a `chokepoint serve` on that config (Redis when `redisUrl`, else embedded). */
export function chokepointEnv(
  config: { dir: string; file: string },
  adminToken: string,
  redisUrl = '',
): NodeJS.ProcessEnv {
  return {
    REDIS_URL: redisUrl,
    CHOKEPOINT_CONFIG: config.file,
    CHOKEPOINT_DATA_DIR: join(config.dir, 'data'),
    CHOKEPOINT_WORKFLOWS_DIR: config.dir,
    CHOKEPOINT_ADMIN_TOKEN: adminToken,
    CHOKEPOINT_LOG_LEVEL: 'warn',
  };
}

export async function api<T = Record<string, unknown>>(
  url: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Deletes every key under `prefix` on the Redis at `url` (a benchmark's own keys, when it is done). */
export async function cleanRedis(url: string, prefix: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } catch {}
  redis.disconnect();
}

/**
 * `chokepoint emulator` (from `cli`) on a free port with a fixed upstream latency. It lists only its
 * last 1,000 calls one by one (`--keep-calls`; its totals count every call): holding the default
 * 100,000 it slows as a run goes on (a bigger heap to collect), and contenders measured late would
 * meet a slower upstream than the first.
 */
export function startEmulator(cli: string, latencyMs: number | string = 0): Promise<Proc> {
  return startNode([cli, 'emulator', '--port', '0', '--latency', String(latencyMs), '--keep-calls', '1000']);
}
