import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError, type Command, parseCommandArgs } from '../../../runtime/faces/cli/command.ts';
import { pricesCommand } from '../../../runtime/faces/cli/commands/prices.ts';
import { ADMIN_TOKEN, type Harness, startHarness } from '../../helpers/harness.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = 'bin/chokepoint.js';

/** Runs a command in-process the way main.ts does. */
async function run(cmd: Command, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  try {
    const { values, positionals } = parseCommandArgs(cmd, argv);
    if (values.help) return { code: 0, out: cmd.help, err: '' };
    const code = await cmd.run({ values, positionals, out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code: code ?? 0, out: out.join('\n'), err: err.join('\n') };
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    return { code: e.exitCode, out: out.join('\n'), err: e.message };
  }
}

/** Environment of the parent minus any CHOKEPOINT_* the developer may have set. */
const baseEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    (e): e is [string, string] => !e[0].startsWith('CHOKEPOINT_') && e[1] !== undefined,
  ),
);

const NO_SERVER = ['--url', 'http://127.0.0.1:9', '--token', 'unused'];

describe('chokepoint prices: usage and help', () => {
  it.each([
    [['frob'], 'unknown subcommand "frob": expected ls or reload'],
    [['--reason', 'x'], '--reason does not apply to `chokepoint prices`'],
    [['reload', '--all'], '--all does not apply to `chokepoint prices reload`'],
    [['ls', 'extra'], 'unexpected argument "extra"\nusage: chokepoint prices [--all]'],
  ])('%j → exit 2', async (argv, message) => {
    const r = await run(pricesCommand, [...argv, ...NO_SERVER]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(message);
  });

  it('has usage, options, server options and examples, and is listed by chokepoint --help', async () => {
    expect(pricesCommand.remote).toBe(true);
    expect(pricesCommand.help).toMatch(/^Usage:/);
    expect(pricesCommand.help).toContain('chokepoint prices [--all]');
    expect(pricesCommand.help).toContain('chokepoint prices reload [--reason TEXT]');
    expect(pricesCommand.help).toContain('--url URL');
    expect(pricesCommand.help).toContain('--json');
    expect(pricesCommand.help).toMatch(/\nExamples:\n {2}chokepoint prices\n/);
    const usage = await new Promise<string>((resolve) =>
      execFile(process.execPath, [BIN, '--help'], { cwd: ROOT, env: baseEnv }, (_e, stdout) =>
        resolve(stdout),
      ),
    );
    expect(usage).toMatch(
      /\n {2}prices +the price table, prices missing for models seen lately, end-of-life dates\n/,
    );
  });
});

describe('chokepoint prices against a server', () => {
  let h: Harness;
  let remote: string[];
  let dir: string;
  beforeAll(async () => {
    h = await startHarness();
    remote = ['--url', h.url, '--token', ADMIN_TOKEN];
    dir = mkdtempSync(join(tmpdir(), 'cp-prices-cli-'));
  });
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the table, end of life, and for a model refused as unknown the exact entry the refusal carried', async () => {
    const none = await run(pricesCommand, remote);
    expect(none.code).toBe(0);
    expect(none.out).toContain('missing prices (last 24 h): none (no call was refused for an unknown model)');

    const { client } = await h.client({ team: 'cli-prices' });
    let entry = '';
    for (let i = 0; i < 3; i++) {
      const e = await client.messages
        .create({ model: 'claude-opus-9', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
        .then(
          () => undefined,
          (x: unknown) => x as InstanceType<typeof Anthropic.APIError>,
        );
      expect(e?.status).toBe(400);
      entry = (e!.error as { chokepoint: { prices_entry: string } }).chokepoint.prices_entry;
    }

    const r = await run(pricesCommand, remote);
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toBe(
      'prices in USD per million tokens (MTok): IN input, 5M/1H cache writes, READ cache reads, OUT output',
    );
    expect(lines[1]).toMatch(/^MODEL\s+IN\s+5M\s+1H\s+READ\s+OUT\s+MAX OUT\s+STATUS$/);
    expect(r.out).toMatch(/^claude-sonnet-5-5\s+2\s+2\.5\s+4\s+0\.1\s+10\s+128,000\s+active$/m);
    expect(r.out).toMatch(/^claude-haiku-5-5\s+0\.1\s+0\.125\s+0\.2\s+0\.01\s+0\.5\s+128,000\s+active$/m);
    // Retired models and replaced rates only with --all.
    expect(r.out).not.toContain('claude-sonnet-4-5-20250929');
    expect(r.out).toMatch(/^end of life: \d+ retiring within 60 days.*, \d+ retired \(listed with --all\)$/m);
    expect(r.out).toContain(
      'missing prices (last 24 h): 1 model refused as unknown (Chokepoint fails closed)',
    );
    expect(r.out).toMatch(/^claude-opus-9\s+3\s+\d{4}-\d\d-\d\d \d\d:\d\dZ$/m);
    expect(r.out.endsWith(`\n\n${entry}`)).toBe(true);

    const all = await run(pricesCommand, ['--all', ...remote]);
    expect(all.out).toMatch(
      /^claude-sonnet-4-5-20250929\s+3\s+3\.75\s+6\s+0\.3\s+15\s+64,000\s+retired 2026-11-30$/m,
    );
    expect(all.out).toMatch(/^claude-sonnet-5-5\s+2\s+2\.5\s+4\s+0\.2\s+10\s+128,000\s+until 2026-10-07$/m);

    const json = await run(pricesCommand, ['--json', ...remote]);
    const body = JSON.parse(json.out) as {
      missing: { model: string; calls: number; prices_entry: string }[];
    };
    expect(body.missing).toEqual([
      expect.objectContaining({ model: 'claude-opus-9', calls: 3, prices_entry: entry }),
    ]);
  });

  it('prices reload: reloads the server config file, and an invalid one exits 1 naming the field', async () => {
    const file = join(dir, 'chokepoint.config.yaml');
    h.rt.config.file = file;
    const base = `dataDir: ${JSON.stringify(h.config.dataDir)}\n`;
    writeFileSync(
      file,
      `${base}prices:\n  - { model: claude-opus-9, from: "2026-01-01", maxOutputTokens: 64000, rates: { input: 6, cacheWrite5m: 7.5, cacheWrite1h: 12, cacheRead: 0.6, output: 30 } }\n`,
    );
    const ok = await run(pricesCommand, ['reload', '--reason', 'opus 9 list price', ...remote]);
    expect(ok.code).toBe(0);
    // (A second line may list settings that differ from the running ones and wait for a restart.)
    expect(ok.out.split('\n')[0]).toMatch(
      new RegExp(`^reloaded prices and routing from ${file}: \\d+ models priced \\(\\d+ entries\\)$`),
    );
    const after = await run(pricesCommand, remote);
    expect(after.out).toMatch(/^claude-opus-9\s+6\s+7\.5\s+12\s+0\.6\s+30\s+64,000\s+active$/m);
    expect(after.out).toContain('missing prices (last 24 h): none');

    writeFileSync(file, `${base}prices: [{ model: claude-opus-9 }]\n`);
    const bad = await run(pricesCommand, ['reload', ...remote]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('invalid configuration, nothing reloaded (the old prices and routing stay)');
    expect(bad.err).toContain('prices.0.from');
    expect((await run(pricesCommand, remote)).out).toMatch(/^claude-opus-9\s+6\s/m);
  });
});

describe('chokepoint serve: end-of-life line in the banner, live reload of the config file', () => {
  let proc: ChildProcess | undefined;
  let dir: string;
  afterAll(() => {
    proc?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('flags a class naming a retired model, reloads on a file change and on SIGHUP, keeps the old table on a bad file', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cp-serve-prices-'));
    const file = join(dir, 'chokepoint.config.yaml');
    const base = 'routing:\n  classes: { standard: [claude-sonnet-4-5], cheap: [claude-haiku-5-5] }\n';
    writeFileSync(file, base);
    proc = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--config', file], {
      cwd: ROOT,
      env: {
        ...baseEnv,
        ANTHROPIC_API_KEY: '',
        REDIS_URL: '',
        CHOKEPOINT_DATA_DIR: join(dir, 'data'),
        CHOKEPOINT_WORKFLOWS_DIR: join(dir, 'workflows'),
        CHOKEPOINT_ADMIN_TOKEN: ADMIN_TOKEN,
      },
    });
    let stdout = '';
    let stderr = '';
    proc.stdout!.on('data', (d) => (stdout += d));
    proc.stderr!.on('data', (d) => (stderr += d));
    await expect.poll(() => stdout, { timeout: 20_000, interval: 50 }).toContain('admin token');
    expect(stdout).toContain(
      '\n  models       claude-sonnet-4-5 retired 2026-11-30 (class standard): move to claude-sonnet-5-5\n',
    );
    expect(stdout).toMatch(
      /\n {2}prices {7}\d+ models; prices and routing reload when .*chokepoint\.config\.yaml changes, or on SIGHUP\n/,
    );
    expect(stderr).toContain('a configured model is past its end of life');

    const count = (msg: string) => stderr.split(msg).length - 1;
    writeFileSync(
      file,
      `${base}prices:\n  - { model: claude-served-1, from: "2026-01-01", maxOutputTokens: 1000, rates: { input: 1, cacheWrite5m: 1.25, cacheWrite1h: 2, cacheRead: 0.1, output: 5 } }\n`,
    );
    await expect.poll(() => count('prices reloaded'), { timeout: 10_000, interval: 100 }).toBe(1);
    writeFileSync(file, `${base}prices: [{ model: claude-served-1 }]\n`);
    await expect.poll(() => count('prices not reloaded'), { timeout: 10_000, interval: 100 }).toBe(1);
    expect(stderr).toMatch(/prices not reloaded.*"field":"prices\.0\.from"/);
    proc.kill('SIGHUP');
    await expect.poll(() => count('SIGHUP: reloading prices and routing'), { timeout: 5000 }).toBe(1);

    proc.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => proc!.on('exit', (c) => r(c)));
    expect(code).toBe(0);
    proc = undefined;
  });
});
