import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RateLimitError } from '@anthropic-ai/sdk';
import { AnthropicVertex } from '@anthropic-ai/vertex-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toAnthropicError, toGoogleError } from '../../adapters/vertex/errors.ts';

const refusal = {
  type: 'error' as const,
  error: { type: 'rate_limit_error', message: "budget exhausted: team 'payments' daily ceiling $50.00" },
  chokepoint: { code: 'budget_exhausted', budget: { scope: 'team:payments', ceiling_usd: '50.00' } },
};

describe('Google error envelope → Anthropic', () => {
  it.each([
    [400, 'INVALID_ARGUMENT', 'invalid_request_error'],
    [401, 'UNAUTHENTICATED', 'authentication_error'],
    [403, 'PERMISSION_DENIED', 'permission_error'],
    [404, 'NOT_FOUND', 'not_found_error'],
    [429, 'RESOURCE_EXHAUSTED', 'rate_limit_error'],
    [500, 'INTERNAL', 'api_error'],
    [503, 'UNAVAILABLE', 'overloaded_error'],
    [504, 'DEADLINE_EXCEEDED', 'timeout_error'],
    [529, 'UNAVAILABLE', 'overloaded_error'],
  ])('maps %i %s to %s, keeping the message', (code, status, type) => {
    const body = JSON.stringify({ error: { code, message: `m${code}`, status } });
    expect(toAnthropicError(code, body)).toEqual({ type: 'error', error: { type, message: `m${code}` } });
  });

  it('reads the list form Google sometimes answers', () => {
    const body = JSON.stringify([
      { error: { code: 429, message: 'Quota exceeded', status: 'RESOURCE_EXHAUSTED' } },
    ]);
    expect(toAnthropicError(429, body).error).toEqual({
      type: 'rate_limit_error',
      message: 'Quota exceeded',
    });
  });

  it('keeps an Anthropic envelope Vertex passed through as it is', () => {
    const body = JSON.stringify({
      type: 'error',
      error: { type: 'overloaded_error', message: 'Overloaded' },
    });
    expect(toAnthropicError(529, body)).toEqual(JSON.parse(body));
  });

  it('turns a body that is not JSON into the status’s type with the text as message', () => {
    expect(toAnthropicError(502, '<html>Bad Gateway</html>')).toEqual({
      type: 'error',
      error: { type: 'api_error', message: '<html>Bad Gateway</html>' },
    });
    expect(toAnthropicError(503, '').error.message).toBe('HTTP 503 with an empty body');
  });
});

describe('Anthropic error envelope → Google, and back', () => {
  it('answers our refusal in Google’s envelope with its chokepoint object kept', () => {
    const g = toGoogleError(429, refusal);
    expect(g.error).toMatchObject({
      code: 429,
      status: 'RESOURCE_EXHAUSTED',
      message: refusal.error.message,
    });
    expect(g.error.details?.[0]).toMatchObject({
      reason: 'BUDGET_EXHAUSTED',
      metadata: { type: 'rate_limit_error' },
    });
    expect(g.chokepoint).toEqual(refusal.chokepoint);
  });

  it.each([
    [400, 'invalid_request_error'],
    [401, 'authentication_error'],
    [403, 'permission_error'],
    [409, 'invalid_request_error'],
    [413, 'request_too_large'],
    [429, 'rate_limit_error'],
    [503, 'api_error'],
  ])('round-trips a %i %s without loss', (status, type) => {
    const env = { type: 'error' as const, error: { type, message: 'why' }, chokepoint: { code: 'x' } };
    expect(toAnthropicError(status, JSON.stringify(toGoogleError(status, env)))).toEqual(env);
  });
});

/**
 * Which answer makes `@anthropic-ai/vertex-sdk` surface a budget refusal once, without retrying:
 * the SDK decides on the `x-should-retry` header before the status, so our 429 with
 * `x-should-retry: false` is thrown at once as a RateLimitError whatever the envelope; the same
 * 429 without the header is retried like Google's own quota errors.
 */
describe('a budget refusal reaches the Vertex SDK once', () => {
  let server: Server;
  let base: string;
  let calls = 0;
  let reply: { headers: Record<string, string>; body: string } = { headers: {}, body: '' };

  beforeAll(async () => {
    server = createServer((req, res) => {
      calls++;
      req.resume();
      req.on('end', () => {
        res.writeHead(429, { 'content-type': 'application/json', ...reply.headers });
        res.end(reply.body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/vertex/v1`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const call = () =>
    new AnthropicVertex({
      baseURL: base,
      region: 'global',
      projectId: 'p',
      authClient: { getRequestHeaders: async () => new Headers({ authorization: 'Bearer t' }) } as never,
      maxRetries: 2,
    }).messages
      .create({ model: 'claude-opus-5-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);

  it('throws a RateLimitError after one request for a 429 with x-should-retry: false, chokepoint readable', async () => {
    calls = 0;
    reply = {
      headers: { 'x-should-retry': 'false', 'retry-after': '3600' },
      body: JSON.stringify(toGoogleError(429, refusal)),
    };
    const err = await call();
    expect(err).toBeInstanceOf(RateLimitError);
    expect(calls).toBe(1);
    expect((err as RateLimitError).error).toMatchObject({ chokepoint: { code: 'budget_exhausted' } });
  });

  it('does the same for the Anthropic envelope: the header decides, not the body', async () => {
    calls = 0;
    reply = { headers: { 'x-should-retry': 'false' }, body: JSON.stringify(refusal) };
    expect(await call()).toBeInstanceOf(RateLimitError);
    expect(calls).toBe(1);
  });

  it('retries the same 429 without the header (maxRetries 2: three requests)', async () => {
    calls = 0;
    reply = { headers: { 'retry-after-ms': '1' }, body: JSON.stringify(toGoogleError(429, refusal)) };
    expect(await call()).toBeInstanceOf(RateLimitError);
    expect(calls).toBe(3);
  });
});
