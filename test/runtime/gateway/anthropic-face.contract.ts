import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, type Harness, startHarness } from '../../helpers/harness.ts';

type Ledger = { entries: Array<Record<string, any>> };

/** A request shaped like Claude Code 2.1's: every feature of today's Messages API at once. */
function claudeCodeBody(text: string) {
  return {
    model: 'claude-opus-5-5',
    max_tokens: 128_000,
    system: [
      { type: 'text', text: "You are Claude Code, Anthropic's official CLI for Claude." },
      { type: 'text', text: 'Be concise. '.repeat(300), cache_control: { type: 'ephemeral' } },
    ],
    tools: [
      {
        name: 'Bash',
        description: 'Run a shell command',
        input_schema: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] },
      },
      {
        name: 'NotebookEdit',
        description: 'Edit a notebook cell',
        input_schema: { type: 'object', properties: { cell: { type: 'string' } } },
        defer_loading: true,
      },
    ],
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'hello', cache_control: { type: 'ephemeral' } }] },
      { role: 'system', content: 'The user is on branch main. Today is 2026-12-02.' },
      { role: 'assistant', content: [{ type: 'text', text: 'Hi! What should I do?' }] },
      { role: 'user', content: [{ type: 'text', text, cache_control: { type: 'ephemeral' } }] },
    ],
    thinking: { type: 'adaptive', display: 'omitted' },
    output_config: { effort: 'medium' },
    context_management: { edits: [{ type: 'clear_tool_uses_20250919' }] },
    metadata: { user_id: 'user_abc_account_def_session_0b6f' },
    a_field_from_next_month: { anything: ['goes', 1, true] },
  };
}

const BETAS = [
  'claude-code-20250219',
  'interleaved-thinking-2025-05-14',
  'context-management-2025-06-27',
  'prompt-caching-scope-2026-01-05',
  'effort-2025-11-24',
  'advanced-tool-use-2025-11-20',
  'fine-grained-tool-streaming-2025-05-14',
  'mid-conversation-tool-changes-2026-07-01',
].join(',');

/** The Anthropic face beyond a plain call, through the real SDK and raw HTTP, against one backend. */
export function anthropicFaceContract(backend: Backend) {
  describe(`anthropic face (${backend})`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({
        backend,
        config: {
          routing: {
            classes: { cheap: ['claude-haiku-5-5'], premium: ['claude-opus-5-5'] },
            rules: [
              { match: { team: 'frugal' }, allow: ['cheap'], onViolation: 'refuse' },
              { match: { team: 'strict' }, allow: ['cheap', 'premium'], maxTokens: 'refuse' },
              { match: { team: 'evil' }, allow: ['cheap'], default: 'cheap', onViolation: 'rewrite' },
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
    const billOf = (requestId: string) =>
      h.rt.emulator!.billing.list().filter((e) => e.clientRequestId === requestId);
    const post = (key: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${h.url}${path}`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });

    it('forwards a Claude Code request with every current feature and bills it to the µ$', async () => {
      const { key, id } = await h.client();
      const res = await post(key, '/v1/messages?beta=true', claudeCodeBody('list the files'), {
        'anthropic-version': '2023-06-01',
        'anthropic-beta': BETAS,
        'x-claude-code-session-id': '6f1c2d4e-8a9b-4c3d-9e8f-0a1b2c3d4e5f',
        'x-app': 'cli',
      });
      const text = await res.text();
      expect(res.status, text).toBe(200);
      const msg = JSON.parse(text);
      expect(msg.content[0].type).toBe('thinking');
      const [entry] = await ledgerFor(id);
      expect(entry!.outcome).toBe('ok');
      expect(entry!.identity.session).toBe('6f1c2d4e-8a9b-4c3d-9e8f-0a1b2c3d4e5f');
      const bill = billOf(entry!.requestId);
      expect(bill).toHaveLength(1);
      expect(entry!.cost).toBe(bill[0]!.costMicros);
    });

    it('streams the same request and settles it from the stream to the µ$', async () => {
      const { key, id } = await h.client();
      const res = await post(
        key,
        '/v1/messages?beta=true',
        { ...claudeCodeBody('go on'), stream: true },
        {
          'anthropic-beta': BETAS,
        },
      );
      expect(res.status).toBe(200);
      const sse = await res.text();
      expect(sse).toContain('event: message_stop');
      const [entry] = await ledgerFor(id);
      expect(entry!.cost).toBe(billOf(entry!.requestId)[0]!.costMicros);
    });

    // One request per feature of today's Messages API (docs/research/anthropic-2026-12.md §7):
    // none may be refused by the gateway, and the emulator (which speaks today's API) takes them.
    const FEATURES: Array<[string, Record<string, unknown>]> = [
      [
        'a mid-conversation system message',
        {
          messages: [
            { role: 'user', content: 'hi' },
            { role: 'system', content: 'be brief' },
            { role: 'assistant', content: 'ok' },
            { role: 'user', content: 'go' },
          ],
        },
      ],
      ['adaptive thinking, summarized', { thinking: { type: 'adaptive', display: 'summarized' } }],
      ['adaptive thinking, omitted', { thinking: { type: 'adaptive', display: 'omitted' } }],
      ['effort', { output_config: { effort: 'xhigh' } }],
      [
        'structured output',
        { output_config: { format: { type: 'json_schema', schema: { type: 'object' } } } },
      ],
      ['context management', { context_management: { edits: [{ type: 'clear_tool_uses_20250919' }] } }],
      [
        'a deferred tool',
        { tools: [{ name: 'Later', input_schema: { type: 'object' }, defer_loading: true }] },
      ],
      ['automatic caching', { cache_control: { type: 'ephemeral' } }],
      [
        'a 1h breakpoint',
        { system: [{ type: 'text', text: 'sys', cache_control: { type: 'ephemeral', ttl: '1h' } }] },
      ],
      ['metadata', { metadata: { user_id: '{"device_id":"d","session_id":"s"}' } }],
      ['stop sequences', { stop_sequences: ['END'] }],
      [
        'tool choice none',
        { tools: [{ name: 'T', input_schema: { type: 'object' } }], tool_choice: { type: 'none' } },
      ],
      ['fast mode', { speed: 'fast' }],
      ['US-only inference', { inference_geo: 'us' }],
      ['a service tier', { service_tier: 'auto' }],
      [
        'token-only server tools',
        {
          tools: [
            { type: 'bash_20250124', name: 'bash' },
            { type: 'text_editor_20250728', name: 'str_replace_based_edit_tool' },
            { type: 'memory_20250818', name: 'memory' },
          ],
        },
      ],
      [
        'web fetch with max_uses',
        { tools: [{ type: 'web_fetch_20250910', name: 'web_fetch', max_uses: 2, max_content_tokens: 5000 }] },
      ],
      [
        'a document block',
        {
          messages: [
            {
              role: 'user',
              content: [
                { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'notes' } },
                { type: 'text', text: 'sum up' },
              ],
            },
          ],
        },
      ],
      [
        'an image block',
        {
          messages: [
            {
              role: 'user',
              content: [
                { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
                { type: 'text', text: 'what is it' },
              ],
            },
          ],
        },
      ],
      ['a field from next month', { a_field_from_next_month: { anything: true } }],
    ];
    it.each(FEATURES)('forwards %s without judging it', async (_name, feature) => {
      const { key } = await h.client();
      const res = await post(key, '/v1/messages', {
        model: 'claude-opus-5-5',
        max_tokens: 200,
        messages: [{ role: 'user', content: 'hi' }],
        ...feature,
      });
      const body = (await res.json()) as any;
      expect(body.chokepoint, JSON.stringify(body)).toBeUndefined();
      expect(res.status, JSON.stringify(body)).toBe(200);
    });

    it('settles a call before the client can have the whole answer, streamed or not', async () => {
      const { client, id } = await h.client();
      // A slow store: were the answer written before the settlement, the client would see it first.
      const settle = h.rt.store.settle.bind(h.rt.store);
      h.rt.store.settle = async (rid, entry) => {
        await new Promise((r) => setTimeout(r, 300));
        return settle(rid, entry);
      };
      try {
        await client.messages.create({
          model: 'claude-haiku-5-5',
          max_tokens: 50,
          messages: [{ role: 'user', content: 'hi' }],
        });
        expect(await ledgerFor(id)).toHaveLength(1);
        const stream = await client.messages.create({
          model: 'claude-haiku-5-5',
          max_tokens: 50,
          stream: true,
          messages: [{ role: 'user', content: 'hi' }],
        });
        let events = 0;
        for await (const e of stream) {
          events++;
          if (e.type === 'message_stop') expect(await ledgerFor(id)).toHaveLength(2);
        }
        expect(events).toBeGreaterThan(3);
        expect(await ledgerFor(id)).toHaveLength(2);
      } finally {
        h.rt.store.settle = settle;
      }
    });

    it('writes a stream that came whole after its settlement, head and all; a paced one starts at once', async () => {
      const { key } = await h.client();
      const settle = h.rt.store.settle.bind(h.rt.store);
      let settledAt = 0;
      h.rt.store.settle = async (rid, entry) => {
        await new Promise((r) => setTimeout(r, 300));
        const e = await settle(rid, entry);
        settledAt = performance.now();
        return e;
      };
      const stream = async (content: string) => {
        settledAt = 0;
        const res = await post(key, '/v1/messages', {
          model: 'claude-haiku-5-5',
          max_tokens: 400,
          stream: true,
          messages: [{ role: 'user', content }],
        });
        const headAt = performance.now();
        const text = await res.text();
        expect(text).toContain('event: message_stop');
        return { headAt, settledAt };
      };
      try {
        // The emulator sends an unpaced stream in one piece: nothing goes out before the settlement.
        const whole = await stream('hi [[emulator:output_tokens=20]]');
        expect(whole.settledAt).toBeGreaterThan(0);
        expect(whole.headAt).toBeGreaterThanOrEqual(whole.settledAt);
        // A paced one is passed on as it comes: its head long before the slow settlement.
        const paced = await stream('hi [[emulator:output_tokens=200]] [[emulator:delta_delay=2]]');
        expect(paced.headAt).toBeLessThan(paced.settledAt);
      } finally {
        h.rt.store.settle = settle;
      }
    });

    it('lets the provider answer for a role it does not accept (the gateway does not judge roles)', async () => {
      const { key, id } = await h.client();
      const res = await post(key, '/v1/messages', {
        model: 'claude-opus-4-7',
        max_tokens: 10,
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'system', content: 'be brief' },
        ],
      });
      const body = (await res.json()) as any;
      expect(res.status).toBe(400);
      expect(body.chokepoint).toBeUndefined(); // the provider's own error, passed through
      const [entry] = await ledgerFor(id);
      expect(entry!.outcome).toBe('error');
      expect(entry!.cost).toBe(0);
    });

    it('refuses a body nested past the bound with a 400 naming the field, not a 503', async () => {
      const { key, id } = await h.client();
      // Built as text: JSON.stringify itself would overflow on 10,000 levels.
      const deep = `${'{"type":"object","properties":{"x":'.repeat(10_000)}{"type":"string"}${'}}'.repeat(10_000)}`;
      const res = await fetch(`${h.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        body: `{"model":"claude-haiku-5-5","max_tokens":10,"tools":[{"name":"deep","input_schema":${deep}}],"messages":[{"role":"user","content":"hi"}]}`,
      });
      const body = (await res.json()) as any;
      expect(res.status).toBe(400);
      expect(body.chokepoint.code).toBe('invalid_request');
      expect(body.chokepoint.field).toMatch(/^tools\.0\.input_schema\.properties/);
      expect(body.error.message).toContain('nested deeper than 128 levels');
      expect(await ledgerFor(id)).toHaveLength(0);
    });

    it('refuses an unknown model naming it, with the prices entry to add, and ledgers it', async () => {
      const { client, id } = await h.client();
      const err = await client.messages
        .create({ model: 'claude-opus-9', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })
        .catch((e) => e);
      expect(err).toBeInstanceOf(Anthropic.BadRequestError);
      expect(err.error.chokepoint.model).toBe('claude-opus-9');
      expect(err.error.chokepoint.prices_entry).toContain('- model: "claude-opus-9"');
      expect(err.error.error.message).toContain('add to chokepoint.config.yaml');
      const [entry] = await ledgerFor(id);
      expect(entry).toMatchObject({ outcome: 'refused', code: 'unknown_model', name: 'claude-opus-9' });
    });

    it('lists the models the key may call in the Anthropic shape (models.list, models.retrieve)', async () => {
      const { client } = await h.client();
      const all = [];
      for await (const m of client.models.list({ limit: 5 })) all.push(m);
      const ids = all.map((m) => m.id);
      expect(ids).toContain('claude-opus-5-5');
      expect(ids).toContain('claude-haiku-5-5');
      expect(ids).not.toContain('claude-sonnet-4-5-20250929'); // past its end of life
      expect(all[0]!.type).toBe('model');
      const one = await client.models.retrieve('claude-opus-5-5');
      expect(one.display_name).toBe('Claude Opus 5.5');
      const frugal = await h.client({ team: 'frugal' });
      const cheapOnly = [];
      for await (const m of frugal.client.models.list()) cheapOnly.push(m.id);
      expect(cheapOnly).toEqual(['claude-haiku-5-5']);
      const hidden = await frugal.client.models.retrieve('claude-opus-5-5').catch((e) => e);
      expect(hidden).toBeInstanceOf(Anthropic.NotFoundError);
    });

    it('answers other /v1 paths with a JSON 404 in the Anthropic envelope, never the inbox', async () => {
      const { key } = await h.client();
      const res = await fetch(`${h.url}/v1/files`, { headers: { 'x-api-key': key } });
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toContain('application/json');
      const body = (await res.json()) as any;
      expect(body.error.type).toBe('not_found_error');
      const anon = await fetch(`${h.url}/v1/models`, { redirect: 'manual' });
      expect(anon.status).toBe(401);
      expect(((await anon.json()) as any).error.type).toBe('authentication_error');
    });

    it('fits max_tokens to what the budget can still pay for, with zero overshoot', async () => {
      const { key, id } = await h.client({ team: 'fit' });
      const seat = (await ledgerForScope(id)).seat;
      // $1.00 left: 128,000 output tokens of Opus 5.5 ($2.56) do not fit, ~45,000 do.
      await h.api('POST', `/api/budgets/seat:${seat}/ceiling`, { amount: '1.00', reason: 'test' });
      const big = {
        model: 'claude-opus-5-5',
        max_tokens: 128_000,
        messages: [{ role: 'user', content: 'hi' }],
      };
      const response = await post(key, '/v1/messages', big);
      const data = (await response.json()) as any;
      expect(response.status).toBe(200);
      const header = response.headers.get('x-chokepoint-max-tokens');
      expect(header).toMatch(/^\d+; requested=128000$/);
      const fitted = Number(header!.split(';')[0]);
      expect(fitted).toBeGreaterThan(40_000);
      expect(fitted).toBeLessThan(50_000);
      expect(data.type).toBe('message');
      const [entry] = await ledgerFor(id);
      expect(entry!.reserved).toBeLessThanOrEqual(1_000_000);
      expect(entry!.reserved).toBeGreaterThan(900_000);
      // `refuse` (the team's rule) refuses the same call instead.
      const strict = await h.client({ team: 'strict' });
      const s = (await ledgerForScope(strict.id)).seat;
      await h.api('POST', `/api/budgets/seat:${s}/ceiling`, { amount: '1.00', reason: 'test' });
      const refused = await post(strict.key, '/v1/messages', big);
      expect(refused.status).toBe(429);
      expect(((await refused.json()) as any).chokepoint.code).toBe('budget_exhausted');
    });

    it('prices web search per use: reserves max_uses, settles from server_tool_use', async () => {
      const { client, id } = await h.client();
      const unbounded = await client.messages
        .create({
          model: 'claude-sonnet-5-5',
          max_tokens: 100,
          tools: [{ type: 'web_search_20250305', name: 'web_search' }],
          messages: [{ role: 'user', content: 'news?' }],
        })
        .catch((e) => e);
      expect(unbounded).toBeInstanceOf(Anthropic.BadRequestError);
      expect(unbounded.error.chokepoint.field).toBe('tools.0.max_uses');
      const msg = await client.messages.create({
        model: 'claude-sonnet-5-5',
        max_tokens: 100,
        tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 3 }],
        messages: [{ role: 'user', content: 'news? [[emulator:web_search=2]]' }],
      });
      expect(msg.usage.server_tool_use?.web_search_requests).toBe(2);
      const [entry] = await ledgerFor(id);
      expect(entry!.reserved).toBeGreaterThan(3 * 10_000);
      const bill = billOf(entry!.requestId);
      expect(entry!.cost).toBe(bill[0]!.costMicros);
      expect(entry!.cost).toBeGreaterThan(2 * 10_000);
    });

    it('admits a message batch at the batch price and settles each request from its results', async () => {
      const { client, id } = await h.client();
      const batch = await client.messages.batches.create({
        requests: [
          {
            custom_id: 'a',
            params: {
              model: 'claude-haiku-5-5',
              max_tokens: 200,
              messages: [{ role: 'user', content: 'one' }],
            },
          },
          {
            custom_id: 'b',
            params: {
              model: 'claude-sonnet-5-5',
              max_tokens: 200,
              messages: [{ role: 'user', content: 'two' }],
            },
          },
        ],
      });
      expect(batch.id).toMatch(/^msgbatch_/);
      let got = await client.messages.batches.retrieve(batch.id);
      for (let i = 0; i < 50 && got.processing_status !== 'ended'; i++) {
        await new Promise((r) => setTimeout(r, 50));
        got = await client.messages.batches.retrieve(batch.id);
      }
      expect(got.processing_status).toBe('ended');
      const results = [];
      for await (const r of await client.messages.batches.results(batch.id)) results.push(r);
      expect(results.map((r) => r.result.type).sort()).toEqual(['succeeded', 'succeeded']);
      const entries = (await ledgerFor(id)).filter((e) => e.outcome === 'ok');
      expect(entries.map((e) => e.requestId).sort()).toEqual([`${batch.id}:a`, `${batch.id}:b`]);
      const bill = h.rt.emulator!.billing.list().filter((e) => e.batchId === batch.id);
      expect(bill).toHaveLength(2);
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      expect(sum(entries.map((e) => e.cost))).toBe(sum(bill.map((b) => b.costMicros)));
      const seat = (await ledgerForScope(id)).seat;
      const budget = await h.api<{ budget: { reserved_micros: number; spent_micros: number } }>(
        'GET',
        `/api/budgets/seat:${seat}`,
      );
      expect(budget.body.budget.reserved_micros).toBe(0);
      expect(budget.body.budget.spent_micros).toBe(sum(bill.map((b) => b.costMicros)));
    });

    it('never crashes on a model name with control characters routed by a rewrite rule', async () => {
      const { key } = await h.client({ team: 'evil' });
      const res = await post(key, '/v1/messages', {
        model: 'x\r\nSet-Cookie: pwn=1',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('set-cookie')).toBeNull();
      expect(res.headers.get('x-chokepoint-model')).toContain('claude-haiku-5-5');
      const health = await fetch(`${h.url}/healthz`);
      expect(health.status).toBe(200);
    });

    async function ledgerForScope(keyId: string): Promise<{ seat: string }> {
      const keys = await h.api<{ keys: Array<{ id: string; seat: string }> }>('GET', '/api/keys');
      return { seat: keys.body.keys.find((k) => k.id === keyId)!.seat };
    }
  });
}
