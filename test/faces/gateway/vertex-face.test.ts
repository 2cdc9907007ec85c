import { AnthropicVertex } from '@anthropic-ai/vertex-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../../helpers/harness.ts';

type Entry = Record<string, any>;

/**
 * The gateway's Vertex face driven by the official `@anthropic-ai/vertex-sdk`, through the one
 * call path to the Vertex provider (the real adapter, against the emulator's Vertex face), and
 * back: the ledger equals the emulator's Vertex bill to the µ$.
 */
describe('Vertex face (the official Vertex SDK through the gateway)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const vertex = (key: string, region = 'global') =>
    new AnthropicVertex({
      baseURL: `${h.url}/vertex`,
      region,
      projectId: 'acme-prod',
      accessToken: key,
      maxRetries: 0,
      authClient: {
        getRequestHeaders: async () => new Headers({ authorization: `Bearer ${key}` }),
      } as never,
    });
  const ledgerOf = async (keyId: string): Promise<Entry[]> => {
    const res = await h.api<{ entries: Entry[] }>('GET', '/api/ledger?limit=1000');
    return res.body.entries.filter((e) => e.identity.keyId === keyId).reverse();
  };
  const vertexBill = () => h.rt.emulator!.billing.total('vertex');

  it('answers a message and a stream, each ledgered under vertex at the emulator bill', async () => {
    const { key, id } = await h.client({ team: 'gcp' });
    const client = vertex(key);
    const before = vertexBill();
    const msg = await client.messages.create({
      model: 'claude-sonnet-4-6',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Hello from Vertex' }],
    });
    expect(msg.type).toBe('message');
    const stream = client.messages.stream({
      model: 'claude-sonnet-4-6',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Stream please' }],
    });
    const final = await stream.finalMessage();
    expect(final.content.length).toBeGreaterThan(0);
    const entries = await ledgerOf(id);
    expect(entries.map((e) => [e.provider, e.outcome])).toEqual([
      ['vertex', 'ok'],
      ['vertex', 'ok'],
    ]);
    const charged = entries.reduce((s, e) => s + e.cost, 0);
    expect(charged).toBe(vertexBill() - before);
    expect(charged).toBeGreaterThan(0);
  });

  it('prices a regional location at 1.1x the global one', async () => {
    const { key, id } = await h.client({ team: 'gcp-eu' });
    const body = {
      model: 'claude-sonnet-4-6',
      max_tokens: 32,
      messages: [{ role: 'user' as const, content: 'Same words, two places' }],
    };
    await vertex(key, 'global').messages.create(body);
    await vertex(key, 'europe-west1').messages.create(body);
    const [global, regional] = await ledgerOf(id);
    expect(global!.tokens).toEqual(regional!.tokens);
    // Each is rounded up to the µ$ once: 1.1x the global cost, within that rounding.
    expect(Math.abs(regional!.cost - global!.cost * 1.1)).toBeLessThanOrEqual(1.1);
    expect(regional!.cost).toBeGreaterThan(global!.cost);
  });

  it('counts tokens through the Vertex provider', async () => {
    const { key } = await h.client({ team: 'gcp' });
    const n = await vertex(key).messages.countTokens({
      model: 'claude-sonnet-4-6',
      messages: [{ role: 'user', content: 'How many tokens is this?' }],
    });
    expect(n.input_tokens).toBeGreaterThan(0);
  });

  it('refuses over the ceiling in Google’s envelope with our code, once, without a retry', async () => {
    const { key, id } = await h.client({ team: 'gcp-tight', seat: 'gcp-tight' });
    await h.api('POST', '/api/budgets/seat:gcp-tight/ceiling', { amount: '0.0001', reason: 'test' });
    const client = new AnthropicVertex({
      baseURL: `${h.url}/vertex`,
      region: 'global',
      projectId: 'acme-prod',
      accessToken: key,
      authClient: {
        getRequestHeaders: async () => new Headers({ authorization: `Bearer ${key}` }),
      } as never,
    });
    const err = (await client.messages
      .create({
        model: 'claude-opus-4-6',
        max_tokens: 4096,
        messages: [{ role: 'user', content: 'Too dear' }],
      })
      .catch((e: unknown) => e)) as { status: number; error: Entry };
    expect(err.status).toBe(429);
    expect(err.error.error.status).toBe('RESOURCE_EXHAUSTED');
    expect(err.error.chokepoint.code).toBe('budget_exhausted');
    const entries = await ledgerOf(id);
    expect(entries.map((e) => [e.outcome, e.code])).toEqual([['refused', 'budget_exhausted']]);
  });

  it('refuses a request without a Chokepoint key, and a path that is not a Claude model', async () => {
    const bad = vertex('cp_not-a-key');
    const err = (await bad.messages
      .create({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e)) as { status: number };
    expect(err.status).toBe(401);
    const { key } = await h.client({ team: 'gcp' });
    const res = await fetch(
      `${h.url}/vertex/projects/p/locations/global/publishers/google/models/gemini:rawPredict`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: '{}',
      },
    );
    expect(res.status).toBe(404);
    expect(((await res.json()) as Entry).error.message).toMatch(/publisher/);
  });
});
