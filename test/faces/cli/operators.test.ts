import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadOperators } from '../../../runtime/auth/operators.ts';
import { loadConfig } from '../../../runtime/config/load.ts';

/** `chokepoint operators create`: the token it prints logs in once its config line is added. */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', ['bin/chokepoint.js', ...args], { cwd: ROOT }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('chokepoint operators create', () => {
  it('prints a token once and the config line that makes it an operator of that role', async () => {
    const r = await cli(['operators', 'create', '--name', 'alice', '--role', 'operator']);
    expect(r.code).toBe(0);
    const token = /^\s+(cpo_\S+)$/m.exec(r.stdout)![1]!;
    const dir = mkdtempSync(join(tmpdir(), 'cp-ops-'));
    try {
      // The printed snippet, pasted as it is into a config file.
      const yaml = r.stdout.slice(r.stdout.indexOf('auth:'));
      writeFileSync(join(dir, 'chokepoint.config.yaml'), `dataDir: ${JSON.stringify(dir)}\n${yaml}`);
      expect(yaml).not.toContain(token);
      const config = loadConfig({ path: join(dir, 'chokepoint.config.yaml'), env: {} });
      const { registry } = loadOperators(config, {});
      expect(registry.authenticate(token)).toEqual({ name: 'alice', role: 'operator' });
      expect(registry.authenticate(`${token}x`)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names what is wrong: a missing name, an unknown role, a missing subcommand', async () => {
    const noName = await cli(['operators', 'create', '--role', 'viewer']);
    expect(noName.code).toBe(2);
    expect(noName.stderr).toMatch(/--name is required/);
    const badRole = await cli(['operators', 'create', '--name', 'bob', '--role', 'boss']);
    expect(badRole.code).toBe(2);
    expect(badRole.stderr).toMatch(/--role: expected one of viewer, operator, admin, got "boss"/);
    const noSub = await cli(['operators']);
    expect(noSub.code).toBe(2);
    expect(noSub.stderr).toMatch(/missing subcommand: expected create/);
  });
});
