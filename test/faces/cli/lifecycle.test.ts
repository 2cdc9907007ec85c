import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Served, serveProcess } from '../../helpers/serve.ts';

/**
 * `serve` and `worker` start-up and shutdown: Redis unreachable at start is one clear line and
 * exit 1 (no stack trace); a graceful stop that cannot finish (Redis gone mid-way) ends at the
 * shutdown deadline with exit 1 and a log line naming what did not close.
 */

const ROOT = join(import.meta.dirname, '../../..');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function run(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; out: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['bin/chokepoint.js', ...args], {
      cwd: ROOT,
      env: { ...process.env, CHOKEPOINT_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
    });
    proc.stderr!.on('data', (d) => {
      out += d;
    });
    proc.on('exit', (code) => resolve({ code, out, ms: Date.now() - started }));
  });
}

describe('serve and worker start-up and shutdown', () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it.each([['serve', '--port', '0'], ['worker']])(
    '%s with Redis unreachable: one line naming the URL and what to do, exit 1',
    async (...args) => {
      const port = await freePort(); // nothing listens there
      const dataDir = mkdtempSync(join(tmpdir(), 'cp-life-'));
      cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
      const r = await run(args, { REDIS_URL: `redis://127.0.0.1:${port}`, CHOKEPOINT_DATA_DIR: dataDir });
      expect(r.code).toBe(1);
      expect(r.out.trim()).toBe(
        `chokepoint ${args[0]}: cannot reach Redis at redis://127.0.0.1:${port}: ECONNREFUSED; start Redis or unset REDIS_URL`,
      );
      expect(r.out).not.toMatch(/\n\s+at /); // no stack trace
    },
    30_000,
  );

  it('serve: SIGTERM after Redis went away ends at the shutdown deadline, exit 1, naming what did not close', async () => {
    const port = await freePort();
    const redis: ChildProcess = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    cleanup.push(() => {
      redis.kill('SIGCONT');
      redis.kill('SIGKILL');
    });
    // Wait for it to answer.
    for (let i = 0; ; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = createServer();
        s.once('error', () => resolve(true)); // the port is taken: redis listens
        s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
      });
      if (ok) break;
      if (i > 200) throw new Error('redis-server did not start');
      await new Promise((r) => setTimeout(r, 25));
    }
    const served: Served = await serveProcess(
      { REDIS_URL: `redis://127.0.0.1:${port}`, CHOKEPOINT_LOG_LEVEL: 'info' },
      ['--shutdown-timeout', '2s'],
    );
    cleanup.push(() => served.stop());
    // The outage: Redis stops answering (frozen, connections open), as a hung or partitioned host.
    redis.kill('SIGSTOP');
    const started = Date.now();
    const code = await served.stop();
    const ms = Date.now() - started;
    // With its output, so a failure shows how the process ended.
    expect({ code, tail: served.output().slice(-1500) }).toMatchObject({ code: 1 });
    expect(ms).toBeGreaterThanOrEqual(1_900);
    expect(ms).toBeLessThan(10_000);
    expect(served.output()).toMatch(/shutdown deadline of 2s passed: did not close: [^\n]+; exiting 1/);
  }, 60_000);

  it('serve: SIGTERM on a healthy server stops well within the deadline, exit 0', async () => {
    const served = await serveProcess({}, ['--shutdown-timeout', '10s']);
    const code = await served.stop();
    expect(code).toBe(0);
    expect(served.output()).not.toMatch(/shutdown deadline/);
  }, 60_000);

  it('rejects a bad --shutdown-timeout', async () => {
    const r = await run(['serve', '--port', '0', '--shutdown-timeout', 'soon'], { REDIS_URL: '' });
    expect(r.code).toBe(2);
    expect(r.out).toContain('--shutdown-timeout: expected a duration like "15s" or "1m", got "soon"');
  });
});
