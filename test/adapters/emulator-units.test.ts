import { describe, expect, it } from 'vitest';
import { LOOKBACK_BLOCKS } from '../../adapters/emulator/cache.ts';
import { priceCall, resolveModel, type TokenUsage } from '../../adapters/emulator/catalog.ts';
import { createEmulator } from '../../adapters/emulator/index.ts';
import { microsToCents } from '../../adapters/emulator/reports.ts';
import type { MessagesRequest } from '../../adapters/emulator/request.ts';
import { parseDirectives, stripDirectives } from '../../adapters/emulator/script.ts';
import { countTokens, textTokens } from '../../adapters/emulator/tokens.ts';

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

describe('pricing', () => {
  it('prices 1,000,000 Sonnet 4.6 cache-read tokens at exactly 300,000 µ$ (flat 1M window)', () => {
    expect(priceCall(model('claude-sonnet-4-6'), usage({ cacheRead: 1_000_000 })).micros).toBe(300_000);
    // The same tokens on Sonnet 4.5 pass 200K total input: the long-context read rate ($0.60) applies.
    expect(priceCall(model('claude-sonnet-4-5'), usage({ cacheRead: 1_000_000 })).micros).toBe(600_000);
    expect(priceCall(model('claude-sonnet-4-5'), usage({ cacheRead: 200_000 })).micros).toBe(60_000);
  });

  it('uses the list price of every class (USD/MTok = µ$/token)', () => {
    const all = usage({
      input: 1_000_000,
      cacheWrite5m: 1_000_000,
      cacheWrite1h: 1_000_000,
      cacheRead: 1_000_000,
      output: 1_000_000,
    });
    const dollars = (id: string) => priceCall(model(id), all).micros / 1_000_000;
    expect(dollars('claude-opus-4-6')).toBe(5 + 6.25 + 10 + 0.5 + 25);
    expect(dollars('claude-opus-4-1')).toBe(15 + 18.75 + 30 + 1.5 + 75);
    expect(dollars('claude-haiku-4-5')).toBe(1 + 1.25 + 2 + 0.1 + 5);
    expect(dollars('claude-3-5-haiku-latest')).toBe(0.8 + 1 + 1.6 + 0.08 + 4);
  });

  it('rounds each call up to the next µ$ and splits it by class without losing a µ$', () => {
    const cost = priceCall(model('claude-3-5-haiku-20241022'), usage({ input: 1, cacheRead: 1, output: 3 }));
    expect(cost.micros).toBe(Math.ceil((80 + 8 + 3 * 400) / 100)); // 12.88 µ$ → 13
    expect(Object.values(cost.byClass).reduce((a, b) => a + b, 0)).toBe(cost.micros);
  });

  it('stays exact past 2^53 hundredths of a µ$ (BigInt path)', () => {
    const huge = priceCall(model('claude-opus-4-1'), usage({ output: 10_000_000_000_000, input: 1 }));
    expect(huge.micros).toBe(750_000_000_000_015);
    expect(huge.byClass).toMatchObject({ output: 750_000_000_000_000, input: 15 });
  });

  it('bills a Sonnet 4.5 call above 200K total input entirely at long-context rates', () => {
    const sonnet = model('claude-sonnet-4-5');
    const below = priceCall(sonnet, usage({ input: 100_000, cacheRead: 100_000, output: 1000 }));
    expect(below.longContext).toBe(false);
    const above = priceCall(sonnet, usage({ input: 100_000, cacheRead: 100_001, output: 1000 }));
    expect(above.longContext).toBe(true);
    expect(above.micros).toBe(100_000 * 6 + Math.ceil(100_001 * 0.6) + 1000 * 22.5);
  });

  it('knows model limits from the provider docs', () => {
    expect(model('claude-opus-4-6')).toMatchObject({ maxOutputTokens: 128_000, minCacheableTokens: 4096 });
    // Research §8 (prompt-caching page, Aug-2026 text): Sonnet 4.6 caches from 1,024 tokens.
    expect(model('claude-sonnet-4-6')).toMatchObject({ maxOutputTokens: 128_000, minCacheableTokens: 1024 });
    expect(model('claude-sonnet-4-0')).toMatchObject({
      id: 'claude-sonnet-4-20250514',
      minCacheableTokens: 1024,
    });
    expect(model('claude-3-5-haiku-latest')).toMatchObject({
      maxOutputTokens: 8192,
      minCacheableTokens: 2048,
    });
    expect(resolveModel('claude-2')).toBeUndefined();
    expect(LOOKBACK_BLOCKS).toBe(20);
  });

  it('formats µ$ as exact cents strings', () => {
    expect(microsToCents(300_000)).toBe('30.00');
    expect(microsToCents(3)).toBe('0.0003');
    expect(microsToCents(12_345)).toBe('1.2345');
  });
});

describe('token estimate', () => {
  const req = (content: string, extra: Partial<MessagesRequest> = {}): MessagesRequest => ({
    model: 'claude-haiku-4-5',
    max_tokens: 10,
    messages: [{ role: 'user', content }],
    ...extra,
  });

  it('counts ceil(utf8 bytes / 4) per text piece plus fixed framing', () => {
    expect(textTokens('')).toBe(0);
    expect(textTokens('abcd')).toBe(1);
    expect(textTokens('abcde')).toBe(2);
    expect(textTokens('é')).toBe(1);
    expect(countTokens(req('Hello'))).toBe(3 + 4 + 2);
  });

  it('counts the same request the same, string and block content alike, and never less for more text', () => {
    expect(countTokens(req('Hello world'))).toBe(countTokens(req('Hello world')));
    const blocks: MessagesRequest = {
      ...req(''),
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello world' }] }],
    };
    expect(countTokens(blocks)).toBe(countTokens(req('Hello world')));
    let previous = 0;
    for (let n = 0; n < 50; n++) {
      const c = countTokens(req('x'.repeat(n)));
      expect(c).toBeGreaterThanOrEqual(previous);
      previous = c;
    }
  });

  it('charges tools, tool calls, tool results and images', () => {
    const base = countTokens(req('hi'));
    const tools = [{ name: 't', input_schema: { type: 'object' } }];
    expect(countTokens(req('hi', { tools }))).toBeGreaterThan(base + 16);
    const withImage: MessagesRequest = {
      ...req(''),
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', data: 'AAAA' } },
            { type: 'text', text: 'hi' },
          ],
        },
      ],
    };
    expect(countTokens(withImage)).toBe(base + 1600);
  });
});

describe('directives', () => {
  it('parses text, tool calls with nested JSON, numbers and stop reasons', () => {
    const spec = parseDirectives(
      'go [[emulator:tool_use search={"q":"a]]b","filters":{"tags":[["x"]]}}]] [[emulator:tool_use ping]] [[emulator:output_tokens=500]] [[emulator:stop_reason=pause_turn]] [[emulator:text=Hi there]]',
    );
    expect(spec).toEqual({
      toolUse: [{ name: 'search', input: { q: 'a]]b', filters: { tags: [['x']] } } }, { name: 'ping' }],
      outputTokens: 500,
      stopReason: 'pause_turn',
      text: 'Hi there',
    });
  });

  it('finds nothing in plain text and strips directives from quoted text', () => {
    expect(parseDirectives('just a question')).toBeUndefined();
    expect(stripDirectives('Weather? [[emulator:tool_use w={"a":"]]"}]] now')).toBe('Weather?  now');
  });

  it('refuses malformed directives with a 400 that says what is wrong', async () => {
    expect(() => parseDirectives('[[emulator:output_tokens=lots]]')).toThrow(
      /output_tokens expects a non-negative integer/,
    );
    expect(() => parseDirectives('[[emulator:bogus=1]]')).toThrow(/unknown directive 'bogus'/);
    const emu = createEmulator();
    const res = await emu.fetch(
      new Request('http://emulator/v1/messages', {
        method: 'POST',
        headers: {
          'x-api-key': 'sk-emulator-local',
          'content-type': 'application/json',
          'anthropic-version': '2023-06-01',
        },
        body: JSON.stringify({
          model: 'claude-haiku-4-5',
          max_tokens: 5,
          messages: [{ role: 'user', content: '[[emulator:tool_use nope]]' }],
        }),
      }),
    );
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toContain("tool 'nope'");
  });
});
