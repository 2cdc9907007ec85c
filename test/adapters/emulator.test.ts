import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createEmulator,
  DEFAULT_ADMIN_KEY,
  type Emulator,
  type Listening,
} from '../../adapters/emulator/index.ts';

const MODEL = 'claude-haiku-4-5';
const TOOLS: Anthropic.Tool[] = [
  {
    name: 'get_weather',
    description: 'Current weather for a city',
    input_schema: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
    },
  },
];

let emu: Emulator;
let server: Listening;
let client: Anthropic;

beforeAll(async () => {
  emu = createEmulator();
  server = await emu.listen();
  client = new Anthropic({ baseURL: server.url, apiKey: 'sk-emulator-local', maxRetries: 0 });
});
afterAll(() => server.close());
beforeEach(() => {
  emu.script([]);
  emu.clearFaults();
  emu.resetCache();
  emu.billing.clear();
});

const ADMIN = { 'x-api-key': DEFAULT_ADMIN_KEY, 'anthropic-version': '2023-06-01' };
const post = (path: string, body: unknown, key = 'sk-emulator-local') =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify(body),
  });

describe('POST /v1/messages', () => {
  it('answers with a message echoing the resolved model id and a usage that adds up to count_tokens', async () => {
    const params = {
      model: MODEL,
      max_tokens: 100,
      messages: [{ role: 'user' as const, content: 'Plan the release notes' }],
    };
    const msg = await client.messages.create(params);
    expect(msg.model).toBe('claude-haiku-4-5-20251001');
    expect(msg.id).toMatch(/^msg_01/);
    expect(msg.content).toEqual([{ type: 'text', text: 'Emulated reply: Plan the release notes' }]);
    expect(msg.stop_reason).toBe('end_turn');
    const { input_tokens } = await client.messages.countTokens({ model: MODEL, messages: params.messages });
    expect(msg.usage.input_tokens + (msg.usage.cache_read_input_tokens ?? 0)).toBe(input_tokens);
    expect(msg.usage.output_tokens).toBeGreaterThan(0);
  });

  it('streams the same message and usage as the non-streamed call, with cumulative usage on message_delta', async () => {
    const params = {
      model: MODEL,
      max_tokens: 200,
      messages: [
        { role: 'user' as const, content: 'Summarise the incident timeline [[emulator:output_tokens=60]]' },
      ],
    };
    const plain = await client.messages.create(params);
    const stream = client.messages.stream(params);
    const types: string[] = [];
    let deltaUsage: Anthropic.MessageDeltaUsage | undefined;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'message_delta') deltaUsage = ev.usage;
    }
    const streamed = await stream.finalMessage();
    expect(streamed.usage).toEqual(plain.usage);
    expect(streamed.content).toEqual(plain.content);
    expect(plain.usage.output_tokens).toBe(60);
    expect(types[0]).toBe('message_start');
    expect(types.slice(-2)).toEqual(['message_delta', 'message_stop']);
    expect(types).toContain('content_block_delta');
    expect(deltaUsage).toMatchObject({ input_tokens: plain.usage.input_tokens, output_tokens: 60 });
  });

  it('streams tool_use blocks as input_json_delta fragments that reassemble to the input', async () => {
    const stream = client.messages.stream({
      model: MODEL,
      max_tokens: 300,
      tools: TOOLS,
      messages: [
        { role: 'user', content: '[[emulator:tool_use get_weather={"city":"Reykjavík","unit":"celsius"}]]' },
      ],
    });
    const fragments: string[] = [];
    stream.on('inputJson', (partial) => fragments.push(partial));
    const msg = await stream.finalMessage();
    expect(msg.stop_reason).toBe('tool_use');
    expect(msg.content[0]).toMatchObject({
      type: 'tool_use',
      name: 'get_weather',
      input: { city: 'Reykjavík', unit: 'celsius' },
    });
    expect(fragments.length).toBeGreaterThan(0);
  });

  it('counts tokens deterministically and never less for longer text', async () => {
    const count = async (content: string) =>
      (await client.messages.countTokens({ model: MODEL, messages: [{ role: 'user', content }] }))
        .input_tokens;
    expect(await count('Hello')).toBe(9);
    expect(await count('Hello')).toBe(9);
    expect(await count('Hello, world and more')).toBeGreaterThan(await count('Hello'));
    const withTools = await client.messages.countTokens({
      model: MODEL,
      tools: TOOLS,
      messages: [{ role: 'user', content: 'Hello' }],
    });
    expect(withTools.input_tokens).toBeGreaterThan(9);
  });

  it('truncates at max_tokens with stop_reason max_tokens', async () => {
    const msg = await client.messages.create({
      model: MODEL,
      max_tokens: 50,
      messages: [{ role: 'user', content: 'Write the long version [[emulator:output_tokens=500]]' }],
    });
    expect(msg.stop_reason).toBe('max_tokens');
    expect(msg.usage.output_tokens).toBe(50);
    expect((msg.content[0] as Anthropic.TextBlock).text.length).toBeLessThanOrEqual(200);
  });

  it('honours stop_sequences', async () => {
    const msg = await client.messages.create({
      model: MODEL,
      max_tokens: 100,
      stop_sequences: ['STOP'],
      messages: [{ role: 'user', content: '[[emulator:text=first part STOP second part]]' }],
    });
    expect(msg.stop_reason).toBe('stop_sequence');
    expect(msg.stop_sequence).toBe('STOP');
    expect(msg.content).toEqual([{ type: 'text', text: 'first part ' }]);
  });
});

describe('errors', () => {
  it('answers an unknown model with 404 not_found_error', async () => {
    const err = await client.messages
      .create({ model: 'claude-nonexistent-9', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.NotFoundError);
    expect(err.error).toMatchObject({
      type: 'error',
      error: { type: 'not_found_error', message: 'model: claude-nonexistent-9' },
    });
    expect(err.requestID).toMatch(/^req_/);
  });

  it('answers a wrong key with 401 authentication_error', async () => {
    const wrong = new Anthropic({ baseURL: server.url, apiKey: 'sk-wrong', maxRetries: 0 });
    const err = await wrong.messages
      .create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(err.status).toBe(401);
  });

  it('accepts Authorization: Bearer as well as x-api-key', async () => {
    const res = await fetch(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer sk-emulator-local',
        'content-type': 'application/json',
        'anthropic-version': '2023-06-01',
      },
      body: JSON.stringify({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('request-id')).toMatch(/^req_/);
  });

  it('requires the anthropic-version header, as the API does', async () => {
    const res = await fetch(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'sk-emulator-local', 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toBe('anthropic-version: header is required');
  });

  it('lists its models and resolves aliases', async () => {
    const page = await client.models.list();
    const ids = page.data.map((m) => m.id);
    expect(ids).toContain('claude-sonnet-4-6');
    expect(ids).toContain('claude-haiku-4-5-20251001');
    expect((await client.models.retrieve('claude-haiku-4-5')).id).toBe('claude-haiku-4-5-20251001');
    await expect(client.models.retrieve('claude-nope')).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });

  it.each([
    [{ max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }, 'model: Field required'],
    [{ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }, 'max_tokens: Field required'],
    [{ model: MODEL, max_tokens: 10 }, 'messages: Field required'],
    [
      { model: MODEL, max_tokens: 10, messages: [{ role: 'system', content: 'hi' }] },
      'messages.0.role: a system message cannot be the first message',
    ],
    [
      { model: MODEL, max_tokens: 64_001, messages: [{ role: 'user', content: 'hi' }] },
      'max_tokens: 64001 > 64000, which is the maximum allowed number of output tokens for claude-haiku-4-5-20251001',
    ],
  ])('refuses %j with a 400 naming the field', async (body, message) => {
    const res = await post('/v1/messages', body);
    expect(res.status).toBe(400);
    const json = await res.json();
    expect(json).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message } });
    expect(json.request_id).toMatch(/^req_/);
  });

  it('refuses a tool_result that answers no tool_use', async () => {
    const err = await client.messages
      .create({
        model: MODEL,
        max_tokens: 10,
        messages: [
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_x', content: 'done' }] },
        ],
      })
      .catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect(err.message).toContain('toolu_x');
  });

  it('fails the next call with an injected 529, then recovers; errors are not billed', async () => {
    emu.injectFault({ status: 529 });
    const params = { model: MODEL, max_tokens: 10, messages: [{ role: 'user' as const, content: 'hi' }] };
    const err = await client.messages.create(params).catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.InternalServerError);
    expect(err.status).toBe(529);
    expect(err.error.error.type).toBe('overloaded_error');
    expect(emu.billing.list()).toHaveLength(0);
    await client.messages.create(params);
    expect(emu.billing.list()).toHaveLength(1);
  });

  it('injects 429 rate_limit_error for `count` calls through the HTTP control endpoint', async () => {
    const res = await post('/_emulator/faults', { status: 429, count: 2 });
    expect(res.status).toBe(200);
    const params = { model: MODEL, max_tokens: 10, messages: [{ role: 'user' as const, content: 'hi' }] };
    for (let i = 0; i < 2; i++) {
      const err = await client.messages.create(params).catch((e) => e);
      expect(err).toBeInstanceOf(Anthropic.RateLimitError);
      expect(err.headers.get('retry-after')).toBe('1');
    }
    await expect(client.messages.create(params)).resolves.toMatchObject({ type: 'message' });
  });

  it('answers an error directive with that status', async () => {
    const err = await client.messages
      .create({
        model: MODEL,
        max_tokens: 10,
        messages: [{ role: 'user', content: 'hi [[emulator:error=500]]' }],
      })
      .catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.InternalServerError);
    expect(err.error.error.type).toBe('api_error');
  });

  it('fails mid-stream with an SSE error event after the 200, unbilled', async () => {
    const stream = client.messages.stream({
      model: MODEL,
      max_tokens: 500,
      messages: [
        { role: 'user', content: 'Go [[emulator:output_tokens=200]] [[emulator:stream_error=529]]' },
      ],
    });
    const types: string[] = [];
    stream.on('streamEvent', (ev) => types.push(ev.type));
    const err = await stream.finalMessage().catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect(err.message).toContain('overloaded_error');
    expect(types).toContain('content_block_delta');
    expect(types).not.toContain('message_delta');
    expect(emu.billing.list()).toHaveLength(0);
  });

  it('waits for injected latency', async () => {
    emu.injectFault({ latencyMs: 60 });
    const started = performance.now();
    await client.messages.create({
      model: MODEL,
      max_tokens: 10,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(performance.now() - started).toBeGreaterThanOrEqual(55);
  });
});

describe('scripted agents', () => {
  it('runs a tool round trip from directives: tool_use → tool_result → final text', async () => {
    const messages: Anthropic.MessageParam[] = [
      {
        role: 'user',
        content: 'Weather? [[emulator:tool_use get_weather={"city":"Paris","unit":"celsius"}]]',
      },
    ];
    const first = await client.messages.create({ model: MODEL, max_tokens: 200, tools: TOOLS, messages });
    expect(first.stop_reason).toBe('tool_use');
    const use = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use');
    expect(use).toMatchObject({ name: 'get_weather', input: { city: 'Paris', unit: 'celsius' } });
    expect(use?.id).toMatch(/^toolu_/);
    messages.push({ role: 'assistant', content: first.content });
    messages.push({
      role: 'user',
      content: [{ type: 'tool_result', tool_use_id: use!.id, content: '18°C and sunny' }],
    });
    const second = await client.messages.create({ model: MODEL, max_tokens: 200, tools: TOOLS, messages });
    expect(second.stop_reason).toBe('end_turn');
    expect(second.content).toEqual([
      { type: 'text', text: 'Emulated reply after tool result: 18°C and sunny' },
    ]);
    expect(emu.billing.list()).toHaveLength(2);
  });

  it('follows programmatic rules by turn and tool_result, first match wins', async () => {
    emu.script([
      {
        when: { turn: 1 },
        reply: {
          text: 'Checking.',
          toolUse: [{ name: 'get_weather', input: { city: 'Oslo', unit: 'celsius' } }],
        },
      },
      { when: { afterToolResult: true, lastUserText: '/rain/i' }, reply: { text: 'Take an umbrella.' } },
    ]);
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Do I need an umbrella?' }];
    const first = await client.messages.create({ model: MODEL, max_tokens: 200, tools: TOOLS, messages });
    expect(first.content.map((b) => b.type)).toEqual(['text', 'tool_use']);
    const use = first.content[1] as Anthropic.ToolUseBlock;
    messages.push({ role: 'assistant', content: first.content });
    messages.push({
      role: 'user',
      content: [{ type: 'tool_result', tool_use_id: use.id, content: 'Rain all day' }],
    });
    const second = await client.messages.create({ model: MODEL, max_tokens: 200, tools: TOOLS, messages });
    expect(second.content).toEqual([{ type: 'text', text: 'Take an umbrella.' }]);
  });

  it('takes rules as JSON on POST /_emulator/script', async () => {
    const res = await post('/_emulator/script', {
      rules: [{ when: { model: 'claude-haiku-4-5' }, reply: { text: 'From JSON', stopReason: 'end_turn' } }],
    });
    expect(await res.json()).toEqual({ rules: 1 });
    const msg = await client.messages.create({
      model: MODEL,
      max_tokens: 20,
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(msg.content).toEqual([{ type: 'text', text: 'From JSON' }]);
    const bad = await post('/_emulator/script', { rules: [{ reply: { stopReason: 'nope' } }] });
    expect(bad.status).toBe(400);
  });

  it('calls the tool named by tool_choice with an input built from its schema', async () => {
    const msg = await client.messages.create({
      model: MODEL,
      max_tokens: 200,
      tools: TOOLS,
      tool_choice: { type: 'tool', name: 'get_weather' },
      messages: [{ role: 'user', content: 'Anything' }],
    });
    expect(msg.stop_reason).toBe('tool_use');
    expect(msg.content).toEqual([
      {
        type: 'tool_use',
        id: expect.stringMatching(/^toolu_/),
        name: 'get_weather',
        input: { city: 'emulated-city', unit: 'celsius' },
      },
    ]);
  });
});

describe('billing', () => {
  it('bills a stream the client aborted for the output generated so far', async () => {
    const stream = client.messages.stream({
      model: MODEL,
      max_tokens: 1000,
      messages: [
        {
          role: 'user',
          content: 'Tell me everything [[emulator:output_tokens=800]] [[emulator:delta_delay=15]]',
        },
      ],
    });
    let deltas = 0;
    for await (const ev of stream) {
      if (ev.type === 'content_block_delta' && ++deltas === 3) break;
    }
    await expect.poll(() => emu.billing.list().length, { timeout: 3000 }).toBe(1);
    const [entry] = emu.billing.list();
    expect(entry!.aborted).toBe(true);
    expect(entry!.stream).toBe(true);
    expect(entry!.usage.output).toBeGreaterThan(0);
    expect(entry!.usage.output).toBeLessThan(800);
    expect(entry!.usage.input).toBeGreaterThan(0);
    expect(entry!.costMicros).toBeGreaterThan(0);
  });

  it('bills a paced stream read to the end once, in full', async () => {
    const stream = client.messages.stream({
      model: MODEL,
      max_tokens: 1000,
      messages: [
        { role: 'user', content: 'Slowly [[emulator:output_tokens=40]] [[emulator:delta_delay=2]]' },
      ],
    });
    const msg = await stream.finalMessage();
    expect(msg.usage.output_tokens).toBe(40);
    await expect.poll(() => emu.billing.list().length).toBe(1);
    expect(emu.billing.list()[0]).toMatchObject({ aborted: false, stream: true, usage: { output: 40 } });
  });

  it('reports daily costs in cents, by model and token type, summing exactly to the billing record', async () => {
    await client.messages.create({
      model: MODEL,
      max_tokens: 100,
      messages: [{ role: 'user', content: 'one [[emulator:output_tokens=37]]' }],
    });
    await client.messages.create({
      model: 'claude-sonnet-4-6',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'two' }],
    });
    await client.messages.create({
      model: 'claude-opus-4-6',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'three' }],
    });
    const today = new Date().toISOString().slice(0, 10);
    const res = await fetch(
      `${server.url}/v1/organizations/cost_report?starting_at=${today}T00:00:00Z&group_by[]=description`,
      { headers: ADMIN },
    );
    expect(res.status).toBe(200);
    const report = await res.json();
    const rows = report.data.flatMap((b: { results: unknown[] }) => b.results);
    expect(rows.length).toBeGreaterThanOrEqual(6);
    expect(rows[0]).toMatchObject({
      currency: 'USD',
      cost_type: 'tokens',
      service_tier: 'standard',
      context_window: '0-200k',
    });
    expect(new Set(rows.map((r: { token_type: string }) => r.token_type))).toEqual(
      new Set(['uncached_input_tokens', 'output_tokens']),
    );
    const micros = rows.reduce((sum: number, r: { amount: string }) => {
      expect(r.amount).toMatch(/^\d+\.\d+$/);
      const [whole, frac = ''] = r.amount.split('.');
      return sum + Number(whole) * 10_000 + Number(frac.padEnd(4, '0'));
    }, 0);
    expect(micros).toBe(emu.billing.total());
  });

  it('refuses the cost report without the admin key', async () => {
    const res = await fetch(`${server.url}/v1/organizations/cost_report?starting_at=2026-01-01T00:00:00Z`, {
      headers: { 'x-api-key': 'sk-emulator-local', 'anthropic-version': '2023-06-01' },
    });
    expect(res.status).toBe(401);
  });

  it('reports usage by model per day bucket and exposes the raw record', async () => {
    await client.messages.create({
      model: MODEL,
      max_tokens: 100,
      messages: [{ role: 'user', content: 'a' }],
    });
    await client.messages.create({
      model: MODEL,
      max_tokens: 100,
      messages: [{ role: 'user', content: 'b' }],
    });
    const today = new Date().toISOString().slice(0, 10);
    const res = await fetch(
      `${server.url}/v1/organizations/usage_report/messages?starting_at=${today}T00:00:00Z&group_by[]=model&bucket_width=1d`,
      { headers: ADMIN },
    );
    const report = await res.json();
    const [row] = report.data[0].results;
    const entries = emu.billing.list();
    expect(row).toMatchObject({
      model: 'claude-haiku-4-5-20251001',
      uncached_input_tokens: entries[0]!.usage.input + entries[1]!.usage.input,
      output_tokens: entries[0]!.usage.output + entries[1]!.usage.output,
      cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
    });
    const raw = await (
      await fetch(`${server.url}/_emulator/billing`, { headers: { 'x-api-key': 'sk-emulator-local' } })
    ).json();
    expect(raw.total_micros).toBe(emu.billing.total());
    expect(raw.entries).toHaveLength(2);
  });
});
