// Gateway overhead, measured in one run on one machine: direct to the emulator, a bare node:http
// proxy, and Chokepoint (embedded) with every check on, driven by autocannon with the same body.
// usage: node bin/run-ts.js bench/gateway.ts [--duration 8] [--connections 50]
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const duration = arg('duration', 8);
const connections = arg('connections', 50);
const TOKEN = 'cpo_bench-token-0123456789abcdef';
const BODY = JSON.stringify({
  model: 'claude-haiku-4-5',
  max_tokens: 64,
  messages: [{ role: 'user', content: 'hi' }],
});
const children: ChildProcess[] = [];

function start(cmd: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const proc = spawn('node', cmd, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(proc);
  let out = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${cmd.join(' ')} did not start: ${out}`)), 30_000);
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m && (!cmd.includes('serve') || /admin token/.test(out))) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
  });
}

async function load(name: string, url: string, headers: Record<string, string>) {
  const r = await autocannon({
    url: `${url}/v1/messages`,
    method: 'POST',
    headers,
    body: BODY,
    connections,
    duration,
  });
  const row = {
    name,
    reqPerSec: Math.round(r.requests.average),
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
  };
  process.stderr.write(
    `${name}: ${row.reqPerSec} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms, non-2xx ${row.non2xx}\n`,
  );
  return row;
}

try {
  const emulator = await start(['bin/chokepoint.js', 'emulator', '--port', '0']);
  const bare = await start(['bin/run-ts.js', 'bench/bare-proxy.ts', emulator]);
  const dir = mkdtempSync(join(tmpdir(), 'cp-bench-'));
  const config = join(dir, 'chokepoint.config.yaml');
  const big = '{ ceiling: "1000000", window: day }';
  writeFileSync(
    config,
    `provider: { kind: emulator, baseUrl: "${emulator}" }\nlog: { level: warn }\nbudgets: { defaults: { global: ${big}, team: ${big}, env: ${big}, seat: ${big} } }\n`,
  );
  const chokepoint = await start(['bin/chokepoint.js', 'serve', '--port', '0'], {
    REDIS_URL: '',
    CHOKEPOINT_CONFIG: config,
    CHOKEPOINT_DATA_DIR: join(dir, 'data'),
    CHOKEPOINT_WORKFLOWS_DIR: dir,
    CHOKEPOINT_ADMIN_TOKEN: TOKEN,
  });
  const created = await fetch(`${chokepoint}/api/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ team: 'bench', env: 'bench', seat: 'bench' }),
  });
  const { key } = (await created.json()) as { key: string };
  const json = { 'content-type': 'application/json' };
  const rows = [
    await load('direct to emulator', emulator, {
      ...json,
      'x-api-key': 'sk-emulator-local',
      'anthropic-version': '2023-06-01',
    }),
    await load('bare node:http proxy', bare, json),
    await load('chokepoint (embedded)', chokepoint, { ...json, 'x-api-key': key }),
  ];
  const baseline = rows[1]!.reqPerSec;
  console.log(`\n| contender | req/s | p50 ms | p99 ms | vs bare proxy |\n| --- | --- | --- | --- | --- |`);
  for (const r of rows)
    console.log(
      `| ${r.name} | ${r.reqPerSec} | ${r.p50} | ${r.p99} | ${((100 * r.reqPerSec) / baseline).toFixed(0)}% |`,
    );
  console.log(
    `\n(${connections} connections, ${duration} s each, tiny non-streaming body, zero-latency emulator; all on this machine)`,
  );
} finally {
  for (const c of children) c.kill('SIGTERM');
}
