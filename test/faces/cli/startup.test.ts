import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The CLI loads what the command it runs needs: `chokepoint runs show`, `approvals ls` and every
 * --help start without the server, the store or the MCP SDK (about 0.4 s instead of 0.9 s here).
 * The fixture runs bin/chokepoint.js in a fresh process and lists the modules it resolved.
 */
const FIXTURE = fileURLToPath(new URL('./fixtures/cli-imports.mjs', import.meta.url));

function loadedBy(...args: string[]): Promise<{ code: number; loaded: string[] }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [FIXTURE, ...args], { timeout: 60_000 }, (err, stdout) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      if (!last.startsWith('[')) return reject(err ?? new Error(`no module list in: ${stdout}`));
      resolve({ code: err ? Number(err.code) : 0, loaded: JSON.parse(last) });
    });
  });
}

const SERVER_SIDE = [
  'hono',
  '@hono/node-server',
  '@modelcontextprotocol/sdk',
  'xstate',
  'ioredis',
  'bullmq',
  'adapters/http/h1.ts',
  'runtime/compose.ts',
  'runtime/faces/http/server.ts',
  'runtime/backends/embedded/sqlite.ts',
  'runtime/store/leases.ts',
  'adapters/emulator/index.ts',
];

describe('CLI start-up', () => {
  it.each([
    [['--help']],
    [['runs', '--help']],
    [['serve', '--help']],
    [['runs', 'show', 'run_x', '--url', 'http://127.0.0.1:9', '--token', 'unused']],
  ])('chokepoint %j loads none of the server side', async (args) => {
    const { loaded } = await loadedBy(...args);
    expect(loaded).toContain('runtime/faces/cli/main.ts');
    expect(loaded.filter((m) => SERVER_SIDE.includes(m))).toEqual([]);
  });

  it('serve loads it when it runs (the check sees modules loaded on the way)', async () => {
    const { code, loaded } = await loadedBy('serve', '--config', '/nonexistent/chokepoint.config.yaml');
    expect(code).toBe(2); // the config file is missing: a ConfigError, after the server's modules loaded
    expect(loaded).toEqual(expect.arrayContaining(['hono', 'runtime/faces/http/server.ts']));
  });
});
