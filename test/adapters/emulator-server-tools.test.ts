import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createEmulator,
  DEFAULT_ADMIN_KEY,
  type Emulator,
  type Listening,
  WEB_SEARCH_MICROS,
} from '../../adapters/emulator/index.ts';

const TODAY = Date.parse('2026-12-02T12:00:00Z');
let emu: Emulator;
let server: Listening;
let client: Anthropic;

beforeAll(async () => {
  emu = createEmulator({ now: () => TODAY });
  server = await emu.listen();
  client = new Anthropic({ baseURL: server.url, apiKey: 'sk-emulator-local', maxRetries: 0 });
});
afterAll(() => server.close());
beforeEach(() => {
  emu.billing.clear();
  emu.script([]);
});

const search = (maxUses?: number) =>
  ({ type: 'web_search_20260209', name: 'web_search', ...(maxUses ? { max_uses: maxUses } : {}) }) as const;
const ask = (content: string, tools: unknown[], stream = false) =>
  ({
    model: 'claude-opus-5-5',
    max_tokens: 500,
    messages: [{ role: 'user', content }],
    tools,
    ...(stream ? { stream: true } : {}),
  }) as unknown as Anthropic.MessageCreateParamsNonStreaming;

describe('web search', () => {
  it('answers a directive with server_tool_use + web_search_tool_result blocks and counts the searches', async () => {
    const msg = await client.messages.create(
      ask('News? [[emulator:web_search=2]] [[emulator:text=Found it.]]', [search()]),
    );
    expect(msg.content.map((b) => b.type)).toEqual([
      'server_tool_use',
      'web_search_tool_result',
      'server_tool_use',
      'web_search_tool_result',
      'text',
    ]);
    const [use, result] = msg.content as [Anthropic.ServerToolUseBlock, Anthropic.WebSearchToolResultBlock];
    expect(use).toMatchObject({ name: 'web_search', input: { query: 'News?' } });
    expect(result.tool_use_id).toBe(use.id);
    expect(Array.isArray(result.content) && result.content[0]).toMatchObject({ type: 'web_search_result' });
    expect(msg.usage.server_tool_use).toEqual({ web_search_requests: 2, web_fetch_requests: 0 });
    const entry = emu.billing.list()[0]!;
    expect(entry.webSearchRequests).toBe(2);
    expect(entry.webSearchMicros).toBe(2 * WEB_SEARCH_MICROS);
    const tokens = Object.values(entry.costByClass).reduce((a, b) => a + b, 0);
    expect(entry.costMicros).toBe(tokens + 20_000);
    expect(emu.billing.total()).toBe(entry.costMicros);
  });

  it('never runs more than max_uses: extra searches get a max_uses_exceeded error result, unbilled', async () => {
    const msg = await client.messages.create(ask('x [[emulator:web_search=3]]', [search(1)]));
    const results = msg.content.filter(
      (b) => b.type === 'web_search_tool_result',
    ) as Anthropic.WebSearchToolResultBlock[];
    expect(results).toHaveLength(3);
    expect(results[1]!.content).toEqual({
      type: 'web_search_tool_result_error',
      error_code: 'max_uses_exceeded',
    });
    expect(msg.usage.server_tool_use?.web_search_requests).toBe(1);
    expect(emu.billing.list()[0]!.webSearchMicros).toBe(WEB_SEARCH_MICROS);
  });

  it('fires from a script rule, streams the same blocks, and reports the fee in the cost report', async () => {
    emu.script([{ when: { lastUserText: 'weather' }, reply: { webSearches: 1, text: 'Sunny.' } }]);
    const stream = client.messages.stream(
      ask('weather in Paris', [search()]) as Anthropic.MessageStreamParams,
    );
    const msg = await stream.finalMessage();
    expect(msg.content.map((b) => b.type)).toEqual(['server_tool_use', 'web_search_tool_result', 'text']);
    expect(msg.usage.server_tool_use?.web_search_requests).toBe(1);
    const day = new Date(TODAY).toISOString().slice(0, 10);
    const res = await fetch(
      `${server.url}/v1/organizations/cost_report?starting_at=${day}T00:00:00Z&group_by[]=description`,
      { headers: { 'x-api-key': DEFAULT_ADMIN_KEY, 'anthropic-version': '2023-06-01' } },
    );
    const rows = (await res.json()).data.flatMap((b: { results: unknown[] }) => b.results);
    expect(rows).toContainEqual(expect.objectContaining({ cost_type: 'web_search', amount: '1.00' }));
    const micros = rows.reduce((sum: number, r: { amount: string }) => {
      const [whole, frac = ''] = r.amount.split('.');
      return sum + Number(whole) * 10_000 + Number(frac.padEnd(4, '0'));
    }, 0);
    expect(micros).toBe(emu.billing.total());
  });

  it('needs a web_search tool for the directive, and search results count as input tokens', async () => {
    const err = await client.messages.create(ask('x [[emulator:web_search=1]]', [])).catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    const none = await client.messages.create(ask('x', [search()]));
    const one = await client.messages.create(ask('x [[emulator:web_search=1]]', [search()]));
    expect(none.usage.server_tool_use).toEqual({ web_search_requests: 0, web_fetch_requests: 0 });
    expect(one.usage.input_tokens).toBeGreaterThan(none.usage.input_tokens);
  });
});

describe('web fetch', () => {
  it('counts web_fetch_requests with no fee', async () => {
    const fetchTool = { type: 'web_fetch_20260209', name: 'web_fetch' };
    const msg = await client.messages.create(ask('read it [[emulator:web_fetch=1]]', [fetchTool]));
    expect(msg.content.map((b) => b.type)).toEqual(['server_tool_use', 'web_fetch_tool_result', 'text']);
    expect(msg.usage.server_tool_use).toEqual({ web_search_requests: 0, web_fetch_requests: 1 });
    expect(emu.billing.list()[0]).toMatchObject({ webFetchRequests: 1, webSearchMicros: 0 });
  });
});
