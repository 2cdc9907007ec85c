import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.ts';

/**
 * The real Claude Code CLI (npm `@anthropic-ai/claude-code`, whose native linux-x64 binary runs
 * offline) through the gateway to the emulator. Installed once from npm into a cache outside the
 * checkout (kept between runs: ~360 MB, ~8 s), run with a fresh HOME and working folder, and the
 * documented settings: ANTHROPIC_BASE_URL at the gateway, a cp_ key as ANTHROPIC_API_KEY.
 */
const VERSION = '2.1.328';
const CACHE =
  process.env.CHOKEPOINT_CLAUDE_CODE_CACHE ??
  join(homedir(), '.cache', 'chokepoint', `claude-code-${VERSION}`);
const BINARY = join(CACHE, 'node_modules', '@anthropic-ai', 'claude-code-linux-x64', 'claude');

function installClaudeCode(): void {
  if (existsSync(BINARY)) return;
  mkdirSync(CACHE, { recursive: true });
  execFileSync(
    'npm',
    [
      'install',
      '--prefix',
      CACHE,
      '--no-audit',
      '--no-fund',
      '--no-save',
      `@anthropic-ai/claude-code@${VERSION}`,
    ],
    { stdio: 'pipe', timeout: 300_000 },
  );
  if (!existsSync(BINARY)) throw new Error(`npm installed Claude Code but ${BINARY} is missing`);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface ResultJson {
  type: string;
  is_error: boolean;
  result: string;
  session_id: string;
  num_turns: number;
  api_error_status?: number | null;
}

type Ledger = { entries: Array<Record<string, any>> };

describe('Claude Code through the gateway', () => {
  let h: Harness;
  beforeAll(async () => {
    installClaudeCode();
    h = await startHarness();
  }, 330_000);
  const dirs: string[] = [];
  afterAll(async () => {
    await h?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** A fresh HOME and working folder, kept across the runs of one session. */
  function place() {
    const home = mkdtempSync(join(tmpdir(), 'cp-cc-home-'));
    const cwd = mkdtempSync(join(tmpdir(), 'cp-cc-work-'));
    dirs.push(home, cwd);
    return { home, cwd };
  }

  function claude(
    key: string,
    where: { home: string; cwd: string },
    args: string[],
    env: Record<string, string> = {},
  ) {
    return new Promise<Run>((resolve) => {
      execFile(
        BINARY,
        args,
        {
          cwd: where.cwd,
          timeout: 120_000,
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: where.home,
            ANTHROPIC_BASE_URL: h.url,
            ANTHROPIC_API_KEY: key,
            DISABLE_TELEMETRY: '1',
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
            CLAUDE_CODE_MAX_RETRIES: '0',
            ...env,
          },
        },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
          resolve({ code, stdout: String(stdout), stderr: String(stderr) });
        },
      );
    });
  }

  const ledgerFor = async (keyId: string) => {
    const res = await h.api<Ledger>('GET', '/api/ledger?limit=1000');
    return res.body.entries.filter((e) => e.identity.keyId === keyId).reverse();
  };
  const billFor = (requestIds: string[]) =>
    h.rt.emulator!.billing.list().filter((e) => requestIds.includes(e.clientRequestId ?? ''));
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

  it('answers a plain prompt, streamed, billed to the µ$ under Claude Code’s session id', async () => {
    const { key, id } = await h.client({ team: 'eng', seat: 'cc-plain' });
    const served = h.listening.fast!.counts.served;
    const run = await claude(key, place(), ['-p', 'say hello', '--output-format', 'json']);
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const out = JSON.parse(run.stdout) as ResultJson;
    expect(out.is_error).toBe(false);
    expect(out.result).toContain('Emulated reply');
    const entries = await ledgerFor(id);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ outcome: 'ok', name: 'claude-opus-5-5' });
    expect(entries[0]!.identity.session).toBe(out.session_id);
    const bill = billFor(entries.map((e) => e.requestId));
    expect(bill).toHaveLength(1);
    expect(bill[0]!.stream).toBe(true); // Claude Code always streams
    expect(entries[0]!.cost).toBe(bill[0]!.costMicros);
    // Its call took the gateway's own HTTP/1.1 path (runtime/faces/gateway/fast-h1.ts), not node:http.
    expect(h.listening.fast!.counts.served).toBeGreaterThan(served);
  });

  it('runs a multi-turn session in which Claude Code uses its own Bash tool, then resumes it', async () => {
    const { key, id } = await h.client({ team: 'eng', seat: 'cc-tools' });
    const where = place();
    const first = await claude(key, where, [
      '-p',
      'check the build [[emulator:tool_use Bash={"command":"echo chokepoint-was-here","description":"say it"}]]',
      '--output-format',
      'json',
      '--allowedTools',
      'Bash',
    ]);
    expect(first.code, first.stderr + first.stdout).toBe(0);
    const out = JSON.parse(first.stdout) as ResultJson;
    // The tool ran on this machine: its output came back to the model in the tool result.
    expect(out.result).toContain('chokepoint-was-here');
    expect(out.num_turns).toBe(2);
    const second = await claude(key, where, [
      '-p',
      'and now?',
      '--output-format',
      'json',
      '--resume',
      out.session_id,
    ]);
    expect(second.code, second.stderr + second.stdout).toBe(0);
    expect((JSON.parse(second.stdout) as ResultJson).session_id).toBe(out.session_id);
    const entries = await ledgerFor(id);
    expect(entries).toHaveLength(3);
    expect(entries.every((e) => e.outcome === 'ok' && e.identity.session === out.session_id)).toBe(true);
    const bill = billFor(entries.map((e) => e.requestId));
    expect(sum(entries.map((e) => e.cost))).toBe(sum(bill.map((b) => b.costMicros)));
  });

  it('streams events with stream-json and attributes a workflow from ANTHROPIC_CUSTOM_HEADERS', async () => {
    const { key, id } = await h.client({ team: 'eng', seat: 'cc-stream' });
    const run = await claude(
      key,
      place(),
      ['-p', 'stream please', '--output-format', 'stream-json', '--verbose'],
      {
        ANTHROPIC_CUSTOM_HEADERS: 'x-chokepoint-workflow: code-review',
      },
    );
    expect(run.code, run.stderr).toBe(0);
    const events = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    expect(events[0]!.type).toBe('system');
    expect(events.some((e) => e.type === 'assistant')).toBe(true);
    expect(events.at(-1)!.type).toBe('result');
    const [entry] = await ledgerFor(id);
    expect(entry!.identity.workflow).toBe('code-review');
    expect(entry!.cost).toBe(billFor([entry!.requestId])[0]!.costMicros);
  });

  it('stops at a budget refusal after one request and shows the refusal to the user', async () => {
    const { key, id } = await h.client({ team: 'eng', seat: 'cc-broke' });
    await h.api('POST', '/api/budgets/seat:cc-broke/ceiling', { amount: '0.01', reason: 'test' });
    const run = await claude(key, place(), ['-p', 'say hello', '--output-format', 'json'], {
      CLAUDE_CODE_MAX_RETRIES: '10', // the refusal's x-should-retry: false must stop it anyway
    });
    expect(run.code).toBe(1);
    const out = JSON.parse(run.stdout) as ResultJson;
    expect(out.is_error).toBe(true);
    expect(out.api_error_status).toBe(429);
    expect(out.result).toContain('budget exhausted');
    const entries = await ledgerFor(id);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ outcome: 'refused', code: 'budget_exhausted' });
  });

  it('works in its Bedrock mode through the Bedrock face, billed to the Bedrock provider', async () => {
    const { key, id } = await h.client({ team: 'eng', seat: 'cc-bedrock' });
    const before = h.rt.emulator!.billing.total('bedrock');
    const run = await claude(key, place(), ['-p', 'say hello', '--output-format', 'json'], {
      CLAUDE_CODE_USE_BEDROCK: '1',
      ANTHROPIC_BEDROCK_BASE_URL: `${h.url}/bedrock`,
      CLAUDE_CODE_SKIP_BEDROCK_AUTH: '1',
      AWS_REGION: 'us-east-1',
      // The Chokepoint key as the bearer token Claude Code sends without AWS auth.
      ANTHROPIC_AUTH_TOKEN: key,
      ANTHROPIC_API_KEY: '',
    });
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const out = JSON.parse(run.stdout) as ResultJson;
    expect(out.is_error).toBe(false);
    expect(out.result).toContain('Emulated reply');
    const entries = await ledgerFor(id);
    expect(entries.length).toBeGreaterThan(0);
    expect(new Set(entries.map((e) => e.provider))).toEqual(new Set(['bedrock']));
    expect(entries.some((e) => e.name === 'claude-opus-5-5' && e.outcome === 'ok')).toBe(true);
    expect(sum(entries.map((e) => e.cost))).toBe(h.rt.emulator!.billing.total('bedrock') - before);
  });

  it('works in its Vertex mode through the Vertex face, billed to the Vertex provider', async () => {
    const { key, id } = await h.client({ team: 'eng', seat: 'cc-vertex' });
    const before = h.rt.emulator!.billing.total('vertex');
    const run = await claude(key, place(), ['-p', 'say hello', '--output-format', 'json'], {
      CLAUDE_CODE_USE_VERTEX: '1',
      ANTHROPIC_VERTEX_BASE_URL: `${h.url}/vertex`,
      CLAUDE_CODE_SKIP_VERTEX_AUTH: '1',
      CLOUD_ML_REGION: 'us-east5',
      ANTHROPIC_VERTEX_PROJECT_ID: 'acme-prod',
      ANTHROPIC_AUTH_TOKEN: key,
      ANTHROPIC_API_KEY: '',
    });
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const out = JSON.parse(run.stdout) as ResultJson;
    expect(out.is_error).toBe(false);
    const entries = await ledgerFor(id);
    expect(entries.length).toBeGreaterThan(0);
    expect(new Set(entries.map((e) => e.provider))).toEqual(new Set(['vertex']));
    expect(sum(entries.map((e) => e.cost))).toBe(h.rt.emulator!.billing.total('vertex') - before);
    // us-east5 is a regional endpoint: Opus 5.5 there costs 1.1x its global price.
    expect(
      h.rt
        .emulator!.billing.list()
        .filter((e) => e.provider === 'vertex')
        .at(-1)?.regional,
    ).toBe(true);
  });

  it('keeps the binary it ran in the cache for the next run', () => {
    expect(
      readFileSync(join(CACHE, 'node_modules', '@anthropic-ai', 'claude-code', 'package.json'), 'utf8'),
    ).toContain(VERSION);
  });
});
