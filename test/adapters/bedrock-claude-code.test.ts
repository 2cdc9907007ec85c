import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator } from '../../adapters/emulator/index.ts';
import { listenDual, type Served } from '../../adapters/http/h2c.ts';

/**
 * The real Claude Code CLI in Bedrock mode (`CLAUDE_CODE_USE_BEDROCK=1`) straight at the emulator's
 * Bedrock face, signing with SigV4 (no `CLAUDE_CODE_SKIP_BEDROCK_AUTH`): what it asks for and how
 * it reads the answers is what the gateway's Bedrock face will see. Uses the binary that
 * test/e2e/claude-code.test.ts installs; skipped when it is not there.
 */
const VERSION = '2.1.328';
const CACHE =
  process.env.CHOKEPOINT_CLAUDE_CODE_CACHE ??
  join(homedir(), '.cache', 'chokepoint', `claude-code-${VERSION}`);
const BINARY = join(CACHE, 'node_modules', '@anthropic-ai', 'claude-code-linux-x64', 'claude');

let emu: Emulator;
let served: Served;
let url: string;
interface Seen {
  method: string;
  path: string;
  status: number;
  body?: Record<string, unknown>;
}
const seen: Seen[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  emu = createEmulator();
  served = await listenDual(
    async (req) => {
      const u = new URL(req.url);
      const body = req.method === 'POST' ? JSON.parse(await req.clone().text()) : undefined;
      const res = await emu.fetch(req);
      seen.push({ method: req.method, path: `${u.pathname}${u.search}`, status: res.status, body });
      return res;
    },
    0,
    '127.0.0.1',
  );
  url = `http://127.0.0.1:${served.port}`;
});
afterAll(async () => {
  await served.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function claude(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const home = mkdtempSync(join(tmpdir(), 'cp-ccb-home-'));
  const cwd = mkdtempSync(join(tmpdir(), 'cp-ccb-work-'));
  dirs.push(home, cwd);
  return new Promise((resolve) => {
    execFile(
      BINARY,
      args,
      {
        cwd,
        timeout: 120_000,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: home,
          CLAUDE_CODE_USE_BEDROCK: '1',
          ANTHROPIC_BEDROCK_BASE_URL: `${url}/bedrock`,
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: emu.awsCredentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: emu.awsCredentials.secretAccessKey,
          DISABLE_TELEMETRY: '1',
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
          CLAUDE_CODE_MAX_RETRIES: '0',
        },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

describe.skipIf(!existsSync(BINARY))('Claude Code in Bedrock mode against the emulator', () => {
  it('lists inference profiles, probes models with 1-token calls, then streams the turn; all billed to bedrock', async () => {
    const run = await claude(['-p', 'say hello', '--output-format', 'json']);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const out = JSON.parse(run.stdout) as { is_error: boolean; result: string };
    expect(out.is_error).toBe(false);
    expect(out.result).toContain('Emulated reply');
    expect(seen[0]).toMatchObject({
      method: 'GET',
      path: '/bedrock/inference-profiles?type=SYSTEM_DEFINED',
      status: 200,
    });
    const invokes = seen.filter((s) => s.path.startsWith('/bedrock/model/'));
    const streamed = invokes.filter((s) => s.path.endsWith('/invoke-with-response-stream'));
    expect(streamed.map((s) => s.path)).toEqual([
      '/bedrock/model/us.anthropic.claude-opus-5-5/invoke-with-response-stream',
    ]);
    expect(streamed[0]!.body).toMatchObject({ anthropic_version: 'bedrock-2023-05-31' });
    expect(streamed[0]!.body).not.toHaveProperty('model');
    expect(streamed[0]!.body).not.toHaveProperty('stream');
    // Model availability probes: non-streamed, max_tokens 1, on several models; each one that
    // answers is a billed call (the gateway must admit and account them like any other).
    const probes = invokes.filter((s) => s.path.endsWith('/invoke'));
    expect(probes.length).toBeGreaterThan(1);
    expect(probes.every((p) => p.body?.max_tokens === 1)).toBe(true);
    const answered = invokes.filter((s) => s.status === 200).length;
    const bill = emu.billing.list();
    expect(bill).toHaveLength(answered);
    expect(bill.every((e) => e.provider === 'bedrock' && e.regional === true)).toBe(true);
  });
});
