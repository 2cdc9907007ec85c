import { describe, expect, it } from 'vitest';
import { callCost, fitMaxTokens, worstCase } from '../../../runtime/gateway/cost.ts';
import { checkBody, inspect } from '../../../runtime/gateway/messages.ts';
import { Refusal } from '../../../runtime/gateway/refusal.ts';
import { PriceTable } from '../../../runtime/pricing/pricing.ts';

const prices = new PriceTable();
const at = Date.parse('2026-12-02T12:00:00Z');
const base = { model: 'claude-opus-5-5', max_tokens: 1000, messages: [{ role: 'user', content: 'hi' }] };

function refusalOf(fn: () => unknown): Refusal {
  try {
    fn();
  } catch (err) {
    if (err instanceof Refusal) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

function costOf(body: Record<string, unknown>, geo: 'global' | 'us' = 'global') {
  const b = checkBody({ ...base, ...body });
  return callCost(prices, b, b.model, prices.lookup(b.model, at)!, inspect(b), at, geo);
}

describe('admission: what a request can cost', () => {
  it('counts every string of the body, fields it does not know included', () => {
    const plain = inspect(checkBody(base)).inputTokens;
    const withNew = inspect(checkBody({ ...base, next_month: { prompt: 'x'.repeat(10_000) } })).inputTokens;
    expect(withNew - plain).toBeGreaterThanOrEqual(5_000);
    const deepRole = inspect(
      checkBody({ ...base, messages: [...base.messages, { role: 'system', content: 'y'.repeat(4_000) }] }),
    ).inputTokens;
    expect(deepRole - plain).toBeGreaterThanOrEqual(2_000);
  });

  it('counts an image at the API cap, not its base64', () => {
    const img = {
      type: 'image',
      source: { type: 'base64', media_type: 'image/png', data: 'A'.repeat(1_000_000) },
    };
    const n = inspect(checkBody({ ...base, messages: [{ role: 'user', content: [img] }] })).inputTokens;
    expect(n).toBeGreaterThanOrEqual(1600);
    expect(n).toBeLessThan(2000);
  });

  it('prices the input at the dearest cache write the request can cause', () => {
    const oneHour = { type: 'text', text: 'x', cache_control: { type: 'ephemeral', ttl: '1h' } };
    expect(inspect(checkBody({ ...base, system: [oneHour] })).writes).toBe('1h');
    expect(inspect(checkBody({ ...base, cache_control: { type: 'ephemeral' } })).writes).toBe('5m');
    expect(inspect(checkBody(base)).writes).toBe('none');
  });

  it('accepts any role, block type and top-level field; checks only what admission needs', () => {
    expect(() =>
      checkBody({
        ...base,
        messages: [{ role: 'developer', content: [{ type: 'hologram', x: 1 }] }],
        foo: 1,
      }),
    ).not.toThrow();
    expect(refusalOf(() => checkBody({ ...base, max_tokens: 0 })).details.field).toBe('max_tokens');
    expect(refusalOf(() => checkBody({ ...base, model: '' })).details.field).toBe('model');
    expect(refusalOf(() => checkBody({ ...base, messages: ['hi'] })).details.field).toBe('messages.0');
    expect(refusalOf(() => checkBody({ ...base, stream: 'yes' })).details.field).toBe('stream');
  });

  it('reads the price options off the request: fast mode, US-only inference', () => {
    expect(costOf({ speed: 'fast' }).options).toEqual({ fast: true });
    expect(costOf({ inference_geo: 'us' }).options).toEqual({ usOnly: true });
    expect(costOf({}, 'us').options).toEqual({ usOnly: true }); // the organisation's default
    expect(costOf({ inference_geo: 'global' }, 'us').options).toEqual({});
    const noFast = refusalOf(() => costOf({ model: 'claude-sonnet-5-5', speed: 'fast' }));
    expect(noFast.details.field).toBe('speed');
    expect(refusalOf(() => costOf({ inference_geo: 'mars' })).details.field).toBe('inference_geo');
  });

  it('bounds server tools by max_uses and refuses what it cannot bound, naming the field', () => {
    const c = costOf({ tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 4 }] });
    expect(c.serverTools.webSearch).toBe(4);
    expect(c.toolInputTokens).toBeGreaterThan(0);
    const open = refusalOf(() => costOf({ tools: [{ type: 'web_search_20260318', name: 'web_search' }] }));
    expect(open.details.field).toBe('tools.0.max_uses');
    const unknown = refusalOf(() =>
      costOf({ tools: [{ name: 'ok' }, { type: 'teleport_20270101', name: 'beam', max_uses: 1 }] }),
    );
    expect(unknown.details.field).toBe('tools.1.type');
    // Client tools and token-only server tools pass as they are.
    expect(() =>
      costOf({
        tools: [
          { name: 'Bash', defer_loading: true },
          { type: 'bash_20250124', name: 'bash' },
        ],
      }),
    ).not.toThrow();
  });

  it('fits max_tokens to the room left: the largest that fits, never below the floor', () => {
    const b = checkBody({ ...base, max_tokens: 128_000 });
    const facts = inspect(b);
    const c = callCost(prices, b, b.model, prices.lookup(b.model, at)!, facts, at, 'global');
    const worst = (n: number) => worstCase(prices, b.model, facts, c, n, at);
    const fitted = fitMaxTokens(worst, 1_000_000, 128_000, 1024)!;
    expect(worst(fitted)).toBeLessThanOrEqual(1_000_000);
    expect(worst(fitted + 1)).toBeGreaterThan(1_000_000);
    expect(fitMaxTokens(worst, worst(1023), 128_000, 1024)).toBeUndefined();
  });
});
