import { describe, expect, it } from 'vitest';
import { formatUsd, parseUsd } from '../../runtime/money.ts';
import { PriceTable, UnknownPriceError } from '../../runtime/pricing/pricing.ts';
import type { TokenCounts } from '../../runtime/store/port.ts';

const table = new PriceTable();
const none: TokenCounts = { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 };
const MTOK = 1_000_000;

describe('pricing', () => {
  it('prices 1,000,000 cache-read tokens of Sonnet at exactly 300,000 µ$', () => {
    // Five calls of 200K each: one single 1M-token request would be in the long-context tier.
    let total = 0;
    for (let i = 0; i < 5; i++) total += table.cost('claude-sonnet-4-5', { ...none, cacheRead: MTOK / 5 });
    expect(total).toBe(300_000);
    expect(table.cost('claude-haiku-4-5', { ...none, cacheRead: MTOK })).toBe(100_000);
    expect(table.cost('claude-sonnet-4-5', { ...none, cacheRead: MTOK })).toBe(600_000);
  });

  it.each([
    ['claude-opus-4-5', { input: 5, cacheWrite5m: 6.25, cacheWrite1h: 10, cacheRead: 0.5, output: 25 }],
    ['claude-opus-4-6', { input: 5, cacheWrite5m: 6.25, cacheWrite1h: 10, cacheRead: 0.5, output: 25 }],
    [
      'claude-opus-4-1-20250805',
      { input: 15, cacheWrite5m: 18.75, cacheWrite1h: 30, cacheRead: 1.5, output: 75 },
    ],
    ['claude-opus-4-0', { input: 15, cacheWrite5m: 18.75, cacheWrite1h: 30, cacheRead: 1.5, output: 75 }],
    [
      'claude-sonnet-4-20250514',
      { input: 3, cacheWrite5m: 3.75, cacheWrite1h: 6, cacheRead: 0.3, output: 15 },
    ],
    ['claude-sonnet-4-6', { input: 3, cacheWrite5m: 3.75, cacheWrite1h: 6, cacheRead: 0.3, output: 15 }],
    ['claude-haiku-4-5', { input: 1, cacheWrite5m: 1.25, cacheWrite1h: 2, cacheRead: 0.1, output: 5 }],
    [
      'claude-3-5-haiku-latest',
      { input: 0.8, cacheWrite5m: 1, cacheWrite1h: 1.6, cacheRead: 0.08, output: 4 },
    ],
  ])('prices every token class of %s exactly', (model, perMTok) => {
    for (const [cls, usd] of Object.entries(perMTok)) {
      const micros = table.cost(model, { ...none, [cls]: 200_000 });
      expect(micros, `${model} ${cls}`).toBe(Math.round(usd * 200_000));
    }
  });

  it('sums the classes of one usage without floating-point drift', () => {
    const usage = { input: 1234, cacheWrite5m: 4321, cacheWrite1h: 777, cacheRead: 98_765, output: 4567 };
    // 1234*3 + 4321*3.75 + 777*6 + 98765*0.3 + 4567*15 = 3702 + 16203.75 + 4662 + 29629.5 + 68505
    expect(table.cost('claude-sonnet-4-5', usage)).toBe(122_703);
  });

  it('rounds a fractional micro-dollar up, never down', () => {
    expect(table.cost('claude-haiku-4-5', { ...none, cacheRead: 1 })).toBe(1);
    expect(table.cost('claude-haiku-4-5', { ...none, cacheRead: 10 })).toBe(1);
    expect(table.cost('claude-haiku-4-5', { ...none, cacheRead: 11 })).toBe(2);
  });

  it('uses the long-context tier above 200K input tokens for Sonnet', () => {
    const long = { ...none, input: 150_000, cacheRead: 60_000, output: 1000 };
    expect(table.cost('claude-sonnet-4-5', long)).toBe(150_000 * 6 + 60_000 * 0.6 + 1000 * 22.5);
    const short = { ...none, input: 200_000, output: 1000 };
    expect(table.cost('claude-sonnet-4-5', short)).toBe(200_000 * 3 + 1000 * 15);
  });

  it('refuses an unknown model instead of charging zero', () => {
    expect(() => table.cost('gpt-7', { ...none, input: 10 })).toThrow(UnknownPriceError);
    expect(table.has('gpt-7')).toBe(false);
  });

  it('applies effective dates: a later entry wins from its date on', () => {
    const t = new PriceTable([
      {
        model: 'm',
        aliases: [],
        from: '2025-01-01',
        rates: { input: 1, cacheWrite5m: 1, cacheWrite1h: 1, cacheRead: 1, output: 1 },
        maxOutputTokens: 10,
      },
      {
        model: 'm',
        aliases: [],
        from: '2026-01-01',
        rates: { input: 2, cacheWrite5m: 2, cacheWrite1h: 2, cacheRead: 2, output: 2 },
        maxOutputTokens: 10,
      },
    ]);
    expect(t.cost('m', { ...none, input: 10 }, Date.parse('2025-06-01'))).toBe(10);
    expect(t.cost('m', { ...none, input: 10 }, Date.parse('2026-06-01'))).toBe(20);
    expect(t.has('m', Date.parse('2024-06-01'))).toBe(false);
  });

  // Today's models, one per class, every token class priced to the µ$ at 200,000 tokens (the
  // looked-up table: docs/research/anthropic-2026-12.md).
  it.each([
    ['claude-fable-5-2', { input: 8, cacheWrite5m: 10, cacheWrite1h: 16, cacheRead: 0.2, output: 40 }],
    ['claude-fable-5-1', { input: 10, cacheWrite5m: 12.5, cacheWrite1h: 20, cacheRead: 0.25, output: 50 }],
    ['claude-opus-5-5', { input: 4, cacheWrite5m: 5, cacheWrite1h: 8, cacheRead: 0.2, output: 20 }],
    ['claude-opus-5', { input: 5, cacheWrite5m: 6.25, cacheWrite1h: 10, cacheRead: 0.5, output: 25 }],
    ['claude-opus-4-8', { input: 5, cacheWrite5m: 6.25, cacheWrite1h: 10, cacheRead: 0.5, output: 25 }],
    ['claude-sonnet-5-5', { input: 2, cacheWrite5m: 2.5, cacheWrite1h: 4, cacheRead: 0.1, output: 10 }],
    ['claude-sonnet-5', { input: 2, cacheWrite5m: 2.5, cacheWrite1h: 4, cacheRead: 0.2, output: 10 }],
    [
      'claude-haiku-5-5',
      { input: 0.1, cacheWrite5m: 0.125, cacheWrite1h: 0.2, cacheRead: 0.01, output: 0.5 },
    ],
  ])("prices every token class of today's %s exactly", (model, perMTok) => {
    const at = Date.parse('2026-12-02T12:00:00Z');
    for (const [cls, usd] of Object.entries(perMTok)) {
      expect(table.cost(model, { ...none, [cls]: 20_000 }, at), `${model} ${cls}`).toBe(
        Math.ceil(usd * 20_000 - 1e-9),
      );
    }
  });

  it("reads Sonnet 5.5's cache at $0.20/MTok before the 2026-10-07 cut and $0.10 from it", () => {
    const read = { ...none, cacheRead: MTOK };
    expect(table.cost('claude-sonnet-5-5', read, Date.parse('2026-10-06T12:00:00Z'))).toBe(200_000);
    expect(table.cost('claude-sonnet-5-5', read, Date.parse('2026-10-07T00:00:00Z'))).toBe(100_000);
  });

  it('prices Haiku 5.5 by prompt length: above 100,000 prompt tokens every class costs 5×', () => {
    const low = { ...none, input: 60_000, cacheRead: 40_000, output: 1000 };
    expect(table.cost('claude-haiku-5-5', low)).toBe(60_000 * 0.1 + 40_000 * 0.01 + 1000 * 0.5);
    const high = { ...low, cacheWrite5m: 1 };
    expect(table.cost('claude-haiku-5-5', high)).toBe(
      Math.ceil(60_000 * 0.5 + 40_000 * 0.05 + 0.625 + 1000 * 2.5),
    );
  });

  it('halves every class for Message Batches, and stacks 1.1× for US-only inference and 2× for fast mode', () => {
    const u = { input: 10_000, cacheWrite5m: 2000, cacheWrite1h: 1000, cacheRead: 50_000, output: 3000 };
    const base = 10_000 * 4 + 2000 * 5 + 1000 * 8 + 50_000 * 0.2 + 3000 * 20; // Opus 5.5: 128,000 µ$
    expect(table.cost('claude-opus-5-5', u)).toBe(base);
    expect(table.cost('claude-opus-5-5', u, Date.now(), { batch: true })).toBe(base / 2);
    expect(table.cost('claude-opus-5-5', u, Date.now(), { usOnly: true })).toBe(Math.ceil(base * 1.1));
    expect(table.cost('claude-opus-5-5', u, Date.now(), { batch: true, usOnly: true })).toBe(
      Math.ceil((base / 2) * 1.1),
    );
    expect(table.cost('claude-opus-5-5', u, Date.now(), { fast: true })).toBe(base * 2);
    expect(() => table.cost('claude-sonnet-5-5', u, Date.now(), { fast: true })).toThrow(UnknownPriceError);
  });

  it('rounds a batch of fractional µ$ up once per call, never down', () => {
    // Haiku 5.5 cache read in a batch: 0.005 µ$ per token.
    expect(table.cost('claude-haiku-5-5', { ...none, cacheRead: 1 }, Date.now(), { batch: true })).toBe(1);
    expect(table.cost('claude-haiku-5-5', { ...none, cacheRead: 200 }, Date.now(), { batch: true })).toBe(1);
    expect(table.cost('claude-haiku-5-5', { ...none, cacheRead: 201 }, Date.now(), { batch: true })).toBe(2);
  });

  it('prices exactly at any size: the same µ$ as whole-number arithmetic, huge counts included', () => {
    // The reference: ⌈Σ tokens × (µ$ per MTok) × num / (10⁶ × den)⌉ in BigInt, for every option
    // mix, from a few tokens to counts whose sum passes 2⁵³ (where doubles stop being exact).
    const rates = table.lookup('claude-opus-4-1-20250805')!.rates;
    const classes = ['input', 'cacheWrite5m', 'cacheWrite1h', 'cacheRead', 'output'] as const;
    let seed = 11;
    const rand = () => {
      seed = (seed * 48_271) % 2_147_483_647;
      return seed / 2_147_483_647;
    };
    const sizes = [10, 1_000, 150_000, 1e9, 1e11, 2 ** 52];
    for (let i = 0; i < 3_000; i++) {
      const usage = { ...none };
      for (const c of classes) usage[c] = Math.floor(rand() * sizes[Math.floor(rand() * sizes.length)]!);
      const opts = { batch: rand() < 0.4, usOnly: rand() < 0.3, regional: rand() < 0.3 };
      let num = 1n;
      let den = 1_000_000n;
      if (opts.batch) den *= 2n;
      for (const on of [opts.usOnly, opts.regional]) {
        if (!on) continue;
        num *= 11n;
        den *= 10n;
      }
      // Below the long-context threshold of this model (it has none): the base rates.
      let sum = 0n;
      for (const c of classes) sum += BigInt(usage[c]) * BigInt(Math.round(rates[c] * MTOK));
      const expected = Number((sum * num + den - 1n) / den);
      expect(
        table.cost('claude-opus-4-1-20250805', usage, Date.now(), opts),
        JSON.stringify({ usage, opts }),
      ).toBe(expected);
    }
    // What is not a count is refused, as before.
    expect(() => table.cost('claude-haiku-4-5', { ...none, input: 1.5 })).toThrow(RangeError);
  });

  it('prices server tools per use: web search $10 per 1,000, web fetch free', () => {
    const u = { ...none, input: 1000, serverTools: { webSearch: 3, webFetch: 2 } };
    expect(table.cost('claude-sonnet-5-5', u)).toBe(1000 * 2 + 3 * 10_000);
    expect(table.worstCase('claude-sonnet-5-5', 1000, 0, Date.now(), 'none', {}, { webSearch: 5 })).toBe(
      1000 * 2 + 5 * 10_000,
    );
  });

  it('lets a config entry with the same date override a built-in one', () => {
    const builtIn = new PriceTable().lookup('claude-opus-5-5')!;
    const t = new PriceTable([builtIn, { ...builtIn, rates: { ...builtIn.rates, output: 30 } }]);
    expect(t.cost('claude-opus-5-5', { ...none, output: 1000 })).toBe(30_000);
  });

  it('prices the worst case as all input uncached plus max output', () => {
    expect(table.worstCase('claude-haiku-4-5', 1000, 500)).toBe(1000 * 1 + 500 * 5);
  });
});

describe('money', () => {
  it.each([
    ['50', 50_000_000],
    ['50.00', 50_000_000],
    ['$50', 50_000_000],
    ['$0.000001', 1],
    [2.5, 2_500_000],
  ])('parses %j', (input, micros) => {
    expect(parseUsd(input)).toBe(micros);
  });

  it.each(['fifty', '-1', '1.0000001', '', '$', '1e3'])('rejects %j naming the expected shape', (input) => {
    expect(() => parseUsd(input)).toThrow(/expected a dollar amount like "50.00"/);
  });

  it('formats µ$ at the edge with two or more decimals', () => {
    expect(formatUsd(49_910_000)).toBe('49.91');
    expect(formatUsd(300)).toBe('0.0003');
    expect(formatUsd(0)).toBe('0.00');
  });
});
