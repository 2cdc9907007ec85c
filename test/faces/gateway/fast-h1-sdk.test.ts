import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../../helpers/harness.ts';

/**
 * The real Anthropic SDK against the gateway: its messages, streamed or not, take the gateway's own
 * HTTP/1.1 path (runtime/faces/gateway/fast-h1.ts), and so do its token counts; a request that path
 * does not take (the models list, a GET) goes to node:http with its connection, answered all the same.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

describe('the Anthropic SDK on the fast HTTP/1.1 path', () => {
  it('sends its messages and token counts through it, streamed and not; the models list goes to node:http', async () => {
    const { client } = await h.client({ team: 'sdk', seat: 'fast' });
    // The key was made over the operator API, a connection node:http has kept (and the SDK's fetch
    // would reuse): let it go, so the SDK's calls open their own.
    h.listening.server.closeIdleConnections();
    const counts = h.listening.fast!.counts;
    const before = { ...counts };
    const msg = await client.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 32,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(msg.type).toBe('message');
    const stream = client.messages.stream({
      model: 'claude-haiku-4-5',
      max_tokens: 32,
      messages: [{ role: 'user', content: 'hi again' }],
    });
    const streamed = await stream.finalMessage();
    expect(streamed.usage.output_tokens).toBeGreaterThan(0);
    expect(counts.served - before.served).toBe(2);
    expect(counts.handedOff).toBe(before.handedOff);

    const counted = await client.messages.countTokens({
      model: 'claude-haiku-4-5',
      messages: [{ role: 'user', content: 'count me' }],
    });
    expect(counted.input_tokens).toBeGreaterThan(0);
    expect(counts.served - before.served).toBe(3);
    expect(counts.handedOff).toBe(before.handedOff);

    const models = await client.models.list();
    expect(models.data.length).toBeGreaterThan(0);
    expect(counts.handedOff).toBe(before.handedOff + 1);

    // Every call leaves its ledger entry whichever server read it.
    const ledger = await h.api<{ entries: Array<{ outcome: string }> }>('GET', '/api/ledger?limit=100');
    expect(ledger.body.entries.filter((e) => e.outcome === 'ok').length).toBeGreaterThanOrEqual(2);
  });
});
