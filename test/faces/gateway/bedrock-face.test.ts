import { AnthropicBedrock } from '@anthropic-ai/bedrock-sdk';
import {
  BedrockRuntimeClient,
  ConverseCommand,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
  ServiceQuotaExceededException,
} from '@aws-sdk/client-bedrock-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../../helpers/harness.ts';

type Entry = Record<string, any>;

/**
 * The gateway's Bedrock face driven by both official clients — `@anthropic-ai/bedrock-sdk` and
 * `@aws-sdk/client-bedrock-runtime` (HTTP/2, as it always speaks) — with a Chokepoint key as the
 * Bedrock API key (Bearer), through the one call path to the Bedrock provider (the real adapter:
 * SigV4 and event-stream, against the emulator's Bedrock face). The ledger equals the emulator's
 * Bedrock bill to the µ$.
 */
describe('Bedrock face (the official Bedrock clients through the gateway)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const ledgerOf = async (keyId: string): Promise<Entry[]> => {
    const res = await h.api<{ entries: Entry[] }>('GET', '/api/ledger?limit=1000');
    return res.body.entries.filter((e) => e.identity.keyId === keyId).reverse();
  };
  const bill = () => h.rt.emulator!.billing.total('bedrock');
  const sdk = (key: string, maxRetries = 0) =>
    new AnthropicBedrock({ baseURL: `${h.url}/bedrock`, awsRegion: 'us-east-1', apiKey: key, maxRetries });
  const aws = (key: string) =>
    new BedrockRuntimeClient({
      endpoint: `${h.url}/bedrock`,
      region: 'us-east-1',
      token: { token: key },
      authSchemePreference: ['httpBearerAuth'],
    });

  it('answers @anthropic-ai/bedrock-sdk, streamed and not, ledgered under bedrock at the bill', async () => {
    const { key, id } = await h.client({ team: 'aws' });
    const before = bill();
    const client = sdk(key);
    const msg = await client.messages.create({
      model: 'us.anthropic.claude-sonnet-4-6',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Hello Bedrock' }],
    });
    expect(msg.type).toBe('message');
    const final = await client.messages
      .stream({
        model: 'us.anthropic.claude-sonnet-4-6',
        max_tokens: 64,
        messages: [{ role: 'user', content: 'Stream from Bedrock' }],
      })
      .finalMessage();
    expect(final.content.length).toBeGreaterThan(0);
    const entries = await ledgerOf(id);
    expect(entries.map((e) => [e.provider, e.outcome, e.name])).toEqual([
      ['bedrock', 'ok', 'claude-sonnet-4-6'],
      ['bedrock', 'ok', 'claude-sonnet-4-6'],
    ]);
    expect(entries.reduce((s, e) => s + e.cost, 0)).toBe(bill() - before);
  });

  it('prices a geographic profile at 1.1x the global one', async () => {
    const { key, id } = await h.client({ team: 'aws-geo' });
    const ask = (model: string) =>
      sdk(key).messages.create({
        model,
        max_tokens: 32,
        messages: [{ role: 'user', content: 'Same words' }],
      });
    await ask('global.anthropic.claude-sonnet-4-6');
    await ask('eu.anthropic.claude-sonnet-4-6');
    const [global, eu] = await ledgerOf(id);
    expect(eu!.tokens).toEqual(global!.tokens);
    expect(Math.abs(eu!.cost - global!.cost * 1.1)).toBeLessThanOrEqual(1.1);
  });

  it('answers the AWS SDK: InvokeModel, InvokeModelWithResponseStream and Converse', async () => {
    const { key, id } = await h.client({ team: 'aws-sdk' });
    const before = bill();
    const client = aws(key);
    const body = JSON.stringify({
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Hello from the AWS SDK' }],
    });
    const modelId = 'us.anthropic.claude-haiku-4-5-20251001-v1:0';
    const invoked = await client.send(
      new InvokeModelCommand({ modelId, body, contentType: 'application/json' }),
    );
    expect(JSON.parse(new TextDecoder().decode(invoked.body)).type).toBe('message');
    const streamed = await client.send(new InvokeModelWithResponseStreamCommand({ modelId, body }));
    const types: string[] = [];
    for await (const ev of streamed.body!) {
      if (ev.chunk?.bytes) types.push(JSON.parse(new TextDecoder().decode(ev.chunk.bytes)).type);
    }
    expect(types[0]).toBe('message_start');
    expect(types.at(-1)).toBe('message_stop');
    const conversed = await client.send(
      new ConverseCommand({
        modelId,
        messages: [{ role: 'user', content: [{ text: 'Converse with me' }] }],
        inferenceConfig: { maxTokens: 64 },
      }),
    );
    expect(conversed.output?.message?.content?.[0]?.text).toBeTruthy();
    expect(conversed.usage?.outputTokens).toBeGreaterThan(0);
    const entries = await ledgerOf(id);
    expect(entries.map((e) => e.provider)).toEqual(['bedrock', 'bedrock', 'bedrock']);
    expect(entries.reduce((s, e) => s + e.cost, 0)).toBe(bill() - before);
  });

  it('lists inference profiles without a key, as Claude Code asks first', async () => {
    const res = await fetch(`${h.url}/bedrock/inference-profiles?type=SYSTEM_DEFINED`);
    expect(res.status).toBe(200);
    const ids = ((await res.json()) as Entry).inferenceProfileSummaries.map(
      (p: Entry) => p.inferenceProfileId,
    );
    expect(ids).toEqual(
      expect.arrayContaining(['us.anthropic.claude-opus-5-5', 'global.anthropic.claude-opus-5-5']),
    );
  });

  it('refuses a budget overrun once, as a quota error neither client retries', async () => {
    const { key, id } = await h.client({ team: 'aws-tight', seat: 'aws-tight' });
    await h.api('POST', '/api/budgets/seat:aws-tight/ceiling', { amount: '0.0001', reason: 'test' });
    const err = (await sdk(key, 3)
      .messages.create({
        model: 'us.anthropic.claude-opus-4-6',
        max_tokens: 4096,
        messages: [{ role: 'user', content: 'Too dear' }],
      })
      .catch((e: unknown) => e)) as { status: number; error: Entry };
    expect(err.status).toBe(400);
    expect(err.error.chokepoint.code).toBe('budget_exhausted');
    const awsErr = await aws(key)
      .send(
        new InvokeModelCommand({
          modelId: 'us.anthropic.claude-opus-4-6',
          body: JSON.stringify({
            anthropic_version: 'bedrock-2023-05-31',
            max_tokens: 4096,
            messages: [{ role: 'user', content: 'x' }],
          }),
        }),
      )
      .catch((e: unknown) => e);
    expect(awsErr).toBeInstanceOf(ServiceQuotaExceededException);
    expect((awsErr as ServiceQuotaExceededException).$metadata.attempts).toBe(1);
    expect((await ledgerOf(id)).map((e) => e.code)).toEqual(['budget_exhausted', 'budget_exhausted']);
  });

  it('refuses an unknown model id and a missing key in Bedrock’s shape', async () => {
    const res = await fetch(`${h.url}/bedrock/model/meta.llama3/invoke`, { method: 'POST', body: '{}' });
    // Bedrock answers a missing or bad credential with 403.
    expect(res.status).toBe(403);
    expect(res.headers.get('x-amzn-errortype')).toMatch(/Exception/);
    const { key } = await h.client({ team: 'aws' });
    const bad = await fetch(`${h.url}/bedrock/model/meta.llama3/invoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}` },
      body: '{}',
    });
    expect(bad.status).toBe(404);
    expect(((await bad.json()) as Entry).message).toMatch(/meta\.llama3/);
  });
});
