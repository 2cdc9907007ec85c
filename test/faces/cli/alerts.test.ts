import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReceiver, verifySignature } from '../../runtime/alerts/receiver.ts';

/**
 * `chokepoint alerts test`: a sample alert to every destination, each delivery's status printed.
 * Each test starts the CLI as a process (several seconds each on a loaded machine): longer timeouts.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SECRET = 'whsec_cli-test-secret-0123456789';

function cli(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      'node',
      ['bin/chokepoint.js', ...args],
      { cwd: ROOT, env: { ...process.env, ...env } },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('chokepoint alerts test', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const dir = mkdtempSync(join(tmpdir(), 'cp-alerts-cli-'));
  const file = join(dir, 'chokepoint.config.yaml');

  beforeAll(async () => {
    receiver = await startReceiver((r) => (r.path === '/broken' ? 500 : 200));
  });
  afterAll(async () => {
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends one signed sample to each destination and prints each status; a failure exits 1', async () => {
    writeFileSync(
      file,
      [
        `dataDir: ${JSON.stringify(dir)}`,
        'alerts:',
        '  webhooks:',
        `    - { url: "${receiver.url}/hook", secret: env:HOOK_SECRET, name: pager }`,
        '  slack:',
        '    - { url: env:SLACK_URL }',
        `    - { url: "${receiver.url}/broken" }`,
      ].join('\n'),
    );
    const r = await cli(['alerts', 'test', '--config', file], {
      HOOK_SECRET: SECRET,
      SLACK_URL: `${receiver.url}/T000/B000/secret-path`,
    });
    expect(r.stdout.trim().split('\n')).toEqual([
      `webhook ${receiver.url} (pager): delivered (200)`,
      `slack ${receiver.url}: delivered (200)`,
      `slack ${receiver.url}: NOT delivered (500)`,
      '2 of 3 delivered',
    ]);
    expect(r.code).toBe(1);
    // Tried once each: no retries in a test.
    expect(receiver.received.map((x) => x.path).sort()).toEqual([
      '/T000/B000/secret-path',
      '/broken',
      '/hook',
    ]);
    const hook = receiver.at('/hook')[0]!;
    expect(verifySignature(hook, SECRET)).toBe(true);
    expect(hook.json).toMatchObject({ kind: 'test', budget: { scope: 'team:example' } });
    expect(receiver.at('/broken')[0]!.json.text).toMatch(/^Test alert: /);
  }, 90_000);

  it('says what is missing: the subcommand, any destination', async () => {
    const none = await cli(['alerts']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/missing subcommand: expected test/);
    writeFileSync(file, `dataDir: ${JSON.stringify(dir)}\n`);
    const empty = await cli(['alerts', 'test', '--config', file]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(
      /no alert destinations in .*chokepoint\.config\.yaml: add alerts\.webhooks or alerts\.slack/,
    );
    const help = await cli(['alerts', '--help']);
    expect(help.stdout).toContain('Usage: chokepoint alerts test [--config FILE] [--json]');
  }, 90_000);
});
