import { AnthropicVertex } from '@anthropic-ai/vertex-sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEmulator, DEFAULT_ADMIN_KEY, type Emulator } from '../../adapters/emulator/index.ts';

/**
 * `@anthropic-ai/vertex-sdk` against the emulator's Vertex face. The SDK appends
 * `/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:{method}` to its base URL as given
 * (its default base URL ends in `/v1`), so `<emulator>/vertex/v1` is the faithful base URL; Claude
 * Code's `ANTHROPIC_VERTEX_BASE_URL=<emulator>/vertex` lands on the same face without the `/v1`.
 */
describe('@anthropic-ai/vertex-sdk against the emulator', () => {
  const token = 'vertex-test-token';
  let emu: Emulator;
  let url: string;
  let close: () => Promise<void>;
  const client = (region: string, base = `${url}/vertex/v1`, accessToken = token) =>
    new AnthropicVertex({
      baseURL: base,
      region,
      projectId: 'my-project',
      accessToken,
      // A static token: the SDK asks the auth client for headers, this one gives our bearer token.
      authClient: {
        getRequestHeaders: async () => new Headers({ authorization: `Bearer ${accessToken}` }),
      } as never,
      maxRetries: 0,
    });

  beforeAll(async () => {
    emu = createEmulator({ apiKeys: { vertex: token } });
    ({ url, close } = await emu.listen());
  });
  afterAll(() => close());
  beforeEach(() => emu.billing.clear());

  it('answers messages.create on the global endpoint, billed to vertex at the global price', async () => {
    const msg = await client('global').messages.create({
      model: 'claude-haiku-4-5@20251001',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Hello from Vertex [[emulator:output_tokens=12]]' }],
    });
    expect(msg.type).toBe('message');
    expect(msg.usage.output_tokens).toBe(12);
    const [entry] = emu.billing.list();
    expect(entry?.provider).toBe('vertex');
    expect(entry?.model).toBe('claude-haiku-4-5-20251001');
    expect(entry?.regional).toBeUndefined();
    expect(entry?.usage.input).toBe(msg.usage.input_tokens);
    expect(emu.billing.total('vertex')).toBe(entry?.costMicros);
    expect(emu.billing.total('anthropic')).toBe(0);
  });

  it('streams messages.create on a regional endpoint, billed at 1.1× the global price', async () => {
    const ask = {
      model: 'claude-opus-5-5',
      max_tokens: 64,
      messages: [{ role: 'user' as const, content: 'Stream it [[emulator:output_tokens=20]]' }],
    };
    const stream = client('us-east5').messages.stream(ask);
    const final = await stream.finalMessage();
    expect(final.usage.output_tokens).toBe(20);
    await client('global').messages.create(ask);
    const [regional, global] = emu.billing.list();
    expect(regional?.regional).toBe(true);
    expect(regional?.stream).toBe(true);
    expect(global?.regional).toBeUndefined();
    expect(regional?.usage).toEqual(global?.usage);
    // ceil(Σ tokens × rate × 1.1): 1.1× the global cost, within the one µ$ of rounding up.
    expect(Math.abs(regional!.costMicros - global!.costMicros * 1.1)).toBeLessThanOrEqual(1);
    expect(regional!.costMicros).toBeGreaterThan(global!.costMicros);
  });

  it('counts tokens through count-tokens:rawPredict, equal to the input the call is billed', async () => {
    const ask = {
      model: 'claude-sonnet-5-5',
      messages: [{ role: 'user' as const, content: 'Count me, please.' }],
    };
    const counted = await client('europe-west1').messages.countTokens(ask);
    const msg = await client('europe-west1').messages.create({ ...ask, max_tokens: 16 });
    expect(counted.input_tokens).toBe(msg.usage.input_tokens);
  });

  it("serves Claude Code's base URL without /v1 on the same face", async () => {
    const msg = await client('global', `${url}/vertex`).messages.create({
      model: 'claude-opus-5-5',
      max_tokens: 16,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(msg.content[0]?.type).toBe('text');
    expect(emu.billing.list()[0]?.provider).toBe('vertex');
  });

  it('accepts what Claude Code 2.1.328 sends with CLAUDE_CODE_USE_VERTEX=1 (no /v1, no model, beta header)', async () => {
    const res = await emu.fetch(
      new Request(
        `${url}/vertex/projects/my-project/locations/global/publishers/anthropic/models/claude-opus-5-5:streamRawPredict`,
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14',
          },
          body: JSON.stringify({
            anthropic_version: 'vertex-2023-10-16',
            max_tokens: 32000,
            stream: true,
            system: [{ type: 'text', text: 'You are Claude Code.', cache_control: { type: 'ephemeral' } }],
            messages: [
              { role: 'user', content: [{ type: 'text', text: 'Say hello [[emulator:text=Hello.]]' }] },
            ],
          }),
        },
      ),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const text = await res.text();
    expect(text).toContain('event: message_stop');
    expect(text).toContain('Hello.');
    expect(emu.billing.list()[0]).toMatchObject({
      provider: 'vertex',
      model: 'claude-opus-5-5',
      stream: true,
    });
  });

  it('refuses a body that carries model or lacks anthropic_version, as Vertex does', async () => {
    const post = (b: Record<string, unknown>) =>
      emu.fetch(
        new Request(
          `${url}/vertex/v1/projects/p/locations/global/publishers/anthropic/models/claude-opus-5-5:rawPredict`,
          {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ max_tokens: 8, messages: [{ role: 'user', content: 'hi' }], ...b }),
          },
        ),
      );
    const missing = await post({});
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({
      error: { code: 400, message: 'anthropic_version: Field required', status: 'INVALID_ARGUMENT' },
    });
    const extra = await post({ anthropic_version: 'vertex-2023-10-16', model: 'claude-opus-5-5' });
    expect(extra.status).toBe(400);
    expect(emu.billing.calls).toBe(0);
  });

  it("refuses a bad token with the SDK's AuthenticationError and Google's envelope, billing nothing", async () => {
    const { AuthenticationError } = await import('@anthropic-ai/sdk');
    const err = await client('global', undefined, 'not-a-token')
      .messages.create({
        model: 'claude-opus-5-5',
        max_tokens: 16,
        messages: [{ role: 'user', content: 'hi' }],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((err as { status: number }).status).toBe(401);
    expect((err as { error: unknown }).error).toMatchObject({
      error: { code: 401, status: 'UNAUTHENTICATED' },
    });
    expect(emu.billing.calls).toBe(0);
  });

  it('answers an unknown model with a Google NOT_FOUND envelope', async () => {
    const { NotFoundError } = await import('@anthropic-ai/sdk');
    const err = await client('global')
      .messages.create({
        model: 'claude-nonesuch-9',
        max_tokens: 16,
        messages: [{ role: 'user', content: 'hi' }],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as { error: unknown }).error).toMatchObject({ error: { code: 404, status: 'NOT_FOUND' } });
  });

  it('writes the day’s Vertex lines as a GCP billing export behind the control key', async () => {
    await client('global').messages.create({
      model: 'claude-haiku-5-5',
      max_tokens: 16,
      messages: [{ role: 'user', content: 'export me' }],
    });
    const day = new Date().toISOString().slice(0, 10);
    const denied = await fetch(`${url}/_emulator/exports/gcp-billing?day=${day}`);
    expect(denied.status).toBe(401);
    const res = await fetch(`${url}/_emulator/exports/gcp-billing?day=${day}`, {
      headers: { 'x-api-key': DEFAULT_ADMIN_KEY },
    });
    expect(res.headers.get('content-type')).toContain('text/csv');
    const csv = await res.text();
    expect(csv.split('\n')[0]).toContain('service.description,sku.id,sku.description,usage_start_time');
    expect(csv).toContain('Claude Haiku 5.5 Input Tokens');
  });
});
