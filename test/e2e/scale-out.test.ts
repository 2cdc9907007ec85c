import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator } from '../../adapters/emulator/index.ts';
import { type Served, serveProcess, workerProcess } from '../helpers/serve.ts';

/**
 * The approvals scale-out drill, for real: 200 runs of a looping workflow suspend on their time
 * box, a human approves each through the API, and the runs resume on whichever worker takes them
 * and complete. On Redis: one `serve --no-workers` and two `chokepoint worker` processes, and one
 * worker is killed with SIGKILL midway; BullMQ's stalled-job check hands its runs to the other.
 * On the embedded backend: the same minus the workers (serve runs everything).
 *
 * The money check matches the provider's own billing record (a standalone emulator) to the
 * ledger call by call, through the request id the gateway sends with every call: every ledger
 * `ok` entry was billed exactly once at exactly its cost, and no call was billed twice. The only
 * provider charges without an `ok` entry are calls that were in flight inside the killed worker
 * (answered by the provider after the process was gone); each of those is in the ledger as its
 * reservation `expired`, so reconciliation can name every one.
 */

const TOKEN = 'cpo_e2e-scale-token-0123456789';
const WORKFLOWS = new URL('./fixtures/loop-workflows', import.meta.url).pathname;
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const RUNS = 200;
const ITERATIONS = 30;

interface RunView {
  id: string;
  state: string;
  output?: { iterations: number };
}
interface LedgerView {
  requestId: string;
  kind: string;
  outcome: string;
  cost: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(['redis', 'embedded'] as const)('scale-out: %s', (backend) => {
  const prefix = `{cpt-scale-${process.pid}-${Date.now() % 100000}}`;
  const emulator = createEmulator({ apiKey: 'sk-emulator-local' });
  let upstream: { url: string; close(): Promise<void> };
  let dataDir: string;
  let server: Served | undefined;
  const workers: Served[] = [];

  beforeAll(async () => {
    upstream = await emulator.listen({ port: 0, host: '127.0.0.1' });
    dataDir = mkdtempSync(join(tmpdir(), 'cp-scale-'));
    const store =
      backend === 'redis'
        ? `  backend: redis\n  redisUrl: ${JSON.stringify(REDIS_URL)}\n  prefix: ${JSON.stringify(prefix)}\n`
        : '';
    writeFileSync(
      join(dataDir, 'config.yaml'),
      `workflows:\n  lease: 2s\nstore:\n  reservationTtl: 3s\n${store}workers:\n  concurrency: 16\n`,
    );
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), ...workers.map((w) => w.stop())]);
    await upstream.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (backend === 'redis') {
      const { Redis } = await import('ioredis');
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  });

  const env = () => ({
    CHOKEPOINT_ADMIN_TOKEN: TOKEN,
    CHOKEPOINT_DATA_DIR: dataDir,
    CHOKEPOINT_CONFIG: join(dataDir, 'config.yaml'),
    CHOKEPOINT_WORKFLOWS_DIR: WORKFLOWS,
    ANTHROPIC_BASE_URL: upstream.url,
  });
  const api = async <T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${server!.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  };

  it(`${RUNS} looping runs suspend on their time box, are approved through the API and complete${
    backend === 'redis' ? ' on two workers, one killed -9 midway' : ''
  }; the ledger matches the provider's bill call by call`, async () => {
    if (backend === 'redis') {
      server = await serveProcess(env(), ['--no-workers']);
      // The second worker (the one that lives) serves its own /metrics.
      workers.push(await workerProcess(env()), await workerProcess(env(), ['--metrics-port', '0']));
    } else {
      server = await serveProcess(env());
    }

    const ids: string[] = [];
    for (let i = 0; i < RUNS; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(20, RUNS - i) }, () =>
          api<{ run: RunView }>('POST', '/api/runs', { workflow: 'loop', input: { n: ITERATIONS } }),
        ),
      );
      for (const r of batch) {
        expect(r.status).toBe(201);
        ids.push(r.body.run.id);
      }
    }

    let approved = 0;
    let killed = false;
    let done: RunView[] = [];
    const deadline = Date.now() + 240_000;
    while (Date.now() < deadline) {
      const pending = await api<{ approvals: { id: string; reason: string; summary: string }[] }>(
        'GET',
        '/api/approvals?workflow=loop&limit=1000',
      );
      for (const item of pending.body.approvals) {
        expect(item.reason).toBe('time_box');
        expect(item.summary).toMatch(/^time box: ran \d+(\.\d+)?s of 1s$/);
        const r = await api('POST', `/api/approvals/${item.id}/approve`, { reason: 'keep going' });
        expect(r.status).toBe(200);
        approved++;
      }
      if (backend === 'redis' && !killed && approved >= RUNS / 3) {
        workers[0]!.proc.kill('SIGKILL');
        killed = true;
      }
      const list = await api<{ runs: RunView[] }>('GET', '/api/runs?workflow=loop&limit=1000');
      done = list.body.runs.filter((r) => r.state === 'done');
      const bad = list.body.runs.filter((r) => !['done', 'running', 'suspended'].includes(r.state));
      expect(bad).toEqual([]);
      if (done.length === RUNS) break;
      await sleep(250);
    }
    expect(done).toHaveLength(RUNS);
    for (const r of done) expect(r.output).toEqual({ iterations: ITERATIONS });
    // Every run suspended at least once and was approved (one audited decision per approval).
    expect(approved).toBeGreaterThanOrEqual(RUNS);
    if (backend === 'redis') expect(killed).toBe(true);

    // A decided item cannot be decided again.
    const decided = await api<{ approvals: { id: string }[] }>(
      'GET',
      '/api/approvals?state=approved&limit=1',
    );
    const again = await api<{ chokepoint: { code: string } }>(
      'POST',
      `/api/approvals/${decided.body.approvals[0]!.id}/approve`,
      { reason: 'twice' },
    );
    expect(again.status).toBe(409);

    // The money: call by call against the provider's billing record.
    let ledger: LedgerView[] = [];
    let unmatched: string[] = [];
    const billing = () => emulator.billing.toJSON();
    for (let attempt = 0; attempt < 20; attempt++) {
      ledger = [];
      for (const id of ids) {
        const r = await api<{ entries: LedgerView[] }>('GET', `/api/ledger?run=${id}&kind=model&limit=1000`);
        ledger.push(...r.body.entries);
      }
      const known = new Set(ledger.map((e) => e.requestId));
      unmatched = billing()
        .entries.map((b) => b.clientRequestId ?? '?')
        .filter((rid) => !known.has(rid));
      if (unmatched.length === 0) break;
      // Reservations of calls lost with the killed worker expire after store.reservationTtl (3 s)
      // and are recorded on a later admission: give them the time.
      await sleep(1_000);
    }
    expect(unmatched).toEqual([]);
    const b = billing();
    expect(b.calls).toBe(b.entries.length);
    const byRequest = new Map<string, number>();
    for (const e of b.entries)
      byRequest.set(e.clientRequestId!, (byRequest.get(e.clientRequestId!) ?? 0) + 1);
    expect([...byRequest.values()].filter((n) => n > 1)).toEqual([]); // no call billed twice
    const ledgerByRequest = new Map(ledger.map((e) => [e.requestId, e]));
    let lostCost = 0;
    for (const e of b.entries) {
      const l = ledgerByRequest.get(e.clientRequestId!)!;
      if (l.outcome === 'ok') expect(l.cost).toBe(e.costMicros);
      else {
        // Only a killed worker loses a call's answer; it is recorded as its expired reservation.
        expect(backend).toBe('redis');
        expect(l.outcome).toBe('expired');
        lostCost += e.costMicros;
      }
    }
    const ok = ledger.filter((e) => e.outcome === 'ok');
    expect(ok.every((e) => byRequest.get(e.requestId) === 1)).toBe(true);
    const ledgerSum = ok.reduce((n, e) => n + e.cost, 0);
    expect(ledgerSum + lostCost).toBe(b.total_micros);
    if (backend === 'embedded') expect(ledgerSum).toBe(b.total_micros);
    if (backend === 'redis') {
      // The surviving worker counts the calls it made for the runs it worked on.
      const metricsUrl = `${workers[1]!.url}/metrics`;
      expect(workers[1]!.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(metricsUrl)).status).toBe(401);
      const text = await (await fetch(metricsUrl, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
      const workerCalls = [...text.matchAll(/^chokepoint_calls_total\{[^}]*outcome="ok"[^}]*\} (\d+)$/gm)]
        .map((m) => Number(m[1]))
        .reduce((a, n) => a + n, 0);
      expect(workerCalls).toBeGreaterThan(0);
      expect(workerCalls).toBeLessThanOrEqual(ok.length);
    }
    console.log(
      `${backend}: ${RUNS} runs, ${approved} approvals, ${b.calls} model calls billed ($${(b.total_micros / 1e6).toFixed(6)}), ` +
        `${ok.length} in the ledger as ok, ${b.calls - ok.length} lost in flight with the killed worker ($${(lostCost / 1e6).toFixed(6)})`,
    );
  }, 300_000);
});
