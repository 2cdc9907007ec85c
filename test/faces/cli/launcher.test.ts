import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * The launcher (bin/chokepoint.js) gives node a 64 MB young-generation semi-space: its
 * `#!/usr/bin/env -S node …` line carries the flag, `npm start` passes the same, and a `serve`
 * started through the launcher itself (as an installed `chokepoint` is) runs with it.
 */

const ROOT = join(import.meta.dirname, '../../..');
const FLAG = '--max-semi-space-size=64';

const shebangFlags = () => {
  const first = readFileSync(join(ROOT, 'bin/chokepoint.js'), 'utf8').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env -S node(.*)$/.exec(first);
  return m ? m[1]!.trim().split(/\s+/).filter(Boolean) : undefined;
};

describe('the launcher', () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('names the young-generation flag on its #! line, and npm start passes the same flags', () => {
    expect(shebangFlags()).toEqual([FLAG]);
    const start = (
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }
    ).scripts.start;
    expect(start).toBe(`node ${shebangFlags()!.join(' ')} bin/chokepoint.js serve`);
  });

  it('serve started through the launcher itself runs node with the flag', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cp-launch-'));
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
    // Executed as a program: the kernel reads the #! line, env splits it (-S) and starts node.
    const proc = spawn(join(ROOT, 'bin/chokepoint.js'), ['serve', '--port', '0'], {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: '', CHOKEPOINT_DATA_DIR: dataDir, CHOKEPOINT_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
    cleanup.push(async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    });
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
    });
    proc.stderr!.on('data', (d) => {
      out += d;
    });
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (/listening on http:\/\/\S+/.test(out) && /admin token/.test(out)) resolve();
      };
      proc.stdout!.on('data', check);
      void exited.then(() => reject(new Error(`serve exited:\n${out}`)));
    });
    // The process that listens is node itself, its command line the flag and the launcher's path.
    const argv = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    expect(argv[0]).toMatch(/node$/);
    expect(argv).toContain(FLAG);
    expect(argv.indexOf(FLAG)).toBeLessThan(argv.indexOf(join(ROOT, 'bin/chokepoint.js')));
    expect(argv.slice(-3)).toEqual(['serve', '--port', '0']);
  }, 30_000);
});
