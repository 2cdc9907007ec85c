import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator, type Listening } from '../../adapters/emulator/index.ts';

const TODAY = Date.parse('2026-12-02T12:00:00Z');
let emu: Emulator;
let server: Listening;

beforeAll(async () => {
  emu = createEmulator({ now: () => TODAY });
  server = await emu.listen();
});
afterAll(() => server.close());
beforeEach(() => {
  emu.billing.clear();
  emu.resetCache();
});

const post = async (body: Record<string, unknown>, headers: Record<string, string> = {}) => {
  const res = await fetch(`${server.url}/v1/messages`, {
    method: 'POST',
    headers: {
      'x-api-key': 'sk-emulator-local',
      'content-type': 'application/json',
      'anthropic-version': '2023-06-01',
      ...headers,
    },
    body: JSON.stringify({ max_tokens: 200, ...body }),
  });
  return { status: res.status, json: await res.json() };
};
const hi = [{ role: 'user', content: 'hi' }];
const message = (model: string, extra: Record<string, unknown> = {}) =>
  post({ model, messages: hi, ...extra });
const refusal = async (p: Promise<{ status: number; json: { error?: { message: string } } }>) => {
  const r = await p;
  expect(r.status).toBe(400);
  return r.json.error?.message ?? '';
};

describe('mid-conversation system messages', () => {
  const conversation = [
    { role: 'user', content: 'Review utils.py' },
    { role: 'assistant', content: 'Looks fine.' },
    { role: 'user', content: 'Now the caller' },
    { role: 'system', content: 'From now on, every suggestion must include explicit type annotations.' },
  ];

  it('accepts them on Opus 4.8+, Opus 5/5.5, Fable/Mythos 5+, Sonnet 5.5, Haiku 5.5 and counts their text as input', async () => {
    for (const model of [
      'claude-opus-4-8',
      'claude-opus-5',
      'claude-opus-5-5',
      'claude-fable-5-2',
      'claude-mythos-5',
      'claude-sonnet-5-5',
      'claude-haiku-5-5',
    ]) {
      const r = await post({ model, messages: conversation });
      expect(r.status, model).toBe(200);
    }
    const without = await post({ model: 'claude-opus-5-5', messages: conversation.slice(0, 3) });
    const withSystem = await post({ model: 'claude-opus-5-5', messages: conversation });
    expect(withSystem.json.usage.input_tokens).toBeGreaterThan(without.json.usage.input_tokens + 10);
  });

  it('refuses them with a 400 naming messages.N.role on older models and Sonnet 5', async () => {
    for (const model of [
      'claude-opus-4-7',
      'claude-opus-4-5',
      'claude-sonnet-5',
      'claude-sonnet-4-6',
      'claude-haiku-4-5',
    ]) {
      expect(await refusal(post({ model, messages: conversation }))).toBe(
        "messages.3.role: role 'system' is not supported on this model",
      );
    }
  });

  it('enforces placement: not first, after a user turn, never two in a row', async () => {
    const model = 'claude-opus-5-5';
    expect(await refusal(post({ model, messages: [{ role: 'system', content: 'x' }, ...hi] }))).toMatch(
      /^messages\.0\.role: .*first/,
    );
    expect(
      await refusal(
        post({
          model,
          messages: [...hi, { role: 'system', content: 'a' }, { role: 'system', content: 'b' }],
        }),
      ),
    ).toMatch(/^messages\.2\.role: consecutive/);
    expect(
      await refusal(post({ model, messages: [...hi, { role: 'system', content: 'a' }, ...hi] })),
    ).toMatch(/^messages\.1\.role/);
    expect(await refusal(post({ model, messages: [{ role: 'tool', content: 'x' }] }))).toBe(
      "messages.0.role: Input should be 'user', 'assistant' or 'system'",
    );
  });
});

describe('price modifiers: speed, inference_geo, service_tier', () => {
  it('serves fast mode at 2× on the models that offer it and reports usage.speed', async () => {
    const std = await message('claude-opus-5-5');
    const fast = await message('claude-opus-5-5', { speed: 'fast' });
    expect(std.json.usage).toMatchObject({
      speed: 'standard',
      service_tier: 'standard',
      inference_geo: 'global',
    });
    expect(fast.json.usage.speed).toBe('fast');
    const [a, b] = emu.billing.list();
    expect(b!.costMicros).toBe(Math.ceil(((b!.usage.input * 4 + b!.usage.output * 20) * 2 * 1e6) / 1e6));
    expect(a!.speed).toBe('standard');
    expect(b!.speed).toBe('fast');
    expect((await message('claude-fable-5-2', { speed: 'fast' })).status).toBe(200);
    expect((await message('claude-mythos-5-2', { speed: 'fast' })).status).toBe(200);
  });

  it('refuses fast mode where the API does (no support, removed, missing research-preview beta)', async () => {
    expect(await refusal(message('claude-sonnet-5-5', { speed: 'fast' }))).toMatch(
      /^speed: fast mode is not supported/,
    );
    expect(await refusal(message('claude-opus-4-8', { speed: 'fast' }))).toMatch(/no longer available/);
    expect(await refusal(message('claude-opus-5', { speed: 'fast' }))).toMatch(/fast-mode-2026-02-01/);
    const ok = await post(
      { model: 'claude-opus-5', messages: hi, speed: 'fast' },
      { 'anthropic-beta': 'fast-mode-2026-02-01' },
    );
    expect(ok.json.usage.speed).toBe('fast');
    // Opus 4.6: fast mode removed 2026-06-29, the request runs at standard speed without an error.
    expect((await message('claude-opus-4-6', { speed: 'fast' })).json.usage.speed).toBe('standard');
  });

  it('bills inference_geo "us" at 1.1× and refuses it before 4.6', async () => {
    const us = await message('claude-sonnet-4-6', { inference_geo: 'us' });
    expect(us.json.usage.inference_geo).toBe('us');
    const entry = emu.billing.list().at(-1)!;
    expect(entry.inferenceGeo).toBe('us');
    expect(entry.costMicros).toBe(Math.ceil((entry.usage.input * 3 + entry.usage.output * 15) * 1.1 - 1e-9));
    expect(await refusal(message('claude-haiku-4-5', { inference_geo: 'us' }))).toMatch(/^inference_geo/);
    expect(await refusal(message('claude-opus-5-5', { inference_geo: 'eu' }))).toMatch(/^inference_geo/);
    expect((await message('claude-haiku-4-5')).json.usage.inference_geo).toBeNull();
  });
});

describe('thinking, effort and sampling', () => {
  it('starts the reply with a signed thinking block whose tokens are output tokens', async () => {
    const r = await post({
      model: 'claude-opus-5-5',
      messages: [
        { role: 'user', content: 'Plan a trip [[emulator:thinking_tokens=50]] [[emulator:text=Done.]]' },
      ],
      thinking: { type: 'adaptive', display: 'summarized' },
      output_config: { effort: 'xhigh' },
    });
    expect(r.status).toBe(200);
    const [thinking, text] = r.json.content;
    expect(thinking.type).toBe('thinking');
    expect(thinking.signature).toMatch(/^[A-Za-z0-9+/=]{20,}$/);
    expect(thinking.thinking).toContain('Plan a trip');
    expect(text).toEqual({ type: 'text', text: 'Done.' });
    expect(r.json.usage.output_tokens).toBe(50 + 2);
    expect(r.json.usage.output_tokens_details).toEqual({ thinking_tokens: 50 });
    expect(emu.billing.list().at(-1)!.usage.output).toBe(52);
  });

  it('omits the thinking text with display "omitted" but still bills it', async () => {
    const r = await post({
      model: 'claude-haiku-5-5',
      messages: [{ role: 'user', content: 'x [[emulator:thinking_tokens=30]] [[emulator:text=ok]]' }],
      thinking: { type: 'adaptive', display: 'omitted' },
    });
    expect(r.json.content[0]).toMatchObject({ type: 'thinking', thinking: '' });
    expect(r.json.usage.output_tokens).toBe(31);
  });

  it('streams thinking_delta and signature_delta events and the same usage', async () => {
    const client = new Anthropic({ baseURL: server.url, apiKey: 'sk-emulator-local', maxRetries: 0 });
    const params = {
      model: 'claude-fable-5-2',
      max_tokens: 300,
      messages: [{ role: 'user' as const, content: 'Stream it [[emulator:thinking_tokens=40]]' }],
      thinking: { type: 'adaptive' as const },
    };
    const kinds: string[] = [];
    const stream = client.messages.stream(params);
    stream.on('streamEvent', (e) => {
      if (e.type === 'content_block_delta') kinds.push(e.delta.type);
    });
    const msg = await stream.finalMessage();
    expect(kinds).toContain('thinking_delta');
    expect(kinds).toContain('signature_delta');
    expect(msg.content[0]).toMatchObject({ type: 'thinking' });
    const plain = await client.messages.create(params);
    expect(msg.usage.output_tokens).toBe(plain.usage.output_tokens);
    expect((msg.content[0] as { signature: string }).signature).toBe(
      (plain.content[0] as { signature: string }).signature,
    );
  });

  it('refuses budget thinking on 4.7+/5.x, disabled thinking where it is always on, and bad effort', async () => {
    const enabled = { type: 'enabled', budget_tokens: 1024 };
    expect(
      await refusal(post({ model: 'claude-opus-4-7', messages: hi, max_tokens: 2000, thinking: enabled })),
    ).toMatch(/thinking\.type\.enabled/);
    expect(
      await refusal(post({ model: 'claude-sonnet-5', messages: hi, max_tokens: 2000, thinking: enabled })),
    ).toMatch(/thinking\.type\.enabled/);
    expect(
      (await post({ model: 'claude-opus-4-6', messages: hi, max_tokens: 2000, thinking: enabled })).status,
    ).toBe(200);
    for (const model of ['claude-fable-5-1', 'claude-opus-5-5']) {
      expect(await refusal(message(model, { thinking: { type: 'disabled' } }))).toMatch(/always on/);
    }
    expect((await message('claude-sonnet-5', { thinking: { type: 'disabled' } })).status).toBe(200);
    expect(
      await refusal(
        message('claude-opus-5', { thinking: { type: 'disabled' }, output_config: { effort: 'max' } }),
      ),
    ).toMatch(/effort/);
    expect(await refusal(message('claude-opus-5-5', { output_config: { effort: 'extreme' } }))).toMatch(
      /^output_config\.effort/,
    );
  });

  it('refuses non-default temperature/top_p/top_k on 4.7+ and 5.x, not before', async () => {
    expect(await refusal(message('claude-opus-4-7', { temperature: 0.5 }))).toBe(
      '`temperature` is deprecated for this model.',
    );
    expect(await refusal(message('claude-haiku-5-5', { top_k: 5 }))).toBe(
      '`top_k` is deprecated for this model.',
    );
    expect((await message('claude-opus-5-5', { temperature: 1 })).status).toBe(200);
    expect((await message('claude-sonnet-4-6', { temperature: 0.2 })).status).toBe(200);
  });
});

describe('context management and deferred tools', () => {
  it('accepts context_management and reports applied_edits', async () => {
    const r = await message('claude-opus-5-5', {
      context_management: { edits: [{ type: 'clear_tool_uses_20250919' }] },
    });
    expect(r.json.context_management).toEqual({ applied_edits: [] });
    expect((await message('claude-opus-5-5')).json.context_management).toBeUndefined();
  });

  it('accepts defer_loading tools, which add no input tokens until loaded', async () => {
    const tool = { name: 'lookup', description: 'Look something up', input_schema: { type: 'object' } };
    const plain = await message('claude-opus-5-5');
    const deferred = await message('claude-opus-5-5', { tools: [{ ...tool, defer_loading: true }] });
    const loaded = await message('claude-opus-5-5', { tools: [tool] });
    expect(deferred.status).toBe(200);
    expect(deferred.json.usage.input_tokens).toBe(plain.json.usage.input_tokens);
    expect(loaded.json.usage.input_tokens).toBeGreaterThan(plain.json.usage.input_tokens);
  });
});
