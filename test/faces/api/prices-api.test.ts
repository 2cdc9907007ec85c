import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Harness,
  OPERATOR_TOKEN,
  OPERATORS,
  startHarness,
  VIEWER_TOKEN,
} from '../../helpers/harness.ts';

/** GET /api/prices and POST /api/prices/reload on a real server, with unknown-model calls through the gateway. */

interface PriceRow {
  model: string;
  aliases: string[];
  from: string;
  effective: string;
  status: string;
  retires: string | null;
  rates_usd_per_mtok: Record<string, number>;
  long_context?: unknown;
  fast?: unknown;
  max_output_tokens: number;
  us_only: boolean;
}
interface Missing {
  model: string;
  calls: number;
  last_seen: string;
  prices_entry: string;
}
interface PricesBody {
  prices: PriceRow[];
  missing: Missing[];
  server_tools: Record<string, { usd_per_use: string; micros_per_use: number }>;
}

const ask = (client: Anthropic, model: string, maxTokens = 64) =>
  client.messages.create({ model, max_tokens: maxTokens, messages: [{ role: 'user', content: 'ping' }] });
const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the call to be refused');
    },
    (e: unknown) => e as InstanceType<typeof Anthropic.APIError>,
  );

describe('prices API', () => {
  let h: Harness;
  let dir: string;
  beforeAll(async () => {
    h = await startHarness({ config: OPERATORS });
    dir = mkdtempSync(join(tmpdir(), 'cp-prices-api-'));
  });
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an unknown model is refused 400 with the entry to add, and /api/prices lists it as missing with its count', async () => {
    const { client } = await h.client({ team: 'prices' });
    const first = await failure(ask(client, 'claude-opus-9'));
    expect(first.status).toBe(400);
    const env = first.error as { chokepoint: { code: string; model: string; prices_entry: string } };
    expect(env.chokepoint).toMatchObject({ code: 'invalid_request', model: 'claude-opus-9' });
    expect((await failure(ask(client, 'claude-opus-9'))).status).toBe(400);
    expect((await failure(ask(client, 'claude-nova-1'))).status).toBe(400);

    // Viewer is enough.
    const res = await h.api<PricesBody>('GET', '/api/prices', undefined, VIEWER_TOKEN);
    expect(res.status).toBe(200);
    expect(res.body.missing.map((m) => [m.model, m.calls])).toEqual(
      [
        ['claude-nova-1', 1],
        ['claude-opus-9', 2],
      ].sort((a, b) => (b[1] as number) - (a[1] as number)),
    );
    const opus9 = res.body.missing.find((m) => m.model === 'claude-opus-9')!;
    // The very entry the refusal carried.
    expect(opus9.prices_entry).toBe(env.chokepoint.prices_entry);
    expect(Date.now() - Date.parse(opus9.last_seen)).toBeLessThan(60_000);
  });

  it('lists every model: the row in force, older and later rows marked, end of life and rates', async () => {
    const res = await h.api<PricesBody>('GET', '/api/prices');
    const rows = res.body.prices;
    const sonnet55 = rows.filter((r) => r.model === 'claude-sonnet-5-5');
    expect(sonnet55.map((r) => [r.from, r.effective])).toEqual([
      ['2026-10-07', 'current'],
      ['2026-09-28', 'past'],
    ]);
    expect(sonnet55[0]).toMatchObject({
      aliases: [],
      status: 'active',
      retires: null,
      rates_usd_per_mtok: { input: 2, cacheWrite5m: 2.5, cacheWrite1h: 4, cacheRead: 0.1, output: 10 },
      max_output_tokens: 128_000,
      us_only: true,
    });
    // Past its end of life (2026-11-30): retired, whatever day the test runs.
    expect(rows.find((r) => r.model === 'claude-sonnet-4-5-20250929')).toMatchObject({
      aliases: ['claude-sonnet-4-5'],
      retires: '2026-11-30',
      status: 'retired',
      long_context: {
        above_prompt_tokens: 200_000,
        rates_usd_per_mtok: { input: 6, cacheWrite5m: 7.5, cacheWrite1h: 12, cacheRead: 0.6, output: 22.5 },
      },
    });
    expect(rows.find((r) => r.model === 'claude-opus-5-5')?.fast).toMatchObject({
      rates_usd_per_mtok: { input: 8, output: 40 },
    });
    // One current row per model.
    const current = rows.filter((r) => r.effective === 'current').map((r) => r.model);
    expect(new Set(current).size).toBe(current.length);
    expect(res.body.server_tools.webSearch).toEqual({ usd_per_use: '0.01', micros_per_use: 10_000 });
  });

  it('reload: a new model priced in the config is admitted and charged at its rates to the µ$; routing reloads too; an invalid file keeps the old table', async () => {
    const file = join(dir, 'chokepoint.config.yaml');
    h.rt.config.file = file;
    const { client } = await h.client({ team: 'reload' });
    const locked = await h.client({ team: 'locked' });

    // Served by the emulator, absent from the built-in table: refused until priced.
    expect((await failure(ask(client, 'claude-mythos-5'))).status).toBe(400);
    const before = await h.api<PricesBody>('GET', '/api/prices');
    expect(before.body.missing.map((m) => m.model)).toContain('claude-mythos-5');

    // The running config's other settings as they are, so only prices and routing change.
    const same = `dataDir: ${JSON.stringify(h.config.dataDir)}\nstore: { backend: embedded }\nauth: ${JSON.stringify(OPERATORS.auth)}\n`;
    writeFileSync(
      file,
      `${same}prices:
  - model: claude-mythos-5
    from: "2026-06-09"
    rates: { input: 7.5, cacheWrite5m: 9.375, cacheWrite1h: 15, cacheRead: 0.75, output: 37.5 }
    maxOutputTokens: 128000
    displayName: Claude Mythos 5
routing:
  rules:
    - match: { team: locked }
      allow: [cheap]
`,
    );
    // Reloading needs the admin role; the viewer and the operator are refused.
    expect((await h.api('POST', '/api/prices/reload', {}, VIEWER_TOKEN)).status).toBe(403);
    expect((await h.api('POST', '/api/prices/reload', {}, OPERATOR_TOKEN)).status).toBe(403);
    const oldRouter = h.rt.router;
    const reloaded = await h.api<{
      reloaded: string;
      file: string;
      models: number;
      restart_needed: string[];
    }>('POST', '/api/prices/reload', { reason: 'priced claude-mythos-5' });
    expect(reloaded.status).toBe(200);
    expect(reloaded.body).toMatchObject({ reloaded: 'prices and routing', file, restart_needed: [] });
    expect(reloaded.body.models).toBe(h.rt.prices.current().length);
    expect(h.rt.router).not.toBe(oldRouter);
    expect(
      h.logs.some(
        (l) => l.includes('"msg":"prices reloaded"') && l.includes(`"models":${reloaded.body.models}`),
      ),
    ).toBe(true);
    const audit = await h.api<{ entries: { action: string; actor: string; reason: string }[] }>(
      'GET',
      '/api/audit?target=prices',
    );
    expect(audit.body.entries[0]).toMatchObject({
      action: 'prices.reload',
      actor: 'admin',
      reason: 'priced claude-mythos-5',
    });

    const priced = async () => {
      const msg = await ask(client, 'claude-mythos-5');
      const u = msg.usage;
      // USD per MTok is µ$ per token: the rates ×1e6 as integers, summed, rounded up once.
      const picos =
        u.input_tokens * 7_500_000 +
        (u.cache_creation_input_tokens ?? 0) * 9_375_000 +
        (u.cache_read_input_tokens ?? 0) * 750_000 +
        u.output_tokens * 37_500_000;
      const ledger = await h.api<{ entries: { name: string; outcome: string; cost: number }[] }>(
        'GET',
        '/api/ledger?scope=team:reload&outcome=ok&limit=1',
      );
      expect(ledger.body.entries[0]).toMatchObject({ name: 'claude-mythos-5', outcome: 'ok' });
      return { cost: ledger.body.entries[0]!.cost, expected: Math.ceil(picos / 1_000_000) };
    };
    const one = await priced();
    expect(one.cost).toBe(one.expected);
    expect(one.cost).toBeGreaterThan(0);
    // No longer missing once priced.
    const after = await h.api<PricesBody>('GET', '/api/prices');
    expect(after.body.missing.map((m) => m.model)).not.toContain('claude-mythos-5');
    expect(after.body.prices.find((r) => r.model === 'claude-mythos-5')).toMatchObject({
      effective: 'current',
      rates_usd_per_mtok: { input: 7.5, output: 37.5 },
    });
    // The reloaded routing rule applies from the next call.
    const refused = await failure(ask(locked.client, 'claude-sonnet-5-5'));
    expect(refused.status).toBe(403);

    // An invalid file: 400 naming the field, the old table and routing stay.
    writeFileSync(
      file,
      same +
        'prices:\n  - model: claude-mythos-5\n    from: "2026-06-09"\n    rates: { input: 1, cacheWrite5m: 1, cacheWrite1h: 1, cacheRead: 1, output: cheap }\n    maxOutputTokens: 128000\n',
    );
    const bad = await h.api<{ chokepoint: { code: string; field: string; problems: string[] } }>(
      'POST',
      '/api/prices/reload',
    );
    expect(bad.status).toBe(400);
    expect(bad.body.chokepoint).toMatchObject({ code: 'invalid_request', field: 'prices.0.rates.output' });
    expect(
      h.logs.some((l) => l.includes('prices not reloaded') && l.includes('"field":"prices.0.rates.output"')),
    ).toBe(true);
    const two = await priced();
    expect(two.cost).toBe(two.expected);
    expect((await failure(ask(locked.client, 'claude-sonnet-5-5'))).status).toBe(403);
  });
});
