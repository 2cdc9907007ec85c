import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../runtime/config/error.ts';
import { DEFAULT_BUDGETS, loadConfig, resolveConfig } from '../../../runtime/config/load.ts';

const run = promisify(execFile);

function problems(raw: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    resolveConfig(raw, { env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('config', () => {
  it("keeps the built-in model classes (today's models) in a config without routing.classes", () => {
    const classes = {
      cheap: ['claude-haiku-5-5'],
      standard: ['claude-sonnet-5-5'],
      premium: ['claude-opus-5-5'],
    };
    expect(resolveConfig({}, { env: {} }).routing.classes).toEqual(classes);
    expect(resolveConfig({ routing: { rules: [] } }, { env: {} }).routing.classes).toEqual(classes);
    expect(
      resolveConfig({ routing: { classes: { x: ['claude-opus-5'] } } }, { env: {} }).routing.classes,
    ).toEqual({
      x: ['claude-opus-5'],
    });
    expect(resolveConfig({}, { env: {} }).gateway).toEqual({
      maxTokens: 'fit',
      maxTokensFloor: 1024,
      inferenceGeo: 'global',
    });
  });

  it('defaults to the embedded store, the emulator and conservative ceilings', () => {
    const c = resolveConfig({}, { env: {}, cwd: '/srv' });
    expect(c.store.backend).toBe('embedded');
    expect(c.provider.kind).toBe('emulator');
    expect(c.server.port).toBe(8787);
    expect(c.dataDir).toBe('/srv/.chokepoint');
    expect(c.budgets.defaults).toEqual(DEFAULT_BUDGETS);
    expect(c.budgets.defaults.run.window).toBe('total');
  });

  it('switches to Redis when REDIS_URL is set, and to Anthropic when ANTHROPIC_API_KEY is', () => {
    const c = resolveConfig(
      {},
      { env: { REDIS_URL: 'redis://127.0.0.1:6379', ANTHROPIC_API_KEY: 'sk-ant-x' } },
    );
    expect(c.store.backend).toBe('redis');
    expect(c.provider.kind).toBe('anthropic');
    expect(c.provider.apiKey).toBe('sk-ant-x');
  });

  it('names the path and the expected shape of a bad ceiling', () => {
    expect(problems({ budgets: { defaults: { team: { ceiling: 'fifty', window: 'day' } } } })).toEqual([
      'budgets.defaults.team.ceiling: expected a dollar amount like "50.00", got "fifty"',
    ]);
  });

  it('lists every problem at once, never only the first', () => {
    const p = problems({
      server: { port: 'eighty' },
      budgets: { timeZone: 'Mars/Olympus', defaults: { seat: { ceiling: '5', window: 'fortnight' } } },
      store: { reservationTtl: 'soon' },
      surprise: true,
    });
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^server\.port: /),
        'budgets.timeZone: expected an IANA time zone like "UTC" or "Europe/Berlin"',
        expect.stringMatching(/^budgets\.defaults\.seat\.window: expected a window/),
        'store.reservationTtl: expected a duration like "30s", "10m" or "24h", got "soon"',
        expect.stringMatching(/surprise/),
      ]),
    );
    expect(p).toHaveLength(5);
  });

  it('refuses a bad CHOKEPOINT_PORT and a redis backend without a URL', () => {
    expect(problems({}, { CHOKEPOINT_PORT: 'abc' })).toEqual([
      'CHOKEPOINT_PORT: expected a port number 0-65535, got "abc"',
    ]);
    expect(problems({ store: { backend: 'redis' } })).toEqual([
      'store.backend: "redis" needs a URL: set REDIS_URL or store.redisUrl',
    ]);
  });

  it('reads YAML from the file, and says so when the file is missing or broken', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cp-config-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'budgets:\n  defaults:\n    team: { ceiling: "$75", window: month }\n');
    expect(loadConfig({ path: file, env: {} }).budgets.defaults.team).toEqual({
      ceiling: 75_000_000,
      window: 'month',
      owner: 'platform',
    });
    expect(() => loadConfig({ path: join(dir, 'nope.yaml'), env: {} })).toThrow(/file not found/);
    writeFileSync(file, 'budgets: [unclosed');
    expect(() => loadConfig({ path: file, env: {} })).toThrow(/not valid YAML/);
  });

  it('stops `chokepoint serve` with the list of problems and no stack trace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cp-config-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'budgets:\n  defaults:\n    team: { ceiling: fifty, window: day }\n');
    const err = await run('node', ['bin/chokepoint.js', 'serve', '--config', file], {
      env: { ...process.env, REDIS_URL: '' },
    }).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toContain(
      'budgets.defaults.team.ceiling: expected a dollar amount like "50.00", got "fifty"',
    );
    expect(err.stderr).not.toMatch(/\n\s+at /);
  });
});
