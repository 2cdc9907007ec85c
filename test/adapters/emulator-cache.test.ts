import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createEmulator,
  type Emulator,
  type Listening,
  type TokenUsage,
} from '../../adapters/emulator/index.ts';

// Sonnet 4.6 caches prefixes of 2,048 tokens or more; 12,000 ASCII characters is 3,000 tokens.
const MODEL = 'claude-sonnet-4-6';
const LONG = `You are the release assistant. ${'Follow the runbook carefully and cite the step you used. '.repeat(210)}`;
const T0 = Date.parse('2026-05-04T09:00:00Z');

let clock = T0;
let emu: Emulator;
let server: Listening;
let client: Anthropic;

beforeAll(async () => {
  emu = createEmulator({ now: () => clock });
  server = await emu.listen();
  client = new Anthropic({ baseURL: server.url, apiKey: 'sk-emulator-local', maxRetries: 0 });
});
afterAll(() => server.close());
beforeEach(() => {
  clock = T0;
  emu.resetCache();
  emu.billing.clear();
});

type Ttl = '5m' | '1h';
const system = (text: string, ttl?: Ttl): Anthropic.TextBlockParam[] => [
  { type: 'text', text, cache_control: ttl ? { type: 'ephemeral', ttl } : { type: 'ephemeral' } },
];
const ask = (params: Partial<Anthropic.MessageCreateParamsNonStreaming>) =>
  client.messages.create({
    model: MODEL,
    max_tokens: 64,
    system: system(LONG),
    messages: [{ role: 'user', content: 'What is step 3?' }],
    ...params,
  });
const minutes = (n: number) => n * 60_000;

describe('prompt caching', () => {
  it('writes the prefix on the first call and reads it on the second identical call', async () => {
    const first = await ask({});
    const prefix = first.usage.cache_creation_input_tokens!;
    expect(prefix).toBeGreaterThan(2048);
    expect(first.usage.cache_read_input_tokens).toBe(0);
    expect(first.usage.cache_creation).toEqual({
      ephemeral_5m_input_tokens: prefix,
      ephemeral_1h_input_tokens: 0,
    });
    const second = await ask({});
    expect(second.usage.cache_read_input_tokens).toBe(prefix);
    expect(second.usage.cache_creation_input_tokens).toBe(0);
    expect(second.usage.input_tokens).toBe(first.usage.input_tokens);
    const { input_tokens: total } = await client.messages.countTokens({
      model: MODEL,
      system: system(LONG),
      messages: [{ role: 'user', content: 'What is step 3?' }],
    });
    expect(second.usage.input_tokens + prefix).toBe(total);
  });

  it('misses after a timestamp is inserted at the top of the system prompt', async () => {
    await ask({});
    const stamped = await ask({ system: system(`Current time: ${new Date(clock).toISOString()}\n${LONG}`) });
    expect(stamped.usage.cache_read_input_tokens).toBe(0);
    expect(stamped.usage.cache_creation_input_tokens).toBeGreaterThan(2048);
  });

  it('expires a 5m entry after five idle minutes, and refreshes it on every hit', async () => {
    await ask({});
    clock += minutes(4);
    expect((await ask({})).usage.cache_read_input_tokens).toBeGreaterThan(0);
    clock += minutes(4); // 8 minutes after the write, 4 after the refreshing hit
    expect((await ask({})).usage.cache_read_input_tokens).toBeGreaterThan(0);
    clock += minutes(5) + 1;
    const expired = await ask({});
    expect(expired.usage.cache_read_input_tokens).toBe(0);
    expect(expired.usage.cache_creation_input_tokens).toBeGreaterThan(0);
  });

  it('keeps a 1h entry past five minutes and bills its write as ephemeral_1h', async () => {
    const first = await ask({ system: system(LONG, '1h') });
    expect(first.usage.cache_creation).toEqual({
      ephemeral_5m_input_tokens: 0,
      ephemeral_1h_input_tokens: first.usage.cache_creation_input_tokens,
    });
    clock += minutes(50);
    expect((await ask({ system: system(LONG, '1h') })).usage.cache_read_input_tokens).toBeGreaterThan(0);
    clock += minutes(61);
    expect((await ask({ system: system(LONG, '1h') })).usage.cache_read_input_tokens).toBe(0);
  });

  it('splits mixed TTLs into 1h writes up to the 1h breakpoint and 5m writes after it', async () => {
    const tools: Anthropic.Tool[] = [
      {
        name: 'lookup',
        description: 'x'.repeat(9000),
        input_schema: { type: 'object', properties: {} },
        cache_control: { type: 'ephemeral', ttl: '1h' },
      },
    ];
    const msg = await ask({ tools, system: system(LONG, '5m') });
    const { ephemeral_1h_input_tokens: h1, ephemeral_5m_input_tokens: m5 } = msg.usage.cache_creation!;
    expect(h1).toBeGreaterThan(2048);
    expect(m5).toBeGreaterThan(2048);
    expect(msg.usage.cache_creation_input_tokens).toBe(h1 + m5);
  });

  it('lets a breakpoint moving along a growing conversation hit the previous turn', async () => {
    const messages: Anthropic.MessageParam[] = [];
    const turn = async (text: string) => {
      // History carries no markers; only the newest user block does, so the breakpoint moves each turn.
      const marked: Anthropic.MessageParam[] = [
        ...messages,
        { role: 'user', content: [{ type: 'text', text, cache_control: { type: 'ephemeral' } }] },
      ];
      const msg = await client.messages.create({
        model: MODEL,
        max_tokens: 64,
        system: LONG,
        messages: marked,
      });
      messages.push(
        { role: 'user', content: [{ type: 'text', text }] },
        { role: 'assistant', content: msg.content },
      );
      return msg.usage;
    };
    const one = await turn('First question about the runbook');
    expect(one.cache_creation_input_tokens).toBeGreaterThan(2048);
    const two = await turn('Second question');
    expect(two.cache_read_input_tokens).toBe(one.cache_creation_input_tokens);
    expect(two.cache_creation_input_tokens).toBeGreaterThan(0);
    const three = await turn('Third question');
    expect(three.cache_read_input_tokens).toBe(
      two.cache_read_input_tokens! + two.cache_creation_input_tokens!,
    );
  });

  it('places the breakpoint on the last block itself with top-level (automatic) cache_control', async () => {
    const history: Anthropic.MessageParam[] = [{ role: 'user', content: 'First question' }];
    const auto = (messages: Anthropic.MessageParam[]) =>
      client.messages.create({
        model: MODEL,
        max_tokens: 32,
        system: LONG,
        messages,
        cache_control: { type: 'ephemeral' },
      } as Anthropic.MessageCreateParamsNonStreaming);
    const one = await auto(history);
    expect(one.usage.cache_creation_input_tokens).toBeGreaterThan(2048);
    history.push({ role: 'assistant', content: one.content }, { role: 'user', content: 'Second question' });
    const two = await auto(history);
    expect(two.usage.cache_read_input_tokens).toBe(one.usage.cache_creation_input_tokens);
  });

  it('misses when the previous breakpoint is more than 20 blocks back', async () => {
    const block = (i: number): Anthropic.TextBlockParam => ({ type: 'text', text: `note ${i}` });
    const history = Array.from({ length: 30 }, (_, i) => block(i));
    const at = (n: number) =>
      client.messages.create({
        model: MODEL,
        max_tokens: 16,
        system: LONG,
        messages: [
          {
            role: 'user',
            content: history
              .slice(0, n)
              .map((b, i) => (i === n - 1 ? { ...b, cache_control: { type: 'ephemeral' } } : b)),
          },
        ],
      });
    await at(5);
    expect((await at(25)).usage.cache_read_input_tokens).toBeGreaterThan(0); // 20 blocks later: in the lookback
    emu.resetCache();
    await at(4);
    expect((await at(25)).usage.cache_read_input_tokens).toBe(0); // 21 blocks later: out of it
  });

  it('does not cache a prefix shorter than the model minimum', async () => {
    const msg = await ask({ system: system('Short system prompt.') });
    expect(msg.usage.cache_creation_input_tokens).toBe(0);
    expect((await ask({ system: system('Short system prompt.') })).usage.cache_read_input_tokens).toBe(0);
  });

  it('invalidates everything when the tools or the model change, but only system onward when system changes', async () => {
    const tool = (description: string): Anthropic.Tool[] => [
      { name: 'lookup', description, input_schema: { type: 'object' }, cache_control: { type: 'ephemeral' } },
    ];
    const toolsA = tool('a'.repeat(9000));
    const base = await ask({ tools: toolsA });
    expect(base.usage.cache_creation_input_tokens).toBeGreaterThan(4096);
    const otherSystem = await ask({ tools: toolsA, system: system(`${LONG}?`) });
    const toolPrefix = otherSystem.usage.cache_read_input_tokens!;
    expect(toolPrefix).toBeGreaterThan(2048); // the tools entry still hits…
    expect(toolPrefix).toBeLessThan(base.usage.cache_creation_input_tokens!); // …the system one does not
    const otherTools = await ask({ tools: tool('b'.repeat(9000)) });
    expect(otherTools.usage.cache_read_input_tokens).toBe(0);
    const otherModel = await ask({ tools: toolsA, model: 'claude-opus-4-8' });
    expect(otherModel.usage.cache_read_input_tokens).toBe(0);
  });

  it('refuses a fifth cache_control block with the API message', async () => {
    const blocks = Array.from({ length: 5 }, (_, i) => ({
      type: 'text' as const,
      text: `part ${i}`,
      cache_control: { type: 'ephemeral' as const },
    }));
    const err = await ask({ system: blocks }).catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect(err.error.error.message).toBe(
      'A maximum of 4 blocks with cache_control may be provided. Found 5.',
    );
  });

  it('refuses a 1h breakpoint after a 5m one', async () => {
    const err = await ask({
      system: [...system('first', '5m'), ...system('second', '1h')],
    }).catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect(err.error.error.message).toContain("ttl='1h'");
  });

  it('streams the cache usage in message_start and on message_delta', async () => {
    await ask({});
    const stream = client.messages.stream({
      model: MODEL,
      max_tokens: 64,
      system: system(LONG),
      messages: [{ role: 'user', content: 'What is step 3?' }],
    });
    let startRead: number | null | undefined;
    stream.on('streamEvent', (ev) => {
      if (ev.type === 'message_start') startRead = ev.message.usage.cache_read_input_tokens;
    });
    const msg = await stream.finalMessage();
    expect(startRead).toBeGreaterThan(2048);
    expect(msg.usage.cache_read_input_tokens).toBe(startRead);
  });

  it('bills cache classes at their own rates', async () => {
    await ask({});
    await ask({});
    const [write, read] = emu.billing.list();
    expect(read!.usage.cacheRead).toBe(write!.usage.cacheWrite5m);
    // Sonnet 4.6 in hundredths of µ$ per token: input 300, 5m write 375, read 30, output 1500.
    const exact = (u: TokenUsage) =>
      Math.ceil((u.input * 300 + u.cacheWrite5m * 375 + u.cacheRead * 30 + u.output * 1500) / 100);
    expect(write!.costMicros).toBe(exact(write!.usage));
    expect(read!.costMicros).toBe(exact(read!.usage));
    expect(read!.costMicros).toBeLessThan(write!.costMicros / 5);
  });
});
