import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createEmulator,
  DEFAULT_API_KEY,
  type Emulator,
  type Listening,
} from '../../adapters/emulator/index.ts';
import { OpenAIProvider } from '../../adapters/openai/provider.ts';
import { USAGE_INJECTED_HEADER, withoutInjectedUsage } from '../../adapters/openai/stream.ts';
import { readAll, type Usage } from '../../adapters/provider.ts';
import { OPENAI_PRICES } from '../../runtime/pricing/openai-prices.ts';
import { PriceTable } from '../../runtime/pricing/pricing.ts';

const NOW = Date.parse('2026-12-02T10:00:00Z');
const prices = new PriceTable(OPENAI_PRICES);

let emu: Emulator;
let server: Listening;
let provider: OpenAIProvider;

beforeAll(async () => {
  emu = createEmulator({ now: () => NOW });
  server = await emu.listen();
  provider = new OpenAIProvider('openai', {
    baseUrl: `${server.url}/openai`,
    apiKey: DEFAULT_API_KEY,
    timeoutMs: 5000,
  });
});
afterAll(async () => {
  await provider.close();
  await server.close();
});
beforeEach(() => {
  emu.resetCache();
  emu.billing.clear();
});

const body = (o: unknown) => Buffer.from(JSON.stringify(o));
const CHAT = { model: 'gpt-5.6-luna', messages: [{ role: 'user', content: 'Plan the week ahead' }] };
const RESP = { model: 'gpt-5.4', input: 'Plan the week ahead' };
const EMB = { model: 'text-embedding-3-large', input: 'Plan the week ahead' };

/** Feeds a stream through a fresh reader one byte at a time; returns its usage and where it held back. */
function byteByByte(bytes: Buffer): { usage: Usage; heldFrom: number } {
  const r = provider.streamReader();
  let heldFrom = -1;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes.subarray(i, i + 1);
    r.feed(c);
    if (heldFrom === -1 && r.finalAt(c) !== -1) heldFrom = i + r.finalAt(c);
  }
  return { usage: r.usage(), heldFrom };
}

/** The usage read off the answer equals the bill, and prices to the bill's µ$. */
function matchesBill(u: Usage) {
  const [e] = emu.billing.list();
  expect(emu.billing.list()).toHaveLength(1);
  expect(u.tokens).toEqual(e!.usage);
  expect(
    prices.cost(e!.model, { ...u.tokens, ...(u.serverTools ? { serverTools: u.serverTools } : {}) }, NOW),
  ).toBe(e!.costMicros);
}

describe('OpenAIProvider against the emulator', () => {
  it.each([
    ['chat/completions', CHAT],
    ['responses', RESP],
    ['embeddings', EMB],
  ])('send() to %s: answer() reads the usage the bill holds', async (path, req) => {
    const res = await provider.send({ path, body: body(req), requestId: 'req-1' });
    expect(res.status).toBe(200);
    expect(res.streaming).toBe(false);
    const out = provider.answer(res.status, await readAll(res.body));
    matchesBill(out.usage!);
    expect(emu.billing.list()[0]!.clientRequestId).toBe('req-1');
  });

  it.each([
    ['chat/completions', { ...CHAT, stream: true, stream_options: { include_usage: true } }],
    ['responses', { ...RESP, stream: true }],
  ])(
    'send() streamed to %s: the stream reader reads the bill, even fed one byte at a time',
    async (path, req) => {
      const res = await provider.send({ path, body: body(req) });
      expect(res.streaming).toBe(true);
      expect(res.headers[USAGE_INJECTED_HEADER]).toBeUndefined();
      const bytes = await readAll(res.body);
      const whole = provider.streamReader();
      whole.feed(bytes);
      matchesBill(whole.usage());
      const { usage, heldFrom } = byteByByte(bytes);
      expect(usage).toEqual(whole.usage());
      // Whole, the hold starts at the final event; byte by byte, inside it: never after its end,
      // so no client holds a whole final event before the call is settled.
      const final =
        path === 'responses' ? bytes.indexOf('event: response.completed') : bytes.lastIndexOf('data: {');
      expect(whole.finalAt(bytes)).toBe(final);
      expect(heldFrom).toBeGreaterThanOrEqual(final);
      expect(heldFrom).toBeLessThan(bytes.indexOf('\n\n', final));
    },
  );

  it('asks upstream for include_usage on a streamed chat completion that did not, and marks the answer', async () => {
    const res = await provider.send({ path: 'chat/completions', body: body({ ...CHAT, stream: true }) });
    expect(res.headers[USAGE_INJECTED_HEADER]).toBe('1');
    const bytes = await readAll(res.body);
    expect(bytes.toString()).toContain('"choices":[]');
    const r = provider.streamReader();
    r.feed(bytes);
    matchesBill(r.usage());
  });

  it('the filter drops exactly the injected usage chunk: the client gets what it would have got without it', async () => {
    const injected = await readAll(
      (await provider.send({ path: 'chat/completions', body: body({ ...CHAT, stream: true }) })).body,
    );
    const direct = await fetch(`${server.url}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEFAULT_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...CHAT, stream: true }),
    });
    const plain = Buffer.from(await direct.arrayBuffer()).toString();
    const filter = async (chunkSize: number) => {
      const t = withoutInjectedUsage();
      const out: Buffer[] = [];
      t.on('data', (c: Buffer) => out.push(c));
      for (let i = 0; i < injected.length; i += chunkSize) t.write(injected.subarray(i, i + chunkSize));
      await new Promise((done) => t.end(done));
      return Buffer.concat(out).toString();
    };
    const same = (s: string) => s.replace(/chatcmpl-[A-Za-z0-9]+/g, 'ID');
    const whole = await filter(injected.length);
    expect(same(whole)).toBe(same(plain));
    expect(await filter(1)).toBe(whole);
    // Exactly one event fewer than upstream sent: the usage chunk.
    expect(injected.toString().split('\n\n').length - whole.split('\n\n').length).toBe(1);
  });

  it('passes OpenAI error envelopes through with their status and type', async () => {
    const res = await provider.send({
      path: 'chat/completions',
      body: body({ model: 'gpt-5.4', messages: [] }),
    });
    expect(res.status).toBe(400);
    const buf = await readAll(res.body);
    expect(JSON.parse(buf.toString()).error.param).toBe('messages');
    expect(provider.answer(res.status, buf).errorType).toBe('invalid_request_error');
  });

  it('has no token counter (OpenAI has no endpoint for it) and refuses an unknown endpoint', async () => {
    expect(await provider.countTokens()).toBeUndefined();
    await expect(provider.send({ path: 'images/generations', body: body({}) })).rejects.toThrow(
      /no model endpoint/,
    );
  });

  it('fails closed on an answer without usage', () => {
    expect(() => provider.answer(200, body({ object: 'chat.completion', choices: [] }))).toThrow(/no usage/);
  });
});
