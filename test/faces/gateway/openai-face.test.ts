import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../../helpers/harness.ts';

type Entry = Record<string, any>;

/**
 * The gateway's OpenAI face driven by the official `openai` SDK: GPT models to the OpenAI
 * provider (the real adapter against the emulator's OpenAI face) and Claude models translated to
 * the Messages API, both through the one call path. The ledger equals each emulated provider's
 * bill to the µ$.
 */
describe('OpenAI face (the official openai SDK through the gateway)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const sdk = (key: string, maxRetries = 0) =>
    new OpenAI({ baseURL: `${h.url}/v1`, apiKey: key, maxRetries });
  const ledgerOf = async (keyId: string): Promise<Entry[]> => {
    const res = await h.api<{ entries: Entry[] }>('GET', '/api/ledger?limit=1000');
    return res.body.entries.filter((e) => e.identity.keyId === keyId).reverse();
  };
  const bill = (p: 'openai' | 'anthropic') => h.rt.emulator!.billing.total(p);
  const sum = (entries: Entry[]) => entries.reduce((s, e) => s + e.cost, 0);

  it('serves GPT chat completions, streamed or not, ledgered under openai at the bill', async () => {
    const { key, id } = await h.client({ team: 'gpt' });
    const client = sdk(key);
    const before = bill('openai');
    const plain = await client.chat.completions.create({
      model: 'gpt-5.4-mini',
      messages: [{ role: 'user', content: 'Say hello' }],
    });
    expect(plain.object).toBe('chat.completion');
    expect(plain.usage?.total_tokens).toBeGreaterThan(0);
    // Streamed without include_usage: the gateway learns the usage, the client sees none.
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of await client.chat.completions.create({
      model: 'gpt-5.4-mini',
      messages: [{ role: 'user', content: 'Stream hello' }],
      stream: true,
    })) {
      chunks.push(c);
    }
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.every((c) => !c.usage && c.choices.length > 0)).toBe(true);
    // Asked for: the usage chunk comes as OpenAI sends it.
    const withUsage: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of await client.chat.completions.create({
      model: 'gpt-5.4-mini',
      messages: [{ role: 'user', content: 'Stream hello' }],
      stream: true,
      stream_options: { include_usage: true },
    })) {
      withUsage.push(c);
    }
    expect(withUsage.at(-1)?.usage?.completion_tokens).toBeGreaterThan(0);
    const entries = await ledgerOf(id);
    expect(entries.map((e) => [e.provider, e.outcome, e.name])).toEqual([
      ['openai', 'ok', 'gpt-5.4-mini'],
      ['openai', 'ok', 'gpt-5.4-mini'],
      ['openai', 'ok', 'gpt-5.4-mini'],
    ]);
    expect(entries.every((e) => e.tokens.output > 0)).toBe(true);
    expect(sum(entries)).toBe(bill('openai') - before);
  });

  it('serves GPT responses (streamed and not) and embeddings', async () => {
    const { key, id } = await h.client({ team: 'gpt-r' });
    const client = sdk(key);
    const before = bill('openai');
    const r = await client.responses.create({
      model: 'gpt-5.4',
      input: 'Write one line',
      max_output_tokens: 200,
    });
    expect(r.object).toBe('response');
    const stream = await client.responses.create({
      model: 'gpt-5.4',
      input: 'Stream one line',
      stream: true,
    });
    let done: OpenAI.Responses.Response | undefined;
    for await (const ev of stream) if (ev.type === 'response.completed') done = ev.response;
    expect(done?.usage?.output_tokens).toBeGreaterThan(0);
    const emb = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['one', 'two'] });
    expect(emb.data).toHaveLength(2);
    const entries = await ledgerOf(id);
    expect(entries.map((e) => e.name)).toEqual(['gpt-5.4', 'gpt-5.4', 'text-embedding-3-small']);
    expect(sum(entries)).toBe(bill('openai') - before);
  });

  it('translates a Claude model: chat and responses answers, streamed too, under the Anthropic bill', async () => {
    const { key, id } = await h.client({ team: 'claude-oa' });
    const client = sdk(key);
    const before = bill('anthropic');
    const chat = await client.chat.completions.create({
      model: 'claude-sonnet-4-6',
      max_completion_tokens: 100,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hello Claude' },
      ],
    });
    expect(chat.choices[0]?.message.content).toBeTruthy();
    expect(chat.model).toBe('claude-sonnet-4-6');
    let text = '';
    for await (const c of await client.chat.completions.create({
      model: 'claude-sonnet-4-6',
      messages: [{ role: 'user', content: 'Stream, Claude' }],
      stream: true,
    })) {
      text += c.choices[0]?.delta.content ?? '';
    }
    expect(text.length).toBeGreaterThan(0);
    const resp = await client.responses.create({ model: 'claude-sonnet-4-6', input: 'Respond, Claude' });
    expect(resp.output_text.length).toBeGreaterThan(0);
    const entries = await ledgerOf(id);
    expect(entries.map((e) => [e.provider, e.name, e.outcome])).toEqual([
      ['anthropic', 'claude-sonnet-4-6', 'ok'],
      ['anthropic', 'claude-sonnet-4-6', 'ok'],
      ['anthropic', 'claude-sonnet-4-6', 'ok'],
    ]);
    expect(sum(entries)).toBe(bill('anthropic') - before);
  });

  it('lists GPT and Claude models in OpenAI’s format', async () => {
    const { key } = await h.client({ team: 'gpt' });
    const ids: string[] = [];
    for await (const m of sdk(key).models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(['gpt-5.4-mini', 'claude-sonnet-4-6']));
  });

  it('refuses a budget overrun with the SDK’s typed error, our code, in one attempt', async () => {
    const { key, id } = await h.client({ team: 'gpt-tight', seat: 'gpt-tight' });
    await h.api('POST', '/api/budgets/seat:gpt-tight/ceiling', { amount: '0.0001', reason: 'test' });
    const err = await sdk(key, 3)
      .chat.completions.create({ model: 'gpt-5.4', messages: [{ role: 'user', content: 'Too dear' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const e = err as InstanceType<typeof OpenAI.RateLimitError>;
    expect(e.code).toBe('budget_exhausted');
    expect((e.error as Entry).chokepoint.code).toBe('budget_exhausted');
    // One attempt: the SDK's retries (3 allowed) did not happen.
    expect((await ledgerOf(id)).map((x) => x.code)).toEqual(['budget_exhausted']);
  });

  it('answers bad input with a 400 naming the field, before anything is reserved', async () => {
    const { key, id } = await h.client({ team: 'gpt' });
    const err = await sdk(key)
      .chat.completions.create({ model: 'gpt-5.4', messages: 'not a list' as never })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('messages');
    expect((await ledgerOf(id)).filter((x) => x.outcome !== 'ok')).toEqual([]);
  });
});
