import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../runtime/config/load.ts';
import { DEFAULT_CLASSES } from '../../../runtime/config/schema.ts';
import { endOfLife, endOfLifeLine, lifecycleOf, successorOf } from '../../../runtime/pricing/lifecycle.ts';
import { PriceTable } from '../../../runtime/pricing/pricing.ts';
import { flagEndOfLife, reloadPrices, watchConfig } from '../../../runtime/reload.ts';
import { type Harness, startHarness } from '../../helpers/harness.ts';

const at = (iso: string) => Date.parse(`${iso}T12:00:00Z`);
const prices = new PriceTable();

describe('model end of life', () => {
  it('active, retiring within 60 days of its date, retired from it on', () => {
    const opus45 = prices.lookup('claude-opus-4-5')!;
    expect(opus45.retires).toBe('2027-01-22');
    expect(lifecycleOf(opus45, at('2026-11-01'))).toBe('active');
    expect(lifecycleOf(opus45, at('2026-12-02'))).toBe('retiring');
    expect(lifecycleOf(opus45, Date.parse('2027-01-22T00:00:00Z'))).toBe('retired');
    expect(lifecycleOf(prices.lookup('claude-sonnet-5-5')!, at('2030-01-01'))).toBe('active');
  });

  it('names the newest active model of the same line as the one to move to', () => {
    const now = at('2026-12-02');
    expect(successorOf(prices.lookup('claude-sonnet-4-5')!, prices, now)).toBe('claude-sonnet-5-5');
    expect(successorOf(prices.lookup('claude-3-5-haiku-latest')!, prices, now)).toBe('claude-haiku-5-5');
    expect(successorOf(prices.lookup('claude-opus-4-1')!, prices, now)).toBe('claude-opus-5-5');
  });

  it('flags the models routing classes and workflows name, once per name, with where they are named', () => {
    const flagged = endOfLife(
      {
        classes: { standard: ['claude-sonnet-4-5'], cheap: ['claude-haiku-5-5'] },
        workflows: [
          { id: 'research', models: { default: 'standard', plan: 'claude-opus-4-5' } },
          { id: 'triage', models: { default: 'claude-opus-4-5' } },
        ],
      },
      prices,
      at('2026-12-02'),
    );
    expect(flagged.map(endOfLifeLine)).toEqual([
      'claude-sonnet-4-5 retired 2026-11-30 (class standard): move to claude-sonnet-5-5',
      'claude-opus-4-5 retires 2027-01-22 (workflow research models.plan, workflow triage models.default): move to claude-opus-5-5',
    ]);
    expect(endOfLife({ classes: DEFAULT_CLASSES }, prices, at('2026-12-02'))).toEqual([]);
  });
});

describe('a config without routing keeps the built-in classes', () => {
  it('with no routing key, and with rules but no classes', () => {
    expect(resolveConfig({}, { env: {} }).routing.classes).toEqual(DEFAULT_CLASSES);
    const rules = resolveConfig({ routing: { rules: [{ allow: ['cheap'] }] } }, { env: {} }).routing;
    expect(rules.classes).toEqual(DEFAULT_CLASSES);
  });
});

describe('reload and end-of-life flags on a running runtime', () => {
  let h: Harness;
  let dir: string;
  beforeAll(async () => {
    h = await startHarness({
      config: { routing: { classes: { standard: ['claude-sonnet-4-5'], cheap: ['claude-haiku-5-5'] } } },
    });
    dir = mkdtempSync(join(tmpdir(), 'cp-reload-'));
  });
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('at start, a class naming a retired model logs a warning with the model to move to', () => {
    const flagged = flagEndOfLife(h.rt, at('2026-12-02'));
    expect(flagged.map(endOfLifeLine)).toEqual([
      'claude-sonnet-4-5 retired 2026-11-30 (class standard): move to claude-sonnet-5-5',
    ]);
    const warning = h.logs
      .map((l) => JSON.parse(l))
      .find((l) => l.msg === 'a configured model is past its end of life');
    expect(warning).toMatchObject({
      level: 'warn',
      model: 'claude-sonnet-4-5',
      status: 'retired',
      retires: '2026-11-30',
      used_by: ['class standard'],
      move_to: 'claude-sonnet-5-5',
    });
  });

  it('a valid file swaps prices and routing (a file without routing gets the built-in classes); a broken one changes nothing', () => {
    const file = join(dir, 'a.yaml');
    const base = `dataDir: ${JSON.stringify(h.config.dataDir)}\nstore: { backend: embedded }\n`;
    writeFileSync(
      file,
      `${base}prices:\n  - { model: claude-next-1, from: "2026-01-01", maxOutputTokens: 1000, rates: { input: 1, cacheWrite5m: 1.25, cacheWrite1h: 2, cacheRead: 0.1, output: 5 } }\n`,
    );
    const ok = reloadPrices(h.rt, { path: file });
    expect(ok).toMatchObject({ ok: true, file, restartNeeded: [], endOfLife: [] });
    expect(h.rt.prices.lookup('claude-next-1')?.rates.output).toBe(5);
    expect(h.rt.config.routing.classes).toEqual(DEFAULT_CLASSES);
    const table = h.rt.prices;

    for (const [text, problem] of [
      ['prices: [ {', 'not valid YAML'],
      [
        `${base}prices:\n  - { model: x, from: "soon", maxOutputTokens: 1, rates: { input: 1, cacheWrite5m: 1, cacheWrite1h: 1, cacheRead: 1, output: 1 } }\n`,
        'prices.0.from: expected a date like "2026-01-31"',
      ],
      [`${base}routing: { classes: { cheap: [] } }\n`, 'routing.classes.cheap'],
    ] as const) {
      writeFileSync(file, text);
      const bad = reloadPrices(h.rt, { path: file });
      expect(bad.ok).toBe(false);
      expect(bad.ok ? '' : bad.problems.join('\n')).toContain(problem);
      expect(h.rt.prices).toBe(table);
    }
    const gone = reloadPrices(h.rt, { path: join(dir, 'nope.yaml') });
    expect(gone.ok ? '' : gone.problems[0]).toContain('file not found');
    expect(h.rt.prices).toBe(table);

    // Settings other than prices and routing are not applied, and the log says so.
    writeFileSync(file, `${base}budgets: { defaults: { team: { ceiling: "5.00", window: day } } }\n`);
    expect(reloadPrices(h.rt, { path: file })).toMatchObject({ ok: true, restartNeeded: ['budgets'] });
    expect(h.rt.prices.has('claude-next-1')).toBe(false);
    expect(h.logs.some((l) => l.includes('config changes not applied until the next start'))).toBe(true);
  });

  it('watchConfig reloads when the file changes and on SIGHUP', async () => {
    const file = join(dir, 'watched.yaml');
    writeFileSync(file, `dataDir: ${JSON.stringify(h.config.dataDir)}\nstore: { backend: embedded }\n`);
    const reloads = () =>
      h.logs.filter((l) => l.includes('"msg":"prices reloaded"') && l.includes(file)).length;
    const watcher = watchConfig(h.rt, { path: file, intervalMs: 20 });
    try {
      await new Promise((r) => setTimeout(r, 100));
      writeFileSync(
        file,
        `dataDir: ${JSON.stringify(h.config.dataDir)}\nstore: { backend: embedded }\nprices:\n  - { model: claude-watched-1, from: "2026-01-01", maxOutputTokens: 1000, rates: { input: 1, cacheWrite5m: 1.25, cacheWrite1h: 2, cacheRead: 0.1, output: 5 } }\n`,
      );
      await expect.poll(() => h.rt.prices.has('claude-watched-1'), { timeout: 5000 }).toBe(true);
      const n = reloads();
      process.emit('SIGHUP', 'SIGHUP');
      expect(reloads()).toBe(n + 1);
    } finally {
      watcher.close();
    }
    expect(process.listenerCount('SIGHUP')).toBe(0);
  });
});
