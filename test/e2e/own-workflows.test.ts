import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator } from '../../adapters/emulator/index.ts';

/**
 * A new user's own workflows, following only the README: a project folder outside the checkout
 * with a workflows folder holding nothing but `.ts` files (no package.json, no node_modules),
 * `CHOKEPOINT_WORKFLOWS_DIR` pointing at it, and the real `chokepoint serve --watch` and
 * `chokepoint run` started from that project folder.
 */

const BIN = join(import.meta.dirname, '../../bin/chokepoint.js');
const TOKEN = 'cpo_e2e-own-workflows-0123456789';
const LOOKUP = '[[emulator:tool_use lookup={"order":"A1"}]]';

const triage = (version: number) => `import { defineAgent, z } from 'chokepoint/workflow';
import { greeting } from './lib/wording.ts';

export default defineAgent({
  id: 'triage', version: ${version}, description: greeting,
  input: z.object({ ticket: z.string().min(1) }),
  system: 'You triage tickets.',
  tools: {
    lookup: {
      description: 'Looks up an order',
      input_schema: z.object({ order: z.string() }),
      run: ({ order }) => 'order ' + order + ': shipped',
    },
  },
  limits: { spend: '$0.50', time: '1m', steps: 8 },
  task: (i) => i.ticket,
});
`;

interface Listed {
  workflows: { id: string; version: string; description: string }[];
  invalid: { file: string; problems: { field: string; message: string }[] }[];
}

describe("chokepoint serve on a workflows folder of one's own, outside the checkout", () => {
  const emulator = createEmulator({ apiKey: 'sk-emulator-local' });
  let upstream: { url: string; close(): Promise<void> };
  let project: string;
  let proc: ChildProcess;
  let url: string;
  let banner = '';

  const env = () => ({
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CHOKEPOINT_'))),
    REDIS_URL: '',
    CHOKEPOINT_ADMIN_TOKEN: TOKEN,
    CHOKEPOINT_DATA_DIR: join(project, 'data'),
    CHOKEPOINT_WORKFLOWS_DIR: 'workflows',
    CHOKEPOINT_LOG_LEVEL: 'warn',
    ANTHROPIC_BASE_URL: upstream.url,
  });
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return (await res.json()) as T;
  };

  beforeAll(async () => {
    upstream = await emulator.listen({ port: 0, host: '127.0.0.1' });
    project = mkdtempSync(join(tmpdir(), 'cp-own-project-'));
    const dir = join(project, 'workflows');
    mkdirSync(join(dir, 'lib'), { recursive: true });
    writeFileSync(join(dir, 'lib/wording.ts'), "export const greeting: string = 'Triages tickets';\n");
    writeFileSync(join(dir, 'triage.ts'), triage(1));
    writeFileSync(
      join(dir, 'broken.ts'),
      triage(1).replace("id: 'triage'", "id: 'broken'").replace("spend: '$0.50'", "spend: 'plenty'"),
    );
    proc = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--watch'], {
      cwd: project,
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stderr!.on('data', (d) => {
      banner += d;
    });
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start:\n${banner}`)), 30_000);
      proc.on('exit', (code) => reject(new Error(`serve exited with ${code}:\n${banner}`)));
      proc.stdout!.on('data', (d) => {
        banner += d;
        const m = /listening on (http:\/\/\S+)/.exec(banner);
        if (!m || !/\n {2}store /.test(banner)) return;
        clearTimeout(timer);
        resolve(m[1]!);
      });
    });
  }, 40_000);
  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      proc.removeAllListeners('exit');
      await new Promise((r) => {
        proc.once('exit', r);
        proc.kill('SIGTERM');
      });
    }
    await upstream?.close();
    rmSync(project, { recursive: true, force: true });
  });

  it('loads the valid file and names the invalid one in its banner, with the field that is wrong', () => {
    expect(banner).toMatch(/^ {2}workflows +triage@1 /m);
    expect(banner).toMatch(/^ {2}INVALID +broken\.ts: limits\.spend: .*plenty/m);
    expect(banner).not.toMatch(/Cannot require|Cannot find package/);
  });

  it('runs the workflow to the end from `chokepoint run --wait`', async () => {
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [BIN, 'run', 'triage', '--input', JSON.stringify({ ticket: `Where is A1? ${LOOKUP}` }), '--wait'],
        { cwd: project, env: { ...env(), CHOKEPOINT_URL: url, CHOKEPOINT_TOKEN: TOKEN }, timeout: 25_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
      );
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/run_\w+ {2}done\n/);
    expect(r.stdout).toMatch(/^ {2}steps +3 of 8$/m);
  });

  it('--watch reloads a changed file, and the helper it imports, from the folder', async () => {
    const dir = join(project, 'workflows');
    writeFileSync(join(dir, 'lib/wording.ts'), "export const greeting: string = 'Sorts tickets';\n");
    writeFileSync(join(dir, 'triage.ts'), triage(2));
    let listed: Listed = { workflows: [], invalid: [] };
    for (let i = 0; i < 100 && !listed.workflows.some((w) => w.version === '2'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      listed = await api<Listed>('/api/workflows');
    }
    expect(listed.workflows.find((w) => w.id === 'triage' && w.version === '2')).toMatchObject({
      description: 'Sorts tickets',
    });
    expect(listed.invalid.map((i) => i.file)).toEqual(['broken.ts']);
  });
});
