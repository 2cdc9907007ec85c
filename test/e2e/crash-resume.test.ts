import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator } from '../../adapters/emulator/index.ts';
import { type Served, serveProcess } from '../helpers/serve.ts';

/**
 * Durability for real: a `chokepoint serve` process is killed with SIGKILL in the middle of a
 * run (its first model call done and billed, its tool call in flight), a new process is started
 * on the same data folder, and the run resumes from its last step. The provider's own billing
 * record (a standalone emulator that outlives both processes) proves nothing was billed twice.
 */

const TOKEN = 'cpo_e2e-crash-token-0123456789';
const WORKFLOWS = new URL('./fixtures/crash-workflows', import.meta.url).pathname;

interface Body {
  run?: { id: string; state: string; steps: number };
  journal?: { kind: string }[];
  entries?: { kind: string; outcome: string; cost: number }[];
}

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

describe.each(['embedded', 'redis'] as const)('crash mid-run (kill -9) and restart (%s)', (backend) => {
  const prefix = `{cpt-crash-${process.pid}-${Date.now() % 100000}}`;
  const emulator = createEmulator({ apiKey: 'sk-emulator-local' });
  let upstream: { url: string; close(): Promise<void> };
  let dataDir: string;
  let served: Served | undefined;

  beforeAll(async () => {
    upstream = await emulator.listen({ port: 0, host: '127.0.0.1' });
    dataDir = mkdtempSync(join(tmpdir(), 'cp-crash-'));
    const store =
      backend === 'redis'
        ? `store:\n  backend: redis\n  redisUrl: ${JSON.stringify(REDIS_URL)}\n  prefix: ${JSON.stringify(prefix)}\n`
        : '';
    writeFileSync(join(dataDir, 'config.yaml'), `workflows:\n  lease: 1s\n${store}`);
  });
  afterAll(async () => {
    await served?.stop();
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
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${served!.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Body };
  };

  it('resumes the run from its last step without calling (or billing) a completed call again', async () => {
    served = await serveProcess(env());
    const started = await api('POST', '/api/runs', {
      workflow: 'slow-tool',
      input: { task: 'Find it [[emulator:tool_use slow_lookup={"q":"A1"}]]' },
    });
    expect(started.body).toMatchObject({ run: { state: 'running' } });
    expect(started.status).toBe(201);
    const id = started.body.run!.id;

    // Wait until the first model call is journaled (the slow tool is now running), then SIGKILL.
    for (let i = 0; i < 100; i++) {
      const r = await api('GET', `/api/runs/${id}`);
      if (r.body.journal?.length === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(emulator.billing.toJSON().calls).toBe(1);
    served.proc.kill('SIGKILL');
    await new Promise((r) => served!.proc.once('exit', r));

    served = await serveProcess(env());
    let run: Body = {};
    for (let i = 0; i < 300; i++) {
      run = (await api('GET', `/api/runs/${id}`)).body;
      if (run.run?.state !== 'running') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(run.run!.state).toBe('done');
    expect(run.run!.steps).toBe(3);
    expect(run.journal!.map((j) => j.kind)).toEqual(['model', 'tool', 'model']);

    // Two model calls made in all: the first was answered from the journal after the restart.
    const billing = emulator.billing.toJSON();
    expect(billing.calls).toBe(2);
    const ledger = (await api('GET', `/api/ledger?run=${id}`)).body.entries!;
    const models = ledger.filter((e) => e.kind === 'model' && e.outcome === 'ok');
    expect(models).toHaveLength(2);
    expect(models.reduce((n, e) => n + e.cost, 0)).toBe(billing.total_micros);
    expect(ledger.filter((e) => e.kind === 'tool')).toHaveLength(1);
  }, 60_000);
});
