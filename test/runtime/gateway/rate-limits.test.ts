import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, type Backend, type Harness, startHarness } from '../../helpers/harness.ts';

/** The store's clock, moved by the test instead of sleeping; starts on a rolling bucket boundary. */
class Clock {
  t = Math.floor(Date.now() / 60_000) * 60_000;
  readonly now = () => this.t;
}

const hi = {
  model: 'claude-haiku-4-5',
  max_tokens: 64,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

describe.each<Backend>(['embedded', 'redis'])('rate limits through the Anthropic SDK (%s)', (backend) => {
  let h: Harness;
  const clock = new Clock();
  beforeAll(async () => {
    h = await startHarness({
      backend,
      now: clock.now,
      config: {
        rateLimits: [
          { scope: 'key', unit: 'requests', limit: 1, window: '1m' },
          { scope: 'seat:wide', unit: 'output_tokens', limit: 1000, window: '1h' },
        ],
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('answers 429 rate_limited with retry-after, and the SDK retry is admitted once the window frees', async () => {
    const { key, id } = await h.client();
    const once = new Anthropic({ baseURL: h.url, apiKey: key, maxRetries: 0 });
    expect((await once.messages.create(hi)).content).toBeDefined();
    // Late in the window: the first request leaves it within two seconds.
    clock.t += 60_000;
    const err = await once.messages.create(hi).catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.RateLimitError);
    expect(err.error.error.type).toBe('rate_limit_error');
    expect(err.error.chokepoint.code).toBe('rate_limited');
    expect(err.error.chokepoint.rate_limit).toMatchObject({
      scope: `key:${id}`,
      unit: 'requests',
      limit: 1,
      window: '1m',
      used: 1,
    });
    expect(err.message).toMatch(/rate limited: key '.+' may use 1 requests per 1m/);
    expect(err.headers.get('x-should-retry')).toBe('true');
    const retryAfter = Number(err.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(3);

    // The SDK waits what retry-after says, then retries; by then (the store's clock moved to the
    // refusal's retry_at when it saw the 429) the window has room again.
    const seen: number[] = [];
    const hook: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      seen.push(res.status);
      if (res.status === 429) {
        const body = (await res.clone().json()) as { chokepoint: { rate_limit: { retry_at: string } } };
        clock.t = Date.parse(body.chokepoint.rate_limit.retry_at);
      }
      return res;
    };
    const retrying = new Anthropic({ baseURL: h.url, apiKey: key, maxRetries: 2, fetch: hook });
    const msg = await retrying.messages.create(hi);
    expect(msg.content).toBeDefined();
    expect(seen).toEqual([429, 200]);
    const ledger = await h.api<{ entries: { code?: string; identity: { keyId?: string } }[] }>(
      'GET',
      '/api/ledger?limit=100',
    );
    const codes = ledger.body.entries.filter((e) => e.identity.keyId === id).map((e) => e.code ?? 'ok');
    expect(codes.filter((c) => c === 'rate_limited')).toHaveLength(2);
  }, 30_000);

  it('does not retry a call that asks for more than the limit by itself', async () => {
    const { key } = await h.client({ seat: 'wide' });
    let attempts = 0;
    const counting: typeof fetch = async (input, init) => {
      attempts++;
      return fetch(input, init);
    };
    const client = new Anthropic({ baseURL: h.url, apiKey: key, maxRetries: 2, fetch: counting });
    const err = await client.messages.create({ ...hi, max_tokens: 4000 }).catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.RateLimitError);
    expect(err.error.chokepoint.code).toBe('rate_limited');
    expect(err.message).toMatch(/this call alone is above the limit/);
    expect(err.headers.get('x-should-retry')).toBe('false');
    expect(attempts).toBe(1);
  });

  it('shows rate limits and their use on the inbox budgets page', async () => {
    const login = await fetch(`${h.url}/login`, {
      method: 'POST',
      body: new URLSearchParams({ token: ADMIN_TOKEN, next: '/budgets' }),
      redirect: 'manual',
    });
    const cookie = login.headers
      .getSetCookie()
      .find((c) => c.startsWith('cp_session='))!
      .split(';')[0]!;
    const html = await (await fetch(`${h.url}/budgets`, { headers: { cookie } })).text();
    expect(html).toContain('<h2 id="rate-limits">Rate limits</h2>');
    expect(html).toContain('1 requests per 1m on key');
    expect(html).toMatch(/data-rate="key:[^"]+ requests"/);
  });

  it('shows rate limits and their use in the budgets API', async () => {
    const res = await h.api<{ rate_limits: Record<string, unknown>[] }>('GET', '/api/budgets');
    expect(res.status).toBe(200);
    expect(res.body.rate_limits).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ scope: expect.stringMatching(/^key:/), unit: 'requests', limit: 1 }),
      ]),
    );
  });
});
