import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Provider,
  ProviderError,
  type ProviderFactory,
  type ProviderResponse,
  type SendRequest,
  type StreamReader,
  type Usage,
} from '../../adapters/provider.ts';
import { registerProvider } from '../../adapters/providers.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';

/**
 * Adding a provider is one adapter folder, one registry line and one config value. This test is
 * all three for a provider with a wire format of its own ("stub": POST /generate, usage as
 * `{prompt_tokens, completion_tokens}`): the adapter below is what its folder would hold,
 * `registerProvider` stands for its line in adapters/providers.ts, and `provider.kind: stub` is
 * the config value. Nothing else changes: the calls below go through the real gateway and the
 * real call path (admission, settlement, ledger) against a real local server.
 */

// ---- the adapter (adapters/stub/provider.ts) ----

interface StubAnswer {
  output: string;
  used: { prompt_tokens: number; completion_tokens: number };
}

const NONE = { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 };

class StubProvider implements Provider {
  readonly kind = 'stub';
  constructor(private readonly baseUrl: string) {}

  send(req: SendRequest): Promise<ProviderResponse> {
    // The gateway's request (Messages format) in the stub's own wire format.
    const body = JSON.parse(req.body.toString('utf8')) as {
      model: string;
      max_tokens: number;
      messages: Array<{ content: unknown }>;
    };
    const payload = Buffer.from(
      JSON.stringify({
        model: body.model,
        limit: body.max_tokens,
        prompt: body.messages.map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n'),
      }),
    );
    return new Promise((resolve, reject) => {
      const r = request(
        new URL('/generate', this.baseUrl),
        { method: 'POST', headers: { 'content-type': 'application/json' }, signal: req.signal },
        (res) =>
          resolve({ status: res.statusCode ?? 502, headers: res.headers, body: res, streaming: false }),
      );
      r.on('error', (err) => reject(this.failure(err)));
      r.end(payload);
    });
  }

  answer(status: number, body: Buffer): { usage?: Usage; errorType?: string } {
    if (status !== 200) return { errorType: `http_${status}` };
    return { usage: this.usageOf(JSON.parse(body.toString('utf8'))) };
  }

  usageOf(message: unknown): Usage {
    const used = (message as StubAnswer).used;
    return { tokens: { ...NONE, input: used.prompt_tokens, output: used.completion_tokens }, options: {} };
  }

  streamReader(): StreamReader {
    throw new Error('the stub provider does not stream');
  }

  async countTokens(): Promise<number | undefined> {
    return undefined;
  }

  failure(err: unknown): ProviderError {
    if (err instanceof ProviderError) return err;
    const e = err as Error;
    return new ProviderError(e.message, e.name === 'AbortError' ? 'aborted' : 'network');
  }

  async close(): Promise<void> {}
}

const stubProvider: ProviderFactory = async (s) => new StubProvider(s.baseUrl!);

// ---- the registry line and the config value ----

registerProvider('stub', stubProvider);

describe('a provider added as one adapter, one registry line and one config value', () => {
  let stub: Server;
  let stubUrl: string;
  let h: Harness;
  const seen: Array<{ model: string; limit: number; prompt: string }> = [];

  beforeAll(async () => {
    stub = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const asked = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        seen.push(asked);
        const answer: StubAnswer = {
          output: `echo: ${asked.prompt}`,
          used: { prompt_tokens: 1_000, completion_tokens: Math.min(asked.limit, 500) },
        };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
    stubUrl = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
    h = await startHarness({ config: { provider: { kind: 'stub', baseUrl: stubUrl } } });
  });
  afterAll(async () => {
    await h?.close();
    await new Promise((r) => stub?.close(r));
  });

  const call = (key: string, max_tokens: number) =>
    fetch(`${h.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'claude-haiku-4-5',
        max_tokens,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
  const ledger = async (keyId: string) =>
    (
      await h.api<{
        entries: Array<Record<string, unknown> & { identity: { keyId?: string }; cost: number }>;
      }>('GET', '/api/ledger?limit=100')
    ).body.entries.filter((e) => e.identity.keyId === keyId);

  it('sends through the call path in its own wire format and settles the usage it reports', async () => {
    const { key, id } = await h.client({ seat: 'stub-seat' });
    const res = await call(key, 800);
    expect(res.status).toBe(200);
    expect(((await res.json()) as StubAnswer).output).toBe('echo: hi');
    expect(seen.at(-1)).toEqual({ model: 'claude-haiku-4-5', limit: 800, prompt: 'hi' });
    const [entry] = await ledger(id);
    const tokens = { ...NONE, input: 1_000, output: 500 };
    expect(entry).toMatchObject({ outcome: 'ok', name: 'claude-haiku-4-5', tokens });
    expect(entry!.cost).toBe(h.rt.prices.cost('claude-haiku-4-5', tokens, Date.now()));
    expect(entry!.reserved).toBeGreaterThan(entry!.cost);
    const budget = await h.api<{ budget: { spent_micros: number } }>('GET', '/api/budgets/seat:stub-seat');
    expect(budget.body.budget.spent_micros).toBe(entry!.cost);
  });

  it('refuses a call over a ceiling before the provider sees it', async () => {
    const { key, id } = await h.client({ seat: 'stub-tight' });
    await h.api('POST', '/api/budgets/seat:stub-tight/ceiling', { amount: '0.0001', reason: 'test' });
    const before = seen.length;
    const res = await call(key, 4_000);
    expect(res.status).toBe(429);
    expect(((await res.json()) as { chokepoint: { code: string } }).chokepoint.code).toBe('budget_exhausted');
    expect(seen.length).toBe(before);
    expect((await ledger(id)).map((e) => e.outcome)).toEqual(['refused']);
  });

  it("maps the provider's failures: no connection is a 502 and the reservation is released", async () => {
    const { key, id } = await h.client({ seat: 'stub-down' });
    await new Promise((r) => stub.close(r));
    stub.closeAllConnections();
    const res = await call(key, 100);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { chokepoint: { code: string } }).chokepoint.code).toBe('upstream_network');
    const [entry] = await ledger(id);
    expect(entry).toMatchObject({ outcome: 'error', code: 'upstream_network', cost: 0 });
    const budget = await h.api<{ budget: { spent_micros: number; reserved_micros: number } }>(
      'GET',
      '/api/budgets/seat:stub-down',
    );
    expect(budget.body.budget).toMatchObject({ spent_micros: 0, reserved_micros: 0 });
  });
});
