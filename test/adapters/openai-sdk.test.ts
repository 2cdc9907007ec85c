import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createEmulator,
  DEFAULT_API_KEY,
  type Emulator,
  type Listening,
} from '../../adapters/emulator/index.ts';
import { usageOfAnswer } from '../../adapters/openai/usage.ts';
import { OPENAI_PRICES } from '../../runtime/pricing/openai-prices.ts';
import { PriceTable } from '../../runtime/pricing/pricing.ts';

const NOW = Date.parse('2026-12-02T10:00:00Z');
const prices = new PriceTable(OPENAI_PRICES);
const LONG = 'You are a careful assistant. '.repeat(200); // ~1,450 tokens: cacheable

let emu: Emulator;
let server: Listening;
let client: OpenAI;

beforeAll(async () => {
  emu = createEmulator({ now: () => NOW });
  server = await emu.listen();
  client = new OpenAI({ baseURL: `${server.url}/openai/v1`, apiKey: DEFAULT_API_KEY, maxRetries: 0 });
});
afterAll(() => server.close());
beforeEach(() => {
  emu.script([]);
  emu.clearFaults();
  emu.resetCache();
  emu.billing.clear();
});

/** The one billed entry, checked against the runtime's price table. */
function billed() {
  const [e] = emu.billing.list();
  expect(emu.billing.list()).toHaveLength(1);
  expect(e!.provider).toBe('openai');
  const { input, cacheWrite5m, cacheWrite1h, cacheRead, output } = e!.usage;
  const uses = e!.webSearchRequests ? { serverTools: { webSearch: e!.webSearchRequests } } : {};
  expect(prices.cost(e!.model, { input, cacheWrite5m, cacheWrite1h, cacheRead, output, ...uses }, NOW)).toBe(
    e!.costMicros,
  );
  return e!;
}

describe('the official openai SDK against the emulator', () => {
  it('chat.completions.create answers with usage the bill matches, priced as the price table says', async () => {
    const r = await client.chat.completions.create({
      model: 'gpt-5.4',
      messages: [{ role: 'user', content: 'Say hello to the team' }],
    });
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0]!.message.content).toBe('Emulated reply: Say hello to the team');
    const e = billed();
    expect(usageOfAnswer(r).tokens).toEqual(e.usage);
    expect(r.usage!.prompt_tokens).toBe(e.usage.input);
  });

  it('streams chat completions with a final usage chunk only when include_usage is asked for', async () => {
    const withUsage = await client.chat.completions.create({
      model: 'gpt-5.4-mini',
      messages: [{ role: 'user', content: 'Stream a reply please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of withUsage) chunks.push(c);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage!.completion_tokens).toBe(billed().usage.output);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);

    emu.billing.clear();
    const plain = await client.chat.completions.create({
      model: 'gpt-5.4-mini',
      messages: [{ role: 'user', content: 'Stream a reply please' }],
      stream: true,
    });
    let text = '';
    let sawUsage = false;
    for await (const c of plain) {
      text += c.choices[0]?.delta.content ?? '';
      if ('usage' in c) sawUsage = true;
    }
    expect(text).toBe('Emulated reply: Stream a reply please');
    expect(sawUsage).toBe(false);
    billed();
  });

  it('answers n choices, tool calls, and cuts at max_completion_tokens with finish_reason length', async () => {
    const r = await client.chat.completions.create({
      model: 'gpt-5.4',
      n: 2,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
          },
        },
      ],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    expect(r.choices).toHaveLength(2);
    expect(r.choices[0]!.finish_reason).toBe('tool_calls');
    const call = r.choices[0]!.message.tool_calls![0]!;
    expect(call.type === 'function' && call.function.name).toBe('get_weather');
    expect(r.usage!.completion_tokens).toBe(billed().usage.output);

    emu.billing.clear();
    const cut = await client.chat.completions.create({
      model: 'gpt-5.4',
      max_completion_tokens: 3,
      messages: [{ role: 'user', content: 'Write a long story [[emulator:output_tokens=50]]' }],
    });
    expect(cut.choices[0]!.finish_reason).toBe('length');
    expect(cut.usage!.completion_tokens).toBe(3);
  });

  it('refuses the legacy max_tokens on a reasoning model, naming the parameter, and takes it on gpt-4o', async () => {
    const err = await client.chat.completions
      .create({ model: 'gpt-5.4', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.param).toBe('max_tokens');
    const ok = await client.chat.completions.create({
      model: 'gpt-4o',
      max_tokens: 2,
      messages: [{ role: 'user', content: 'say something long' }],
    });
    expect(ok.choices[0]!.finish_reason).toBe('length');
    expect(emu.billing.list()).toHaveLength(1);
  });

  it('responses.create answers a response whose usage is the bill, streamed or not', async () => {
    const r = await client.responses.create({ model: 'gpt-5.6-sol', input: 'Summarise the plan' });
    expect(r.output_text).toBe('Emulated reply: Summarise the plan');
    expect(usageOfAnswer(r).tokens).toEqual(billed().usage);

    emu.billing.clear();
    const stream = await client.responses.create({
      model: 'gpt-5.6-sol',
      input: 'Summarise the plan',
      stream: true,
    });
    const types: string[] = [];
    let done: OpenAI.Responses.Response | undefined;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'response.completed') done = ev.response;
    }
    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toBe('response.completed');
    expect(types).toContain('response.output_text.delta');
    expect(usageOfAnswer(done).tokens).toEqual(billed().usage);
  });

  it('bills each web search call of a response at $10 per 1,000', async () => {
    const r = await client.responses.create({
      model: 'gpt-5.4',
      tools: [{ type: 'web_search' }],
      input: 'Latest news [[emulator:web_search=2]]',
    });
    expect(r.output.filter((o) => o.type === 'web_search_call')).toHaveLength(2);
    expect(usageOfAnswer(r).serverTools).toEqual({ webSearch: 2 });
    expect(billed().webSearchMicros).toBe(20_000);
  });

  it('caches a repeated prefix: 128-token steps before GPT-5.6, billed writes and exact reads from GPT-5.6 on', async () => {
    const ask = (model: string, q: string) =>
      client.chat.completions.create({
        model,
        messages: [
          { role: 'system', content: LONG },
          { role: 'user', content: q },
        ],
      });
    await ask('gpt-5.4', 'first');
    const second = await ask('gpt-5.4', 'second');
    const cached = second.usage!.prompt_tokens_details!.cached_tokens!;
    expect(cached).toBeGreaterThanOrEqual(1024);
    expect((cached - 1024) % 128).toBe(0);

    emu.billing.clear();
    const first = await ask('gpt-5.6-terra', 'first');
    const written = (first.usage!.prompt_tokens_details as { cache_write_tokens?: number })
      .cache_write_tokens!;
    expect(written).toBeGreaterThan(1024);
    const again = await ask('gpt-5.6-terra', 'first');
    expect(again.usage!.prompt_tokens_details!.cached_tokens).toBe(written);
    const [w, rd] = emu.billing.list();
    expect(w!.usage.cacheWrite5m).toBe(written);
    expect(rd!.usage.cacheRead).toBe(written);
  });

  it('embeddings.create returns vectors of the model dimension and bills the input tokens', async () => {
    const r = await client.embeddings.create({
      model: 'text-embedding-3-small',
      input: ['alpha', 'beta gamma'],
    });
    expect(r.data).toHaveLength(2);
    expect(r.data[0]!.embedding).toHaveLength(1536);
    expect(billed().usage.input).toBe(r.usage.prompt_tokens);
  });

  it('models.list lists the catalogue', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(['gpt-6-astra', 'gpt-5.4', 'text-embedding-3-small']));
  });

  it('a bad key is the SDK AuthenticationError; an unknown model a NotFoundError; neither is billed', async () => {
    const bad = new OpenAI({ baseURL: `${server.url}/openai/v1`, apiKey: 'sk-wrong', maxRetries: 0 });
    await expect(bad.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const err = await client.chat.completions
      .create({ model: 'gpt-0', messages: [{ role: 'user', content: 'x' }] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err.code).toBe('model_not_found');
    expect(emu.billing.list()).toHaveLength(0);
  });

  it('answers an injected fault in the OpenAI envelope, which the SDK retries', async () => {
    emu.injectFault({ status: 503, count: 1 });
    const retrying = new OpenAI({
      baseURL: `${server.url}/openai/v1`,
      apiKey: DEFAULT_API_KEY,
      maxRetries: 1,
    });
    const r = await retrying.chat.completions.create({
      model: 'gpt-5.4-nano',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(r.choices).toHaveLength(1);
    expect(emu.billing.list()).toHaveLength(1);
  });
});
