import Anthropic from '@anthropic-ai/sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../../helpers/harness.ts';
import { throwawayRedis } from '../store/redis-harness.ts';

describe('the gateway fails closed', () => {
  const open: Harness[] = [];
  afterAll(async () => {
    for (const h of open) await h.close().catch(() => undefined);
  });

  it('refuses with 503 enforcement_unavailable when Redis goes away mid-run, and calls no provider', async () => {
    const redis = await throwawayRedis();
    const h = await startHarness({
      backend: 'redis',
      config: { store: { backend: 'redis', redisUrl: redis.url } },
    });
    open.push(h);
    const { key } = await h.client();
    // 503 says x-should-retry: true with retry-after: 5; the SDK would wait and retry.
    const client = new Anthropic({ baseURL: h.url, apiKey: key, maxRetries: 0 });
    const ask = () =>
      client.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'x' }],
      });
    await ask();
    const billedBefore = h.rt.emulator!.billing.total();
    await redis.stop();
    const err = await ask().catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.InternalServerError);
    expect(err.status).toBe(503);
    expect(err.error.chokepoint.code).toBe('enforcement_unavailable');
    expect(err.message).toMatch(/fails closed/);
    // Nothing reached the provider while enforcement could not decide.
    expect(h.rt.emulator!.billing.total()).toBe(billedBefore);
    const ready = await fetch(`${h.url}/readyz`);
    expect(ready.status).toBe(503);
  });

  it('refuses with 503 when the embedded store is closed under it', async () => {
    const h = await startHarness();
    open.push(h);
    const { key } = await h.client();
    const client = new Anthropic({ baseURL: h.url, apiKey: key, maxRetries: 0 });
    await h.rt.store.close();
    const err = await client.messages
      .create({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })
      .catch((e) => e);
    expect(err.status).toBe(503);
    expect(err.error.chokepoint.code).toBe('enforcement_unavailable');
    expect(err.headers.get('x-should-retry')).toBe('true');
    expect(h.rt.emulator!.billing.total()).toBe(0);
  });
});
