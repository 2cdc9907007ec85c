/**
 * What OpenTelemetry tracing costs per gateway call, as ratios in one run: `chokepoint serve`
 * (embedded, emulator at 0 ms) with tracing off, twice (the two off runs bound the measurement's
 * own noise: "off costs nothing measurable" means off-vs-off and off-vs-before are alike), and on,
 * exporting every call's span over OTLP/HTTP protobuf and JSON to a local sink in this process.
 * Each contender is driven at saturation with autocannon for `--duration` seconds per round, the
 * contenders interleaved over `--rounds` rounds; the serve process's CPU per request is the
 * median over the rounds. `--baseline <dir>` adds a checkout without the tracing code (e.g.
 * `git archive <commit> | tar -x -C <dir>` with node_modules linked) as `before`.
 *
 *   node bin/run-ts.js bench/tracing.ts [--quick] [--duration 5] [--rounds 3] [--baseline <dir>]
 *     [--micro: the in-process part only]
 *
 * Writes bench/results/tracing.json (not with --quick).
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { encodeProtobuf } from '../adapters/otlp/protobuf.ts';
import { encodeJson, type SpanData } from '../adapters/otlp/span.ts';
import { tracingFromEnv } from '../runtime/config/otel.ts';
import type { CallRecord } from '../runtime/gateway/call.ts';
import { Tracer } from '../runtime/observability/tracing.ts';
import {
  api,
  chokepointConfig,
  chokepointEnv,
  type Proc,
  sample,
  startEmulator,
  startNode,
  stopAll,
} from './lib/procs.ts';

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = argv.includes('--quick');
const duration = Number(opt('duration') ?? (quick ? 2 : 5));
const rounds = Number(opt('rounds') ?? (quick ? 1 : 3));
const baseline = opt('baseline');
const TOKEN = 'cpo_bench-token-0123456789abcdef';
const root = fileURLToPath(new URL('..', import.meta.url));
const body = JSON.stringify({
  model: 'claude-haiku-4-5',
  max_tokens: 64,
  messages: [{ role: 'user', content: 'hi' }],
});

/** The local OTLP sink: counts what arrives (requests, bytes) and answers 200. */
const sink = { requests: 0, bytes: 0 };
const server = createServer((req, res) => {
  req.on('data', (c: Buffer) => {
    sink.bytes += c.length;
  });
  req.on('end', () => {
    sink.requests++;
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const sinkUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

/**
 * The tracer's own work per call, in this process (CPU time, so a loaded machine skews it less
 * than the HTTP runs): building the span from a call record, and encoding it in batches of 512.
 */
function micro(n: number) {
  const spans: SpanData[] = [];
  const settings = tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl }, [])!;
  const tracer = new Tracer(
    settings,
    { push: (span) => spans.push(span), flush: async () => {}, shutdown: async () => {} },
    () => 'anthropic',
  );
  const identity = { team: 'payments', env: 'prod', seat: 'alice', keyId: 'key_0123456789' };
  const call = {
    identity,
    requestId: 'req_0123456789abcdef',
    body: { model: 'claude-haiku-4-5', max_tokens: 64, messages: [] },
    headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
  };
  const record: CallRecord = {
    status: 200,
    model: 'claude-haiku-4-5',
    provider: 'anthropic',
    tokens: { input: 12, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 2048, output: 40 },
    cost: 1234,
    reserved: 5678,
    outcome: 'ok',
    ledgerId: 'led_0123456789abcdef',
  };
  const cpu = (fn: () => void) => {
    const t = process.cpuUsage();
    fn();
    const d = process.cpuUsage(t);
    return (d.user + d.system) / n;
  };
  const origin = { resource: settings.resource, scope: { name: 'chokepoint', version: '0.1.0' } };
  // As the exporter meets them: batches of 512 spans, built and encoded, then dropped.
  const run = (encode?: (spans: SpanData[]) => unknown) => () => {
    for (let i = 0; i < n; i++) {
      tracer.call(
        call,
        record,
        { started: i, admitted: i + 0.1, responded: i + 0.5, ended: i + 1 },
        'ab12cd34',
      );
      if (spans.length === 512) {
        encode?.(spans);
        spans.length = 0;
      }
    }
    spans.length = 0;
  };
  const build = run();
  const proto = run((x) => encodeProtobuf(origin, x));
  const json = run((x) => encodeJson(origin, x));
  build();
  proto();
  json(); // warm up
  const buildUs = cpu(build);
  const protoUs = cpu(proto) - buildUs;
  const jsonUs = cpu(json) - buildUs;
  tracer.call(call, record, { started: 0, ended: 1 }, 'ab12cd34');
  const one = encodeProtobuf(origin, spans).length;
  const r = (x: number) => Math.round(x * 100) / 100;
  return {
    buildUs: r(buildUs),
    protobufUs: r(protoUs),
    jsonUs: r(jsonUs),
    spanBytesProtobuf: one,
  };
}

interface Contender {
  name: string;
  proc: Proc;
  key: string;
  cpuUs: number[];
  rps: number[];
}

try {
  const m = micro(quick ? 20_000 : 100_000);
  console.log(
    `tracer work per call (in process): build the span ${m.buildUs} µs, encode ${m.protobufUs} µs protobuf / ${m.jsonUs} µs JSON (${m.spanBytesProtobuf} bytes a span)\n`,
  );
  if (argv.includes('--micro')) process.exit(0);
  const cli = join(root, 'bin/chokepoint.js');
  const emulator = await startEmulator(cli);
  const provider = `provider: { kind: emulator, baseUrl: "${emulator.url}", countTokensNearCeiling: false }`;
  const off = {
    OTEL_EXPORTER_OTLP_ENDPOINT: '',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
    OTEL_TRACES_EXPORTER: '',
  };
  const variants: { name: string; root: string; env: Record<string, string> }[] = [
    ...(baseline ? [{ name: 'before (no tracing code)', root: baseline, env: off }] : []),
    { name: 'off', root, env: off },
    { name: 'off (again)', root, env: off },
    {
      name: 'on, http/protobuf',
      root,
      env: { ...off, OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' },
    },
    {
      name: 'on, http/json',
      root,
      env: { ...off, OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
    },
  ];
  const contenders: Contender[] = [];
  for (const v of variants) {
    const config = chokepointConfig(provider);
    const proc = await startNode([join(v.root, 'bin/chokepoint.js'), 'serve', '--port', '0'], {
      env: { ...chokepointEnv(config, TOKEN), ...v.env },
    });
    const who = { team: 'bench', env: 'bench', seat: 'bench' };
    const { key } = await api<{ key: string }>(proc.url, TOKEN, 'POST', '/api/keys', who);
    contenders.push({ name: v.name, proc, key, cpuUs: [], rps: [] });
  }
  const shoot = (c: Contender, seconds: number) =>
    autocannon({
      url: `${c.proc.url}/v1/messages`,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': c.key },
      body,
      connections: 20,
      duration: seconds,
    });
  for (const c of contenders) await shoot(c, 1); // warm up: JIT, pools, prepared statements
  for (let round = 0; round < rounds; round++) {
    for (const c of contenders) {
      const before = sample([c.proc.pid]);
      const r = await shoot(c, duration);
      const after = sample([c.proc.pid]);
      if (r.non2xx + r.errors > 0) throw new Error(`${c.name}: ${r.non2xx + r.errors} failed calls`);
      c.cpuUs.push(((after.cpuMs - before.cpuMs) * 1000) / Math.max(1, r.requests.total));
      c.rps.push(r.requests.average);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ref = median(contenders.find((c) => c.name === 'off')!.cpuUs);
  const rows = contenders.map((c) => ({
    name: c.name,
    cpuUsPerCall: Math.round(median(c.cpuUs)),
    vsOff: Math.round((median(c.cpuUs) / ref) * 1000) / 1000,
    reqPerS: Math.round(median(c.rps)),
    rounds: c.cpuUs.map(Math.round),
  }));
  console.log('| tracing | CPU µs/call (median) | vs off | req/s | per round |');
  console.log('|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.name} | ${r.cpuUsPerCall} | ${r.vsOff.toFixed(3)} | ${r.reqPerS} | ${r.rounds.join(', ')} |`,
    );
  console.log(`\nOTLP sink: ${sink.requests} export requests, ${(sink.bytes / 2 ** 20).toFixed(1)} MiB`);
  const load = Math.round(loadavg()[0]! * 10) / 10;
  // Other work on the machine swamps a few µs a call: the HTTP rows then say little, the in-process ones still do.
  if (load > cpus().length)
    console.log(`(load average ${load} on ${cpus().length} cores: the HTTP rows are noise)`);
  if (sink.requests === 0) throw new Error('no span reached the sink: tracing was not on');
  if (!quick) {
    writeFileSync(
      join(root, 'bench/results/tracing.json'),
      `${JSON.stringify({ at: new Date().toISOString(), loadavg: load, cores: cpus().length, duration, rounds, micro: m, rows, sink }, null, 2)}\n`,
    );
  }
} finally {
  await stopAll();
  server.closeAllConnections();
  server.close();
}
