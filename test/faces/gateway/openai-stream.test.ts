import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, DEFAULT_API_KEY } from '../../../adapters/emulator/index.ts';
import { SseReader } from '../../../runtime/faces/gateway/openai/anthropic-sse.ts';
import { refusalToOpenAI, toOpenAIError } from '../../../runtime/faces/gateway/openai/errors.ts';
import { ChatStreamTranslator } from '../../../runtime/faces/gateway/openai/messages-to-chat.ts';
import { ResponsesStreamTranslator } from '../../../runtime/faces/gateway/openai/messages-to-responses.ts';
import {
  budgetExhausted,
  invalidRequest,
  type Refusal,
  unavailable,
} from '../../../runtime/gateway/refusal.ts';
import type { Budget } from '../../../runtime/store/port.ts';

/** Real Anthropic SSE bytes, from the emulator, for the stream translators to chew on. */
let emu: ReturnType<typeof createEmulator>;
let closeEmu: () => Promise<void>;
let emuUrl: string;

beforeAll(async () => {
  emu = createEmulator();
  const l = await emu.listen();
  emuUrl = l.url;
  closeEmu = l.close;
});
afterAll(() => closeEmu());

async function anthropicStream(text: string, tools = false): Promise<Buffer> {
  const res = await fetch(`${emuUrl}/v1/messages`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-api-key': DEFAULT_API_KEY,
      'anthropic-version': '2023-06-01',
    },
    body: JSON.stringify({
      model: 'claude-sonnet-5-5',
      max_tokens: 1000,
      stream: true,
      messages: [{ role: 'user', content: text }],
      ...(tools
        ? {
            tools: [
              { name: 'lookup', input_schema: { type: 'object', properties: { q: { type: 'string' } } } },
            ],
          }
        : {}),
    }),
  });
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

type Translator = { push(c: Buffer): Buffer; end(): Buffer };

function run(t: Translator, input: Buffer, size: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += size) out.push(t.push(input.subarray(i, i + size)));
  out.push(t.end());
  return Buffer.concat(out);
}

const MIXED =
  '[[emulator:text=Grüße aus Zürich 🦊 — 数字 and a long enough sentence to span deltas.]] [[emulator:tool_use lookup={"q":"ünïcödé 🦊 query that is long enough for several json deltas"}]]';

describe('the streaming translators survive any chunking', () => {
  it('chat: 1-byte chunks give the same bytes as the whole stream at once', async () => {
    const input = await anthropicStream(MIXED, true);
    const ctx = { model: 'claude-sonnet-5-5', created: 1_780_000_000, includeUsage: true };
    const whole = run(new ChatStreamTranslator(ctx), input, input.length);
    const bytewise = run(new ChatStreamTranslator(ctx), input, 1);
    expect(bytewise.equals(whole)).toBe(true);
    const text = whole.toString('utf8');
    expect(text).toContain('🦊');
    expect(text).toContain('"finish_reason":"tool_calls"');
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('responses: 1-byte chunks give the same bytes as the whole stream at once', async () => {
    const input = await anthropicStream(MIXED, true);
    const ctx = { model: 'claude-sonnet-5-5', created: 1_780_000_000 };
    const whole = run(new ResponsesStreamTranslator(ctx), input, input.length);
    const bytewise = run(new ResponsesStreamTranslator(ctx), input, 1);
    expect(bytewise.equals(whole)).toBe(true);
    const events = new SseReader().push(whole).map((e) => e.event);
    expect(events[0]).toBe('response.created');
    expect(events.at(-1)).toBe('response.completed');
    const seq = new SseReader()
      .push(whole)
      .map((e) => (e.data as { sequence_number: number }).sequence_number);
    expect(seq).toEqual(seq.map((_, i) => i));
  });

  it('reads CRLF-framed events as LF-framed ones', () => {
    const lf = Buffer.from('event: ping\ndata: {"type":"ping"}\n\nevent: x\ndata: {"a":1}\n\n');
    const crlf = Buffer.from(lf.toString().replaceAll('\n', '\r\n'));
    expect(new SseReader().push(crlf)).toEqual(new SseReader().push(lf));
  });

  it('chat: the usage chunk is there only when include_usage is asked', async () => {
    const input = await anthropicStream('hello there');
    const withUsage = run(new ChatStreamTranslator({ model: 'm', created: 1, includeUsage: true }), input, 7);
    const without = run(new ChatStreamTranslator({ model: 'm', created: 1 }), input, 7);
    expect(withUsage.toString()).toMatch(/"choices":\[\],"usage":\{"prompt_tokens":\d+/);
    expect(without.toString()).not.toContain('"usage"');
  });

  it('a stream that breaks off ends with an error the client sees, in both formats', async () => {
    const input = await anthropicStream('hello there, a stream that will be cut');
    const cut = input.subarray(0, Math.floor(input.length / 2));
    const chat = run(new ChatStreamTranslator({ model: 'm', created: 1 }), cut, 5).toString();
    expect(chat).toMatch(/data: \{"error":\{"message":"the provider stream broke off/);
    expect(chat).not.toContain('[DONE]');
    const resp = run(new ResponsesStreamTranslator({ model: 'm', created: 1 }), cut, 5).toString();
    expect(resp).toMatch(/event: error\ndata: \{"type":"error","code":"server_error"/);
  });

  it('an Anthropic error event becomes an OpenAI error in the stream', async () => {
    const input = await anthropicStream('story [[emulator:stream_error=529]]');
    const chat = run(new ChatStreamTranslator({ model: 'm', created: 1 }), input, 3).toString();
    expect(chat).toMatch(
      /data: \{"error":\{"message":"Overloaded","type":"server_error","param":null,"code":"overloaded"\}\}\n\n$/,
    );
  });
});

const budget: Budget = {
  id: 'bud_1',
  scope: 'team:search',
  owner: 'ops',
  ceiling: 5_000_000,
  window: 'day',
  state: 'active',
  spent: 4_990_000,
  reserved: 0,
  windowStart: 0,
  resetsAt: Date.now() + 3_600_000,
  createdAt: 0,
  updatedAt: 0,
} as Budget;

describe('errors in the OpenAI envelope', () => {
  it('a refusal keeps its code, the field it names, and its chokepoint object', () => {
    const answer = refusalToOpenAI(invalidRequest('messages.0.content', 'expected text'), 'req_1');
    const body = JSON.parse(answer.body.toString());
    expect(answer.status).toBe(400);
    expect(answer.headers['x-request-id']).toBe('req_1');
    expect(body.error).toMatchObject({
      message: 'messages.0.content: expected text',
      type: 'invalid_request_error',
      param: 'messages.0.content',
      code: 'invalid_request',
    });
    expect(body.chokepoint).toEqual({ code: 'invalid_request', field: 'messages.0.content' });
    expect(body.error.chokepoint).toEqual(body.chokepoint);
  });

  it('a provider error keeps its retry headers and maps 529 to 503', () => {
    const envelope = { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } };
    const answer = toOpenAIError(
      529,
      { 'x-should-retry': 'true', 'retry-after': '2' },
      Buffer.from(JSON.stringify(envelope)),
    );
    expect(answer.status).toBe(503);
    expect(answer.headers).toMatchObject({ 'x-should-retry': 'true', 'retry-after': '2' });
    expect(JSON.parse(answer.body.toString())).toEqual({
      error: { message: 'Overloaded', type: 'server_error', param: null, code: 'overloaded' },
    });
  });
});

/** A server that answers every request the same way and counts the attempts. */
async function counting(answer: { status: number; headers: Record<string, string>; body: Buffer }) {
  let attempts = 0;
  const server = createServer((req, res) => {
    attempts++;
    req.resume();
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return {
    client: new OpenAI({ baseURL: url, apiKey: 'cp_test', maxRetries: 2 }),
    attempts: () => attempts,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const ask = (client: OpenAI) =>
  client.chat.completions
    .create({ model: 'claude-sonnet-5-5', messages: [{ role: 'user', content: 'hi' }] })
    .catch((e: unknown) => e);

describe('the openai SDK and our refusals', () => {
  it('raises a budget refusal as one RateLimitError with our message and code, without retrying', async () => {
    const refusal: Refusal = budgetExhausted(budget, 20_000, Date.now());
    const s = await counting(refusalToOpenAI(refusal, 'req_2'));
    try {
      const err = (await ask(s.client)) as InstanceType<typeof OpenAI.RateLimitError>;
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      expect(err.message).toContain('budget exhausted');
      expect(err.code).toBe('budget_exhausted');
      expect((err.error as { chokepoint: { budget: { id: string } } }).chokepoint.budget.id).toBe('bud_1');
      expect(s.attempts()).toBe(1);
    } finally {
      await s.close();
    }
  });

  it('retries the same 429 when x-should-retry is absent: the header is what stops it (control)', async () => {
    const plain = refusalToOpenAI(budgetExhausted(budget, 20_000, Date.now()));
    const { 'x-should-retry': _, 'retry-after': __, ...headers } = plain.headers;
    const s = await counting({ ...plain, headers: { ...headers, 'retry-after-ms': '1' } });
    try {
      expect(await ask(s.client)).toBeInstanceOf(OpenAI.RateLimitError);
      expect(s.attempts()).toBe(3);
    } finally {
      await s.close();
    }
  });

  it('lets the SDK retry a store outage (enforcement unavailable), the one refusal worth retrying', async () => {
    const answer = refusalToOpenAI(unavailable('the store is down'));
    const s = await counting({ ...answer, headers: { ...answer.headers, 'retry-after-ms': '1' } });
    try {
      expect(await ask(s.client)).toBeInstanceOf(OpenAI.InternalServerError);
      expect(s.attempts()).toBe(3);
    } finally {
      await s.close();
    }
  });
});
