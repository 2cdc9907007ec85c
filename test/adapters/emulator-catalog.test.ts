import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  lifecycleOf,
  MODELS,
  priceCall,
  resolveModel,
  type TokenUsage,
} from '../../adapters/emulator/catalog.ts';
import { createEmulator, type Emulator, type Listening } from '../../adapters/emulator/index.ts';

const TODAY = Date.parse('2026-12-02T12:00:00Z');
const usage = (u: Partial<TokenUsage>): TokenUsage => ({
  input: 0,
  cacheWrite5m: 0,
  cacheWrite1h: 0,
  cacheRead: 0,
  output: 0,
  ...u,
});
const model = (id: string) => {
  const m = resolveModel(id);
  if (!m) throw new Error(`no model ${id}`);
  return m;
};
const MTOK = 1_000_000;
const ALL = usage({ input: MTOK, cacheWrite5m: MTOK, cacheWrite1h: MTOK, cacheRead: MTOK, output: MTOK });
const dollars = (id: string, u = ALL, mods = {}) => priceCall(model(id), u, mods).micros / 1_000_000;

describe('catalogue prices (research §2)', () => {
  it('lists every current model at its USD/MTok rates', () => {
    expect(dollars('claude-fable-5-2')).toBeCloseTo(8 + 10 + 16 + 0.2 + 40, 9);
    expect(dollars('claude-mythos-5-2')).toBeCloseTo(8 + 10 + 16 + 0.2 + 40, 9);
    expect(dollars('claude-fable-5-1')).toBeCloseTo(10 + 12.5 + 20 + 0.25 + 50, 9);
    expect(dollars('claude-fable-5')).toBeCloseTo(10 + 12.5 + 20 + 1 + 50, 9);
    expect(dollars('claude-opus-5-5')).toBeCloseTo(4 + 5 + 8 + 0.2 + 20, 9);
    for (const id of [
      'claude-opus-5',
      'claude-opus-4-8',
      'claude-opus-4-7',
      'claude-opus-4-6',
      'claude-opus-4-5',
    ]) {
      expect(dollars(id)).toBeCloseTo(5 + 6.25 + 10 + 0.5 + 25, 9);
    }
    expect(dollars('claude-sonnet-5')).toBeCloseTo(2 + 2.5 + 4 + 0.2 + 10, 9);
    expect(dollars('claude-sonnet-4-6')).toBeCloseTo(3 + 3.75 + 6 + 0.3 + 15, 9);
    expect(dollars('claude-haiku-4-5')).toBeCloseTo(1 + 1.25 + 2 + 0.1 + 5, 9);
  });

  it('cuts the Sonnet 5.5 cache-read rate from $0.20 to $0.10 on 2026-10-07', () => {
    const reads = usage({ cacheRead: MTOK });
    const sonnet = model('claude-sonnet-5-5');
    expect(priceCall(sonnet, reads, { at: Date.parse('2026-10-06T23:59:59Z') }).micros).toBe(200_000);
    expect(priceCall(sonnet, reads, { at: Date.parse('2026-10-07T00:00:00Z') }).micros).toBe(100_000);
    expect(priceCall(sonnet, usage({ input: MTOK }), { at: TODAY }).micros).toBe(2_000_000);
  });

  it('bills a Haiku 5.5 call above 100,000 prompt tokens at 5× on every class, output included', () => {
    const haiku = model('claude-haiku-5-5');
    const low = priceCall(haiku, usage({ input: 50_000, cacheRead: 50_000, output: 1000 }));
    expect(low.longContext).toBe(false);
    expect(low.micros).toBe(Math.ceil(50_000 * 0.1 + 50_000 * 0.01 + 1000 * 0.5));
    const high = priceCall(haiku, usage({ input: 50_000, cacheWrite5m: 1, cacheRead: 50_000, output: 1000 }));
    expect(high.longContext).toBe(true);
    expect(high.micros).toBe(Math.ceil(50_000 * 0.5 + 0.625 + 50_000 * 0.05 + 1000 * 2.5));
    // A cache read of 1 token costs 0.01 µ$: one call rounds up to 1 µ$.
    expect(priceCall(haiku, usage({ cacheRead: 1 })).micros).toBe(1);
  });

  it('stacks fast (2×), US geo (1.1×) and batch (½) on every class, rounding once per call', () => {
    const opus = model('claude-opus-5-5');
    const u = usage({ input: 2000, cacheWrite1h: 8000, cacheRead: 140_000, output: 1500 });
    expect(priceCall(opus, u).micros).toBe(130_000); // research §9 worked check
    expect(priceCall(opus, u, { speed: 'fast' }).micros).toBe(260_000);
    expect(priceCall(opus, u, { inferenceGeo: 'us' }).micros).toBe(143_000);
    expect(priceCall(opus, u, { serviceTier: 'batch' }).micros).toBe(65_000);
    expect(priceCall(opus, u, { speed: 'fast', inferenceGeo: 'us' }).micros).toBe(286_000);
    // Batch + US on Haiku 5.5 cache reads: 0.0055 µ$ a token, exact in pico-dollars.
    const haiku = model('claude-haiku-5-5');
    const cost = priceCall(haiku, usage({ cacheRead: 1000, output: 3 }), {
      serviceTier: 'batch',
      inferenceGeo: 'us',
    });
    expect(cost.micros).toBe(Math.ceil(1000 * 0.0055 + 3 * 0.275)); // 5.5 + 0.825 → 7
    expect(Object.values(cost.byClass).reduce((a, b) => a + b, 0)).toBe(cost.micros);
  });

  it('knows limits and cacheable minimums from research §1/§8 (1,024 where unknown)', () => {
    expect(model('claude-opus-5')).toMatchObject({ minCacheableTokens: 512, maxOutputTokens: 128_000 });
    expect(model('claude-opus-4-7')).toMatchObject({ minCacheableTokens: 2048 });
    expect(model('claude-haiku-5-5')).toMatchObject({ minCacheableTokens: 512, contextWindow: 1_000_000 });
    expect(model('claude-opus-5-5')).toMatchObject({
      minCacheableTokens: 1024,
      batchMaxOutputTokens: 300_000,
    });
    expect(model('claude-opus-4-5')).toMatchObject({ maxOutputTokens: 64_000, contextWindow: 200_000 });
  });

  it('dates lifecycles: Sonnet 4.5 retired on 2026-11-30, Opus 4.5 deprecated, Opus 4.1 retired', () => {
    expect(lifecycleOf(model('claude-sonnet-4-5'), Date.parse('2026-11-29T23:00:00Z'))).toBe('deprecated');
    expect(lifecycleOf(model('claude-sonnet-4-5'), TODAY)).toBe('retired');
    expect(lifecycleOf(model('claude-opus-4-5'), TODAY)).toBe('deprecated');
    expect(lifecycleOf(model('claude-opus-4-1'), TODAY)).toBe('retired');
    expect(lifecycleOf(model('claude-fable-5-2'), TODAY)).toBe('active');
    // Retired models stay priced, for history.
    expect(priceCall(model('claude-sonnet-4-5'), usage({ input: 100_000 })).micros).toBe(300_000);
  });
});

describe('models API and retired models', () => {
  let clock = TODAY;
  let emu: Emulator;
  let server: Listening;
  let client: Anthropic;
  beforeAll(async () => {
    emu = createEmulator({ now: () => clock });
    server = await emu.listen();
    client = new Anthropic({ baseURL: server.url, apiKey: 'sk-emulator-local', maxRetries: 0 });
  });
  afterAll(() => server.close());

  it('answers 404 not_found_error for a model retired before the clock, and serves it before', async () => {
    const params = {
      model: 'claude-sonnet-4-5',
      max_tokens: 10,
      messages: [{ role: 'user' as const, content: 'hi' }],
    };
    const err = await client.messages.create(params).catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.NotFoundError);
    expect(err.error.error).toEqual({ type: 'not_found_error', message: 'model: claude-sonnet-4-5' });
    clock = Date.parse('2026-11-29T12:00:00Z');
    expect((await client.messages.create(params)).model).toBe('claude-sonnet-4-5-20250929');
    clock = TODAY;
    const replay = createEmulator({ now: () => TODAY, serveRetiredModels: true });
    const res = await replay.fetch(
      new Request('http://emulator/v1/messages', {
        method: 'POST',
        headers: { 'x-api-key': 'sk-emulator-local', 'anthropic-version': '2023-06-01' },
        body: JSON.stringify(params),
      }),
    );
    expect(res.status).toBe(200);
  });

  it('lists active and deprecated models newest first, paginated, retired ones only on request', async () => {
    const first = await client.models.list({ limit: 3 });
    expect(first.data.map((m) => m.id)).toEqual([
      'claude-fable-5-2',
      'claude-mythos-5-2',
      'claude-haiku-5-5',
    ]);
    expect(first.has_more).toBe(true);
    const all: string[] = [];
    for await (const m of client.models.list({ limit: 5 })) all.push(m.id);
    const current = MODELS.filter((m) => lifecycleOf(m, TODAY) !== 'retired').map((m) => m.id);
    expect(all).toEqual(current);
    expect(all).not.toContain('claude-sonnet-4-5-20250929');
    expect(all).toContain('claude-opus-4-5-20251101');
    const retired = await client.models.list({ lifecycle: ['retired'] });
    expect(retired.data.map((m) => m.id)).toContain('claude-sonnet-4-5-20250929');
    const one = await client.models.retrieve('claude-opus-4-1');
    expect(one).toMatchObject({
      id: 'claude-opus-4-1-20250805',
      lifecycle: 'retired',
      retires_at: '2026-08-05T00:00:00Z',
    });
    const opus = await client.models.retrieve('claude-opus-5-5');
    expect(opus).toMatchObject({
      lifecycle: 'active',
      line: 'opus',
      max_tokens: 128_000,
      max_input_tokens: 1_000_000,
    });
  });
});
