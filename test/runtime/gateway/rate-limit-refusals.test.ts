import { describe, expect, it } from 'vitest';
import { bedrockErrorOf } from '../../../adapters/bedrock/errors.ts';
import { toGoogleError } from '../../../adapters/vertex/errors.ts';
import { ConfigError } from '../../../runtime/config/error.ts';
import { resolveConfig } from '../../../runtime/config/load.ts';
import { refusalToOpenAI } from '../../../runtime/faces/gateway/openai/errors.ts';
import { rateCharges } from '../../../runtime/gateway/rate-limits.ts';
import { rateLimited } from '../../../runtime/gateway/refusal.ts';
import type { Budget } from '../../../runtime/store/port.ts';

const now = Date.parse('2026-12-01T10:00:00Z');
const budget: Budget = {
  id: 'bgt_1',
  scope: 'team:payments',
  unit: 'requests',
  owner: 'rate-limit',
  ceiling: 60,
  window: '1m',
  state: 'exhausted',
  spent: 60,
  reserved: 0,
  windowStart: now - 60_000,
  resetsAt: now + 2_500,
  createdAt: now,
  updatedAt: now,
};
const refusal = () => rateLimited({ budget, amount: 1, retryAt: now + 12_400 }, now);

describe('rate_limited in every face', () => {
  it('is a retryable 429 rate_limit_error with retry-after in the Anthropic envelope', () => {
    const r = refusal();
    expect(r.status).toBe(429);
    expect(r.headers()).toMatchObject({ 'x-should-retry': 'true', 'retry-after': '13' });
    expect(r.envelope()).toMatchObject({
      error: { type: 'rate_limit_error' },
      chokepoint: {
        code: 'rate_limited',
        rate_limit: { scope: 'team:payments', unit: 'requests', limit: 60 },
      },
    });
    expect(r.message).toMatch(/^rate limited: team 'payments' may use 60 requests per 1m \(used 60/);
  });

  it('is not retryable when the call alone is above the limit', () => {
    const r = rateLimited({ budget, amount: 61, retryAt: null }, now);
    expect(r.headers()['x-should-retry']).toBe('false');
    expect(r.headers()['retry-after']).toBeUndefined();
  });

  it('keeps code, retry-after and x-should-retry in the OpenAI envelope', () => {
    const out = refusalToOpenAI(refusal(), 'req_1');
    expect(out.status).toBe(429);
    expect(out.headers).toMatchObject({ 'retry-after': '13', 'x-should-retry': 'true' });
    expect(JSON.parse(out.body.toString())).toMatchObject({
      error: { type: 'rate_limit_error', code: 'rate_limited' },
    });
  });

  it("is Bedrock's retryable 429 ThrottlingException, unlike a budget refusal", () => {
    const out = bedrockErrorOf(429, JSON.stringify(refusal().envelope()));
    expect(out.status).toBe(429);
    expect(out.headers['x-amzn-errortype']).toBe('ThrottlingException');
    expect(out.headers['x-should-retry']).toBeUndefined();
    expect(JSON.parse(out.body).chokepoint.code).toBe('rate_limited');
  });

  it("is Google's RESOURCE_EXHAUSTED with the chokepoint object on Vertex", () => {
    const g = toGoogleError(429, Buffer.from(JSON.stringify(refusal().envelope())));
    expect(g.error).toMatchObject({ code: 429, status: 'RESOURCE_EXHAUSTED' });
    expect((g.chokepoint as { code: string }).code).toBe('rate_limited');
  });
});

describe('rateLimits in the config', () => {
  it('takes a scope kind or one scope, a unit, a limit and a rolling window (default 1m)', () => {
    const c = resolveConfig(
      {
        rateLimits: [
          { scope: 'seat', unit: 'requests', limit: 60 },
          { scope: 'model:anthropic.claude-opus-5-v1:0', unit: 'output_tokens', limit: 80_000, window: '1h' },
          { scope: 'key:key_1', unit: 'concurrent', limit: 4 },
        ],
      },
      { env: {} },
    );
    expect(c.rateLimits.map((r) => r.window)).toEqual(['1m', '1h', '1m']);
  });

  it('names the field that is wrong', () => {
    const bad = (rateLimits: unknown) => {
      try {
        resolveConfig({ rateLimits }, { env: {} });
      } catch (err) {
        if (err instanceof ConfigError) return err.problems.join('\n');
        throw err;
      }
      return '';
    };
    expect(bad([{ scope: 'planet', unit: 'requests', limit: 1 }])).toMatch(
      /rateLimits\.0\.scope: expected a scope kind/,
    );
    expect(bad([{ scope: 'team', unit: 'dollars', limit: 1 }])).toMatch(/rateLimits\.0\.unit/);
    expect(bad([{ scope: 'team', unit: 'requests', limit: 1.5 }])).toMatch(/rateLimits\.0\.limit/);
    expect(bad([{ scope: 'team', unit: 'requests', limit: 1, window: 'day' }])).toMatch(
      /rateLimits\.0\.window: expected a rolling window/,
    );
  });
});

describe('which rate limits apply to a call', () => {
  const limits = [
    { scope: 'seat', unit: 'requests' as const, limit: 60, window: '1m' as const },
    { scope: 'key', unit: 'input_tokens' as const, limit: 100_000, window: '1m' as const },
    { scope: 'team:other', unit: 'requests' as const, limit: 1, window: '1m' as const },
    { scope: 'model:claude-opus-5', unit: 'output_tokens' as const, limit: 9_000, window: '1h' as const },
  ];
  it("counts a kind on the caller's own scope, and an exact scope only when it is the caller's", () => {
    const who = { team: 'payments', env: 'prod', seat: 'alice', keyId: 'key_9' };
    expect(rateCharges(limits, who, 'claude-opus-5', { input: 1234.5, output: 800 })).toEqual([
      { scope: 'seat:alice', unit: 'requests', window: '1m', limit: 60, amount: 1 },
      { scope: 'key:key_9', unit: 'input_tokens', window: '1m', limit: 100_000, amount: 1235 },
      { scope: 'model:claude-opus-5', unit: 'output_tokens', window: '1h', limit: 9_000, amount: 800 },
    ]);
    // No key (a workflow run): the key limit does not apply.
    const run = { team: 'other', env: 'prod', seat: 'op', workflow: 'w', run: 'r_1' };
    expect(
      rateCharges(limits, run, 'claude-haiku-5-5', { input: 1, output: 1 })?.map((r) => r.scope),
    ).toEqual(['seat:op', 'team:other']);
    expect(rateCharges([], run, 'm', { input: 1, output: 1 })).toBeUndefined();
  });
});
