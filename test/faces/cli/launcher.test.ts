import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { youngGenerationSet } from '../../../runtime/faces/cli/commands/serve.ts';
import { serveProcess } from '../../helpers/serve.ts';

/**
 * A gateway runs node with a 64 MB young-generation semi-space (README, Install): `npm start`
 * passes the flag, the Dockerfile and the systemd unit set it in NODE_OPTIONS, and a server
 * started with `npm start` has it on its command line. The #! line stays `env node`: `env -S`
 * is missing from BusyBox (Alpine).
 */

const ROOT = join(import.meta.dirname, '../../..');
const FLAG = '--max-semi-space-size=64';
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** Every process below `pid`, from /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {}
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

describe('the young-generation flag', () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('npm start passes it, the Dockerfile and the systemd unit set it; the #! line stays portable', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: { start: string } }).scripts.start;
    expect(start).toBe(`node ${FLAG} bin/chokepoint.js serve`);
    expect(read('deploy/Dockerfile')).toMatch(new RegExp(`^\\s*NODE_OPTIONS=${FLAG} \\\\$`, 'm'));
    expect(read('deploy/chokepoint.service')).toMatch(new RegExp(`^Environment=NODE_OPTIONS=${FLAG}$`, 'm'));
    expect(read('bin/chokepoint.js').split('\n', 1)[0]).toBe('#!/usr/bin/env node');
  });

  it('a server started with npm start runs node with it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cp-launch-'));
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const proc = spawn('npm', ['start', '--silent', '--', '--port', '0'], {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: '', CHOKEPOINT_DATA_DIR: dataDir, CHOKEPOINT_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: npm, its shell and node stop together
    });
    const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
    cleanup.push(async () => {
      if (proc.exitCode === null && proc.signalCode === null) process.kill(-proc.pid!, 'SIGTERM');
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
      proc.stdout!.on('data', () => {
        if (/listening on http:\/\/\S+/.test(out) && /admin token/.test(out)) resolve();
      });
      void exited.then(() => reject(new Error(`npm start exited:\n${out}`)));
    });
    const servers = descendants(proc.pid!)
      .map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean))
      .filter((argv) => argv.includes('bin/chokepoint.js') && argv.includes('serve'));
    expect(servers).toHaveLength(1);
    const argv = servers[0]!;
    expect(argv[0]).toMatch(/node$/);
    expect(argv.slice(1)).toEqual([FLAG, 'bin/chokepoint.js', 'serve', '--port', '0']);
    expect(out).not.toMatch(/young generation/);
  }, 60_000);

  it('a server started without it says so in its banner, with what to do', async () => {
    const served = await serveProcess({ NODE_OPTIONS: '' });
    cleanup.push(() => served.stop());
    expect(served.output()).toMatch(
      /^ {2}node {9}16 MB young generation: under load start with NODE_OPTIONS=--max-semi-space-size=64 \(as npm start does; README, Install\)$/m,
    );
    expect(youngGenerationSet([], undefined)).toBe(false);
    expect(youngGenerationSet([], '--max-old-space-size=512 --max-semi-space-size=32')).toBe(true);
    expect(youngGenerationSet(['--max_semi_space_size=16'], '')).toBe(true);
    expect(youngGenerationSet(['--max-old-space-size=512'], '--trace-gc')).toBe(false);
  }, 30_000);
});
