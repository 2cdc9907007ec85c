import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEmulator, DEFAULT_API_KEY } from '../../../adapters/emulator/index.ts';
import { type StandIn, startStandIn } from './openai-stand-in.ts';

/**
 * The translators under test, driven by the real `openai` SDK through a stand-in face to the
 * emulator (the Anthropic API on loopback): what an OpenAI-format client sees of a Claude model.
 */
const MODEL = 'claude-sonnet-5-5';
const PNG =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

let emu: ReturnType<typeof createEmulator>;
let closeEmu: () => Promise<void>;
let emuUrl: string;
let face: StandIn;
let client: OpenAI;

beforeAll(async () => {
  emu = createEmulator();
  const listening = await emu.listen();
  closeEmu = listening.close;
  emuUrl = listening.url;
  face = await startStandIn(listening.url, DEFAULT_API_KEY);
  client = new OpenAI({ baseURL: face.url, apiKey: 'cp_test', maxRetries: 0 });
});

afterAll(async () => {
  await face.close();
  await closeEmu();
});

beforeEach(() => {
  emu.script([]);
  face.sent.length = 0;
});

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

describe('chat completions for a Claude model, through the openai SDK', () => {
  it('answers a chat.completion with the text, the model as asked, stop, and usage that counts every input token', async () => {
    emu.script([{ reply: { text: 'Bonjour from Claude' } }]);
    const out = await client.chat.completions.create({
      model: MODEL,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'developer', content: 'Answer in French.' },
        { role: 'user', content: 'Say hello' },
      ],
      max_completion_tokens: 200,
    });
    expect(out.object).toBe('chat.completion');
    expect(out.model).toBe(MODEL);
    expect(out.choices[0]!.message.content).toBe('Bonjour from Claude');
    expect(out.choices[0]!.finish_reason).toBe('stop');
    const billed = emu.billing.list().at(-1)!;
    const u = billed.usage;
    expect(out.usage!.prompt_tokens).toBe(u.input + u.cacheRead + u.cacheWrite5m + u.cacheWrite1h);
    expect(out.usage!.completion_tokens).toBe(u.output);
    expect(face.sent[0]!.system).toEqual([
      { type: 'text', text: 'Be brief.' },
      { type: 'text', text: 'Answer in French.' },
    ]);
    expect(face.sent[0]!.max_tokens).toBe(200);
  });

  it('turns a scripted tool_use into tool_calls the SDK parses, with finish_reason tool_calls', async () => {
    emu.script([{ reply: { toolUse: [{ name: 'get_weather', input: { city: 'Paris' }, id: 'toolu_1' }] } }]);
    const out = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [weatherTool],
      tool_choice: 'required',
    });
    const call = out.choices[0]!.message.tool_calls![0]!;
    expect(out.choices[0]!.finish_reason).toBe('tool_calls');
    expect(call.type === 'function' && call.function.name).toBe('get_weather');
    expect(call.type === 'function' && JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' });
    expect(call.id).toBe('toolu_1');
    expect(face.sent[0]!.tool_choice).toEqual({ type: 'any' });
    expect(face.sent[0]!.tools).toEqual([
      {
        name: 'get_weather',
        description: 'Weather for a city',
        input_schema: weatherTool.function.parameters,
      },
    ]);
  });

  it('sends a follow-up turn with tool messages as tool_result blocks merged into one user turn', async () => {
    const out = await client.chat.completions.create({
      model: MODEL,
      tools: [weatherTool],
      messages: [
        { role: 'user', content: 'Weather in Paris and Rome?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'toolu_a',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
            },
            {
              id: 'toolu_b',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"city":"Rome"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'toolu_a', content: 'sunny' },
        { role: 'tool', tool_call_id: 'toolu_b', content: 'rainy' },
      ],
    });
    expect(out.choices[0]!.message.content).toMatch(/^Emulated reply after tool result/);
    const sent = face.sent[0]!.messages as Array<{ role: string; content: unknown }>;
    expect(sent.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(sent[1]!.content).toEqual([
      { type: 'tool_use', id: 'toolu_a', name: 'get_weather', input: { city: 'Paris' } },
      { type: 'tool_use', id: 'toolu_b', name: 'get_weather', input: { city: 'Rome' } },
    ]);
    expect(sent[2]!.content).toEqual([
      { type: 'tool_result', tool_use_id: 'toolu_a', content: 'sunny' },
      { type: 'tool_result', tool_use_id: 'toolu_b', content: 'rainy' },
    ]);
  });

  it('streams content pieces that add up to the whole answer, and the usage chunk only when include_usage is asked', async () => {
    const text = 'A long enough streamed answer to span several text deltas of the emulator.';
    emu.script([{ reply: { text } }]);
    const withUsage = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Stream please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of withUsage) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(text);
    expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBeGreaterThan(1);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage!.completion_tokens).toBe(emu.billing.list().at(-1)!.usage.output);
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('stop');

    const without = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Stream please' }],
      stream: true,
    });
    const plain = [];
    for await (const c of without) plain.push(c);
    expect(plain.every((c) => c.usage === undefined && c.choices.length === 1)).toBe(true);
    expect(plain.at(-1)!.choices[0]!.finish_reason).toBe('stop');
  });

  it('streams tool calls the SDK accumulates into a final completion with parsed arguments', async () => {
    const input = { city: 'San Francisco, California, United States of America' };
    emu.script([{ reply: { toolUse: [{ name: 'get_weather', input }] } }]);
    const stream = client.chat.completions.stream({
      model: MODEL,
      messages: [{ role: 'user', content: 'Weather?' }],
      tools: [weatherTool],
    });
    const final = await stream.finalChatCompletion();
    const call = final.choices[0]!.message.tool_calls![0]!;
    expect(final.choices[0]!.finish_reason).toBe('tool_calls');
    expect(call.type === 'function' && JSON.parse(call.function.arguments)).toEqual(input);
  });

  it('sends images as base64 image blocks (data: URLs) and url image sources (https URLs)', async () => {
    const out = await client.chat.completions.create({
      model: MODEL,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in these?' },
            { type: 'image_url', image_url: { url: PNG } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg', detail: 'high' } },
          ],
        },
      ],
    });
    expect(out.choices[0]!.message.content).toMatch(/^Emulated reply/);
    const content = (face.sent[0]!.messages as Array<{ content: unknown[] }>)[0]!.content;
    expect(content[1]).toEqual({
      type: 'image',
      source: { type: 'base64', media_type: 'image/png', data: PNG.split(',')[1] },
    });
    expect(content[2]).toEqual({
      type: 'image',
      source: { type: 'url', url: 'https://example.com/cat.jpg' },
    });
  });
});

describe('responses for a Claude model, through the openai SDK', () => {
  it('answers a response with output_text, instructions hoisted into system, and usage', async () => {
    emu.script([{ reply: { text: 'Hello from the responses face' } }]);
    const out = await client.responses.create({
      model: MODEL,
      instructions: 'Be brief.',
      input: 'Say hello',
      max_output_tokens: 300,
    });
    expect(out.object).toBe('response');
    expect(out.status).toBe('completed');
    expect(out.output_text).toBe('Hello from the responses face');
    expect(out.usage!.output_tokens).toBe(emu.billing.list().at(-1)!.usage.output);
    expect(face.sent[0]!.system).toEqual([{ type: 'text', text: 'Be brief.' }]);
    expect(face.sent[0]!.max_tokens).toBe(300);
  });

  it('answers a function_call item and takes its function_call_output back as a tool_result', async () => {
    emu.script([
      { when: { turn: 1 }, reply: { toolUse: [{ name: 'get_weather', input: { city: 'Oslo' } }] } },
    ]);
    const tools = [{ type: 'function' as const, ...weatherTool.function, strict: false }];
    const first = await client.responses.create({ model: MODEL, input: 'Weather in Oslo?', tools });
    const call = first.output.find((o) => o.type === 'function_call')!;
    expect(call.type === 'function_call' && JSON.parse(call.arguments)).toEqual({ city: 'Oslo' });
    const callId = call.type === 'function_call' ? call.call_id : '';
    const second = await client.responses.create({
      model: MODEL,
      tools,
      input: [
        { role: 'user', content: 'Weather in Oslo?' },
        call,
        { type: 'function_call_output', call_id: callId, output: 'snow' },
      ],
    });
    expect(second.output_text).toMatch(/^Emulated reply after tool result/);
    const sent = face.sent[1]!.messages as Array<{ role: string; content: unknown[] }>;
    expect(sent[2]!.content).toEqual([{ type: 'tool_result', tool_use_id: callId, content: 'snow' }]);
  });

  it('streams typed events through response.completed that the SDK accumulates into the final response', async () => {
    const text = 'Streaming through the responses API, in more than one delta.';
    emu.script([{ reply: { text, toolUse: [{ name: 'get_weather', input: { city: 'Lima' } }] } }]);
    const stream = client.responses.stream({
      model: MODEL,
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'Go' }] }],
      tools: [{ type: 'function', ...weatherTool.function, strict: false }],
    });
    const types: string[] = [];
    stream.on('event', (e) => types.push(e.type));
    const final = await stream.finalResponse();
    expect(final.output_text).toBe(text);
    const call = final.output.find((o) => o.type === 'function_call');
    expect(call?.type === 'function_call' && JSON.parse(call.arguments)).toEqual({ city: 'Lima' });
    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toBe('response.completed');
    expect(types).toContain('response.output_text.delta');
    expect(types).toContain('response.function_call_arguments.done');
    expect(final.usage!.output_tokens).toBe(emu.billing.list().at(-1)!.usage.output);
  });
});

describe('cache breakpoints where the runtime owns the prefix', () => {
  it('marks the system prompt and tools, so the second call with the same prefix reads it from the cache', async () => {
    const cached = await startStandIn(emuUrl, DEFAULT_API_KEY, {
      cachePrefix: true,
    });
    try {
      const c = new OpenAI({ baseURL: cached.url, apiKey: 'cp_test', maxRetries: 0 });
      const system = `You are a careful assistant. ${'Follow the house rules exactly. '.repeat(1200)}`;
      const ask = (q: string) =>
        c.chat.completions.create({
          model: MODEL,
          tools: [weatherTool],
          messages: [
            { role: 'system', content: system },
            { role: 'user', content: q },
          ],
        });
      const first = await ask('first question');
      const second = await ask('second question');
      expect(cached.sent[0]!.system).toEqual([
        { type: 'text', text: system, cache_control: { type: 'ephemeral' } },
      ]);
      expect((cached.sent[0]!.tools as Array<Record<string, unknown>>)[0]!.cache_control).toEqual({
        type: 'ephemeral',
      });
      expect(first.usage!.prompt_tokens_details!.cached_tokens).toBe(0);
      expect(second.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThan(8000);
      expect(second.usage!.prompt_tokens).toBe(first.usage!.prompt_tokens);
    } finally {
      await cached.close();
    }
  });
});

describe('errors reach the openai SDK as its typed errors', () => {
  const ask = (text: string) =>
    client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }] });

  it('an emulator 400 is a BadRequestError', async () => {
    await expect(ask('[[emulator:error=400]]')).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('an emulator 429 is a RateLimitError', async () => {
    const err = await ask('[[emulator:error=429]]').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).type).toBe('rate_limit_error');
  });

  it('an emulator 529 (overloaded) is an InternalServerError with status 503', async () => {
    const err = await ask('[[emulator:error=529]]').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as InstanceType<typeof OpenAI.InternalServerError>).status).toBe(503);
    expect((err as InstanceType<typeof OpenAI.InternalServerError>).code).toBe('overloaded');
  });

  it('a request Claude cannot honour (n = 2) is a BadRequestError naming n', async () => {
    const err = await client.chat.completions
      .create({ model: MODEL, n: 2, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('n');
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('invalid_request');
  });

  it('a mid-stream error event is raised by the SDK while iterating', async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'a long story please [[emulator:stream_error=529]]' }],
      stream: true,
    });
    const read = async () => {
      for await (const _ of stream) {
        // drain until the error
      }
    };
    await expect(read()).rejects.toThrow(/Overloaded/);
  });
});
