import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PriceTable } from '../../../runtime/pricing/pricing.ts';
import { type Backend, type Harness, startHarness } from '../../helpers/harness.ts';

const prices = new PriceTable();
const LONG_SYSTEM = `You are a careful support agent for Acme. ${'Policy: be precise, cite the ticket id, never guess. '.repeat(120)}`;

function costOf(model: string, usage: Anthropic.Usage): number {
  const split = usage.cache_creation;
  return prices.cost(model, {
    input: usage.input_tokens,
    cacheWrite5m: split?.ephemeral_5m_input_tokens ?? usage.cache_creation_input_tokens ?? 0,
    cacheWrite1h: split?.ephemeral_1h_input_tokens ?? 0,
    cacheRead: usage.cache_read_input_tokens ?? 0,
    output: usage.output_tokens,
  });
}

type Ledger = { entries: Array<Record<string, any>> };

/** The gateway through the real Anthropic SDK, against one backend. */
export function gatewayContract(backend: Backend) {
  describe(`gateway (${backend})`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({
        backend,
        config: {
          routing: {
            classes: {
              cheap: ['claude-haiku-4-5'],
              standard: ['claude-sonnet-4-6'],
              premium: ['claude-opus-4-5'],
            },
            rules: [
              { match: { team: 'frugal' }, allow: ['cheap'], onViolation: 'refuse' },
              { match: { team: 'rewrite' }, allow: ['cheap'], default: 'cheap', onViolation: 'rewrite' },
              {
                match: { team: 'thrifty' },
                allow: ['cheap', 'premium'],
                onViolation: 'refuse',
                downgrade: { above: 0.5, to: 'cheap' },
              },
            ],
          },
        },
      });
    });
    afterAll(async () => {
      await h?.close();
    });

    const ledgerFor = async (keyId: string) => {
      const res = await h.api<Ledger>('GET', '/api/ledger?limit=1000');
      return res.body.entries.filter((e) => e.identity.keyId === keyId);
    };

    it('forwards a plain call and records one ledger entry priced from real usage', async () => {
      const { client, id } = await h.client();
      const msg = await client.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 200,
        messages: [{ role: 'user', content: 'Hello, who are you?' }],
      });
      expect(msg.content[0]?.type).toBe('text');
      const entries = await ledgerFor(id);
      expect(entries).toHaveLength(1);
      expect(entries[0]!.outcome).toBe('ok');
      expect(entries[0]!.cost).toBe(costOf('claude-haiku-4-5', msg.usage));
      expect(entries[0]!.reserved).toBeGreaterThanOrEqual(entries[0]!.cost);
    });

    it('charges a streamed call exactly what the same call costs unstreamed', async () => {
      const { client, id } = await h.client();
      const params = {
        model: 'claude-sonnet-4-6',
        max_tokens: 300,
        messages: [
          { role: 'user' as const, content: 'Tell me about budgets [[emulator:output_tokens=120]]' },
        ],
      };
      const plain = await client.messages.create(params);
      const streamed = await client.messages.stream(params).finalMessage();
      expect(streamed.usage.output_tokens).toBe(plain.usage.output_tokens);
      const entries = await ledgerFor(id);
      expect(entries).toHaveLength(2);
      expect(entries[0]!.cost).toBe(entries[1]!.cost);
      expect(entries[0]!.cost).toBe(costOf('claude-sonnet-4-6', plain.usage));
      expect(entries[0]!.tokens.output).toBe(120);
    });

    it('passes a tool use round trip through', async () => {
      const { client } = await h.client();
      const tools: Anthropic.Tool[] = [
        {
          name: 'lookup_ticket',
          description: 'Find a ticket',
          input_schema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
        },
      ];
      const first = await client.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 200,
        tools,
        messages: [
          { role: 'user', content: 'Check ticket 42 [[emulator:tool_use lookup_ticket={"id":"42"}]]' },
        ],
      });
      expect(first.stop_reason).toBe('tool_use');
      const use = first.content.find((b) => b.type === 'tool_use') as Anthropic.ToolUseBlock;
      expect(use.input).toEqual({ id: '42' });
      const second = await client.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 200,
        tools,
        messages: [
          { role: 'user', content: 'Check ticket 42' },
          { role: 'assistant', content: first.content },
          {
            role: 'user',
            content: [{ type: 'tool_result', tool_use_id: use.id, content: 'open, priority high' }],
          },
        ],
      });
      expect(second.stop_reason).toBe('end_turn');
    });

    it('records cache writes and reads at their own prices', async () => {
      const { client, id } = await h.client();
      const call = () =>
        client.messages.create({
          model: 'claude-sonnet-4-6',
          max_tokens: 50,
          system: [{ type: 'text', text: LONG_SYSTEM, cache_control: { type: 'ephemeral' } }],
          messages: [{ role: 'user', content: 'Status of ticket 7?' }],
        });
      const a = await call();
      const b = await call();
      expect(a.usage.cache_creation_input_tokens).toBeGreaterThan(1024);
      expect(b.usage.cache_read_input_tokens).toBe(a.usage.cache_creation_input_tokens);
      const [eb, ea] = await ledgerFor(id);
      expect(ea!.tokens.cacheWrite5m).toBe(a.usage.cache_creation_input_tokens);
      expect(eb!.tokens.cacheRead).toBe(b.usage.cache_read_input_tokens);
      expect(ea!.cost).toBe(costOf('claude-sonnet-4-6', a.usage));
      expect(eb!.cost).toBe(costOf('claude-sonnet-4-6', b.usage));
      expect(eb!.cost).toBeLessThan(ea!.cost);
      expect(eb!.cacheHitRate).toBeGreaterThan(0.9);
    });

    it('refuses a call that would pass the seat ceiling with a 429 the SDK does not retry', async () => {
      const { client, id } = await h.client({ seat: 'tight-seat' });
      const ceiling = await h.api('POST', '/api/budgets/seat:tight-seat/ceiling', {
        amount: '0.001',
        reason: 'test',
      });
      expect(ceiling.status).toBe(200);
      const err = await client.messages
        .create({ model: 'claude-opus-4-5', max_tokens: 4000, messages: [{ role: 'user', content: 'hi' }] })
        .catch((e) => e);
      expect(err).toBeInstanceOf(Anthropic.RateLimitError);
      expect(err.message).toMatch(/budget exhausted: seat 'tight-seat' daily ceiling \$0\.001/);
      expect(err.error.chokepoint.code).toBe('budget_exhausted');
      expect(err.error.chokepoint.budget.scope).toBe('seat:tight-seat');
      expect(err.headers.get('x-should-retry')).toBe('false');
      expect(Number(err.headers.get('retry-after'))).toBeGreaterThan(0);
      const entries = await ledgerFor(id);
      // maxRetries is 2: exactly one attempt reached the gateway.
      expect(entries.map((e) => e.code)).toEqual(['budget_exhausted']);
      expect(entries[0]!.cost).toBe(0);
    });

    it('admits a near-ceiling call after counting its tokens precisely', async () => {
      const { client } = await h.client({ seat: 'near-seat' });
      // Worst case by estimate ~ (bytes/2) input; exact count is ~bytes/4: the precise count fits.
      await h.api('POST', '/api/budgets/seat:near-seat/ceiling', { amount: '0.0025', reason: 'test' });
      const msg = await client.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'word '.repeat(800) }],
      });
      expect(msg.type).toBe('message');
    });

    it('refuses a killed team with 403 on the very next request, and lets calls through once lifted', async () => {
      const { client } = await h.client({ team: 'killable' });
      const ask = () =>
        client.messages.create({
          model: 'claude-haiku-4-5',
          max_tokens: 20,
          messages: [{ role: 'user', content: 'x' }],
        });
      await ask();
      expect(
        (await h.api('POST', '/api/kill-switches', { scope: 'team:killable', reason: 'runaway' })).status,
      ).toBe(201);
      const err = await ask().catch((e) => e);
      expect(err).toBeInstanceOf(Anthropic.PermissionDeniedError);
      expect(err.error.chokepoint.code).toBe('killed');
      // The scope and when, not who or why: that stays with the operators (inbox, audit).
      expect(err.message).toContain('team:killable');
      expect(err.message).not.toContain('runaway');
      expect((await h.api('POST', '/api/kill-switches/team:killable/lift', { reason: 'fixed' })).status).toBe(
        200,
      );
      await expect(ask()).resolves.toBeTruthy();
    });

    it('refuses a revoked key with 401', async () => {
      const { client, id } = await h.client();
      await client.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 20,
        messages: [{ role: 'user', content: 'x' }],
      });
      expect((await h.api('POST', `/api/keys/${id}/revoke`, { reason: 'leaked' })).status).toBe(200);
      const err = await client.messages
        .create({ model: 'claude-haiku-4-5', max_tokens: 20, messages: [{ role: 'user', content: 'x' }] })
        .catch((e) => e);
      expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
      expect(err.error.chokepoint.code).toBe('unauthenticated');
    });

    it('answers bad input with a 400 naming the field, before reserving anything', async () => {
      const { client, key, id } = await h.client();
      const noMax = await fetch(`${h.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'claude-haiku-4-5', messages: [{ role: 'user', content: 'x' }] }),
      });
      expect(noMax.status).toBe(400);
      const body = (await noMax.json()) as any;
      expect(body.error.type).toBe('invalid_request_error');
      expect(body.chokepoint.field).toBe('max_tokens');
      const badJson = await fetch(`${h.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        body: '{"model": ',
      });
      expect(badJson.status).toBe(400);
      const unknown = await client.messages
        .create({ model: 'gpt-9', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })
        .catch((e) => e);
      expect(unknown).toBeInstanceOf(Anthropic.BadRequestError);
      expect(unknown.error.chokepoint.field).toBe('model');
      const tooMany = await client.messages
        .create({
          model: 'claude-3-5-haiku-latest',
          max_tokens: 9000,
          messages: [{ role: 'user', content: 'x' }],
        })
        .catch((e) => e);
      expect(tooMany.error.chokepoint.field).toBe('max_tokens');
      const notArray = await client.messages
        .create({ model: 'claude-haiku-4-5', max_tokens: 10, messages: 'hi' as never })
        .catch((e) => e);
      expect(notArray.error.chokepoint.field).toBe('messages');
      expect(notArray.error.error.message).toContain('expected an array of messages, got the string "hi"');
      const wrongType = await client.messages
        .create({ model: 'claude-haiku-4-5', max_tokens: '10' as never, messages: [] })
        .catch((e) => e);
      expect(wrongType.error.error.message).toBe(
        'max_tokens: expected a positive integer, got the string "10"',
      );
      // Nothing reserved or charged; only the unknown model is ledgered (for `chokepoint prices`).
      const entries = await ledgerFor(id);
      expect(entries.map((e) => [e.outcome, e.code, e.cost, e.reserved])).toEqual([
        ['refused', 'unknown_model', 0, 0],
      ]);
    });

    it('refuses a body over the size limit with 413', async () => {
      const { key } = await h.client();
      const res = await fetch(`${h.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'claude-haiku-4-5',
          max_tokens: 10,
          messages: [{ role: 'user', content: 'x'.repeat(33 * 1024 * 1024) }],
        }),
      });
      expect(res.status).toBe(413);
    });

    it('refuses a model outside the routing policy, or rewrites it where the rule says so', async () => {
      const frugal = await h.client({ team: 'frugal' });
      const err = await frugal.client.messages
        .create({ model: 'claude-opus-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })
        .catch((e) => e);
      expect(err).toBeInstanceOf(Anthropic.PermissionDeniedError);
      expect(err.error.chokepoint.code).toBe('model_not_allowed');
      await expect(
        frugal.client.messages.create({
          model: 'claude-haiku-4-5',
          max_tokens: 10,
          messages: [{ role: 'user', content: 'x' }],
        }),
      ).resolves.toBeTruthy();

      const rw = await h.client({ team: 'rewrite' });
      const { data, response } = await rw.client.messages
        .create({ model: 'claude-opus-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })
        .withResponse();
      expect(data.model).toMatch(/haiku/);
      expect(response.headers.get('x-chokepoint-model')).toMatch(
        /claude-haiku-4-5; requested=claude-opus-4-5/,
      );
      const entries = await ledgerFor(rw.id);
      expect(entries[0]!.name).toBe('claude-haiku-4-5');
    });

    it('catches a timestamp inserted into the system prompt as drift, and refuses it where policy says so', async () => {
      const reporting = await h.client();
      const ask = (c: Anthropic, system: string) =>
        c.messages.create({
          model: 'claude-haiku-4-5',
          max_tokens: 10,
          system,
          messages: [{ role: 'user', content: 'x' }],
        });
      await ask(reporting.client, 'You are helpful. Current time: 10:41:55.');
      await ask(reporting.client, 'You are helpful. Current time: 10:42:07.');
      const alarms = await h.api<{
        alarms: Array<{ kind: string; message: string; identity: { keyId: string } }>;
      }>('GET', '/api/alarms');
      const mine = alarms.body.alarms.find(
        (a) => a.kind === 'prefix_drift' && a.identity.keyId === reporting.id,
      );
      expect(mine?.message).toMatch(/system\[0\] changed at character 35: "2:07\." was "1:55\."/);

      const strict = await h.client({ driftPolicy: 'refuse' });
      await ask(strict.client, 'You are helpful. Current time: 10:41:55.');
      const err = await ask(strict.client, 'You are helpful. Current time: 10:42:07.').catch((e) => e);
      expect(err.status).toBe(409);
      expect(err.error.chokepoint.code).toBe('prefix_drift');
    });

    it('settles a stream whose client disconnected midway', async () => {
      const { key, id } = await h.client();
      const ctrl = new AbortController();
      const res = await fetch(`${h.url}/v1/messages`, {
        method: 'POST',
        signal: ctrl.signal,
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'claude-haiku-4-5',
          max_tokens: 2000,
          stream: true,
          messages: [
            { role: 'user', content: 'go [[emulator:output_tokens=1500]] [[emulator:delta_delay=2]]' },
          ],
        }),
      });
      const reader = res.body!.getReader();
      await reader.read();
      ctrl.abort();
      let entries: Ledger['entries'] = [];
      for (let i = 0; i < 100 && entries.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        entries = await ledgerFor(id);
      }
      expect(entries).toHaveLength(1);
      expect(entries[0]!.tokens.output).toBe(1500);
      expect(entries[0]!.cost).toBeGreaterThan(0);
    });

    it('writes a stream that came whole in one piece with its length, and a paced one as it comes', async () => {
      const { key } = await h.client();
      const call = (content: string) =>
        fetch(`${h.url}/v1/messages`, {
          method: 'POST',
          headers: { 'x-api-key': key, 'content-type': 'application/json' },
          body: JSON.stringify({
            model: 'claude-haiku-4-5',
            max_tokens: 50,
            stream: true,
            messages: [{ role: 'user', content }],
          }),
        });
      // The emulator sends an unpaced stream in one piece: held until settled, then one write.
      const whole = await call('hello');
      const text = await whole.text();
      expect(whole.headers.get('content-type')).toContain('text/event-stream');
      expect(whole.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
      expect(text.trimEnd().endsWith('data: {"type":"message_stop"}')).toBe(true);
      // Paced deltas: the head goes first, the events as they come (chunked, no length).
      const paced = await call('hello [[emulator:output_tokens=40]] [[emulator:delta_delay=2]]');
      expect(paced.headers.get('content-length')).toBeNull();
      expect(paced.headers.get('transfer-encoding')).toBe('chunked');
      const events = (await paced.text()).match(/^event: \S+/gm) ?? [];
      expect(events[0]).toBe('event: message_start');
      expect(events.at(-1)).toBe('event: message_stop');
    });

    it('prices Haiku 5.5 above 100,000 prompt tokens at its upper band, output included', async () => {
      const { client, id } = await h.client();
      const big = 'lorem ipsum dolor sit amet '.repeat(16_000); // ~108K tokens at 4 bytes/token
      const msg = await client.messages.create({
        model: 'claude-haiku-5-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: big }],
      });
      expect(msg.usage.input_tokens).toBeGreaterThan(100_000);
      const [entry] = await ledgerFor(id);
      expect(entry!.outcome).toBe('ok');
      expect(entry!.cost).toBe(Math.ceil(msg.usage.input_tokens * 0.5 + msg.usage.output_tokens * 2.5));
    });

    it('counts tokens through the gateway for a known model, and refuses an unknown one', async () => {
      const { client } = await h.client();
      const counted = await client.messages.countTokens({
        model: 'claude-haiku-4-5',
        messages: [{ role: 'user', content: 'How many tokens is this?' }],
      });
      expect(counted.input_tokens).toBeGreaterThan(3);
      const err = await client.messages
        .countTokens({ model: 'nope-1', messages: [{ role: 'user', content: 'x' }] })
        .catch((e) => e);
      expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    });

    it('downgrades to the cheaper class once a budget passes the configured share', async () => {
      const { client } = await h.client({ team: 'thrifty', seat: 'thrifty-seat' });
      const ask = () =>
        client.messages
          .create({
            model: 'claude-opus-4-5',
            max_tokens: 50,
            messages: [{ role: 'user', content: 'x [[emulator:output_tokens=45]]' }],
          })
          .withResponse();
      const first = await ask();
      expect(first.data.model).toMatch(/opus/);
      const spent = (await h.api<any>('GET', '/api/budgets/seat:thrifty-seat')).body.budget
        .spent_micros as number;
      // Put the seat just past half of its ceiling: the next call is routed to the cheap class.
      await h.api('POST', '/api/budgets/seat:thrifty-seat/ceiling', {
        amount: `$0.${String(Math.ceil(spent * 1.9)).padStart(6, '0')}`,
        reason: 'test',
      });
      const second = await ask();
      expect(second.data.model).toMatch(/haiku/);
      expect(second.response.headers.get('x-chokepoint-model')).toMatch(/requested=claude-opus-4-5/);
    });

    it('raises a cache alarm when a stable prefix keeps missing the cache', async () => {
      const { client, id } = await h.client();
      for (let i = 0; i < 7; i++) {
        await client.messages.create({
          model: 'claude-sonnet-4-6',
          max_tokens: 10,
          system: [{ type: 'text', text: LONG_SYSTEM, cache_control: { type: 'ephemeral' } }],
          messages: [{ role: 'user', content: `question ${i}` }],
        });
        // The provider loses its cache every time: the prefix allows reads the stream never gets.
        h.rt.emulator!.resetCache();
      }
      const alarms = await h.api<{
        alarms: Array<{ kind: string; message: string; identity: { keyId: string } }>;
      }>('GET', '/api/alarms?kind=cache_hit_rate');
      const mine = alarms.body.alarms.find((a) => a.identity.keyId === id);
      expect(mine?.message).toMatch(
        /read 0 cached tokens over 5 calls where the stable prefix allows \d+ \(0%\)/,
      );
    });

    it('reports per workflow the cache hit rate its prefix allows against the one it got', async () => {
      const { client } = await h.client({ workflow: 'cache-health-wf' });
      const ask = (i: number) =>
        client.messages.create({
          model: 'claude-sonnet-4-6',
          max_tokens: 10,
          system: [{ type: 'text', text: LONG_SYSTEM, cache_control: { type: 'ephemeral' } }],
          messages: [{ role: 'user', content: `question ${i}` }],
        });
      await ask(0);
      await ask(1); // reads the prefix the first call wrote: expected and seen
      h.rt.emulator!.resetCache();
      await ask(2); // the provider lost its cache: expected, not seen
      const health = await h.api<{
        workflows: Array<{
          workflow: string;
          calls: number;
          expected_hit_rate: number;
          actual_hit_rate: number;
        }>;
      }>('GET', '/api/cache-health');
      const mine = health.body.workflows.find((w) => w.workflow === 'cache-health-wf')!;
      expect(mine.calls).toBe(3);
      expect(mine.expected_hit_rate).toBeGreaterThan(0.3);
      expect(mine.actual_hit_rate).toBeGreaterThan(0);
      expect(mine.actual_hit_rate).toBeLessThan(mine.expected_hit_rate);
    });

    it('never writes a key or the provider credential to the logs', async () => {
      const { key } = await h.client();
      expect(h.logs.join('\n')).not.toContain(key);
      expect(h.logs.join('\n')).not.toMatch(/sk-emulator-[0-9a-f]{8}/);
    });

    it('keeps the ledger equal to the provider billing record to the micro-dollar', async () => {
      const ledger = await h.api<Ledger>('GET', '/api/ledger?limit=1000');
      const ours = ledger.body.entries.reduce((n, e) => n + e.cost, 0);
      expect(ours).toBe(h.rt.emulator!.billing.total());
    });
  });
}
