import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createEmulator,
  type Emulator,
  type Listening,
  priceCall,
  resolveModel,
} from '../../adapters/emulator/index.ts';

const T0 = Date.parse('2026-12-02T12:00:00Z');
let clock = T0;
let emu: Emulator;
let server: Listening;
let client: Anthropic;

beforeAll(async () => {
  emu = createEmulator({ now: () => clock, batchDelayMs: 60_000 });
  server = await emu.listen();
  client = new Anthropic({ baseURL: server.url, apiKey: 'sk-emulator-local', maxRetries: 0 });
});
afterAll(() => server.close());
beforeEach(() => {
  clock = T0;
  emu.billing.clear();
});

const params = (content: string, extra: Record<string, unknown> = {}) =>
  ({ model: 'claude-opus-5-5', max_tokens: 100, messages: [{ role: 'user', content }], ...extra }) as never;

describe('Message Batches API', () => {
  it('creates a batch in progress, ends it after batchDelayMs, and serves JSONL results billed at 50%', async () => {
    const batch = await client.messages.batches.create(
      {
        requests: [
          { custom_id: 'ok-1', params: params('first [[emulator:output_tokens=20]]') },
          { custom_id: 'bad-2', params: params('second', { max_tokens: 'lots' }) },
          { custom_id: 'fast-3', params: params('third', { speed: 'fast' }) },
        ],
      },
      { headers: { 'x-chokepoint-request-id': 'cp-req-1' } },
    );
    expect(batch).toMatchObject({
      type: 'message_batch',
      processing_status: 'in_progress',
      request_counts: { processing: 3, succeeded: 0, errored: 0, canceled: 0, expired: 0 },
      results_url: null,
      ended_at: null,
    });
    expect(batch.id).toMatch(/^msgbatch_01/);
    expect((await client.messages.batches.retrieve(batch.id)).processing_status).toBe('in_progress');
    expect(emu.billing.calls).toBe(0);
    clock = T0 + 60_000;
    const ended = await client.messages.batches.retrieve(batch.id);
    expect(ended).toMatchObject({
      processing_status: 'ended',
      request_counts: { processing: 0, succeeded: 1, errored: 2 },
      results_url: `${server.url}/v1/messages/batches/${batch.id}/results`,
    });
    const results: Anthropic.Messages.MessageBatchIndividualResponse[] = [];
    for await (const r of await client.messages.batches.results(batch.id)) results.push(r);
    expect(results.map((r) => [r.custom_id, r.result.type])).toEqual([
      ['ok-1', 'succeeded'],
      ['bad-2', 'errored'],
      ['fast-3', 'errored'],
    ]);
    const ok = results[0]!.result as Anthropic.Messages.MessageBatchSucceededResult;
    expect(ok.message.usage).toMatchObject({ service_tier: 'batch', output_tokens: 20 });
    const bad = results[1]!.result as Anthropic.Messages.MessageBatchErroredResult;
    expect(bad.error).toMatchObject({
      type: 'error',
      error: { type: 'invalid_request_error', message: 'max_tokens: Input should be a valid integer' },
    });
    const [entry] = emu.billing.list();
    expect(emu.billing.calls).toBe(1);
    expect(entry).toMatchObject({
      serviceTier: 'batch',
      batchId: batch.id,
      customId: 'ok-1',
      clientRequestId: 'cp-req-1',
      id: ok.message.id,
    });
    const full = priceCall(resolveModel('claude-opus-5-5')!, entry!.usage).micros;
    expect(entry!.costMicros).toBe(Math.ceil(full / 2));
  });

  it('ends at once with the default delay, on POST /_emulator/batches/{id}/end, and lists newest first', async () => {
    const a = await client.messages.batches.create({ requests: [{ custom_id: 'a', params: params('a') }] });
    const b = await client.messages.batches.create({ requests: [{ custom_id: 'b', params: params('b') }] });
    const res = await fetch(`${server.url}/_emulator/batches/${a.id}/end`, {
      method: 'POST',
      headers: { 'x-api-key': 'sk-emulator-local' },
    });
    expect((await res.json()).processing_status).toBe('ended');
    const page = await client.messages.batches.list({ limit: 1 });
    expect(page.data[0]!.id).toBe(b.id);
    expect(page.has_more).toBe(true);
    const instant = createEmulator({ now: () => T0 });
    const h = { 'x-api-key': 'sk-emulator-local', 'anthropic-version': '2023-06-01' };
    const created = await (
      await instant.fetch(
        new Request('http://emulator/v1/messages/batches', {
          method: 'POST',
          headers: h,
          body: JSON.stringify({ requests: [{ custom_id: 'x', params: params('x') }] }),
        }),
      )
    ).json();
    expect(created.processing_status).toBe('in_progress');
    const got = await (
      await instant.fetch(new Request(`http://emulator/v1/messages/batches/${created.id}`, { headers: h }))
    ).json();
    expect(got.processing_status).toBe('ended');
  });

  it('cancels (requests canceled, not billed) and deletes only ended batches', async () => {
    const batch = await client.messages.batches.create({
      requests: [{ custom_id: 'c', params: params('c') }],
    });
    await expect(client.messages.batches.delete(batch.id)).rejects.toBeInstanceOf(Anthropic.BadRequestError);
    const canceling = await client.messages.batches.cancel(batch.id);
    expect(canceling.processing_status).toBe('canceling');
    expect(canceling.cancel_initiated_at).not.toBeNull();
    const ended = await client.messages.batches.retrieve(batch.id);
    expect(ended).toMatchObject({ processing_status: 'ended', request_counts: { canceled: 1 } });
    expect(emu.billing.calls).toBe(0);
    expect(await client.messages.batches.delete(batch.id)).toEqual({
      id: batch.id,
      type: 'message_batch_deleted',
    });
    await expect(client.messages.batches.retrieve(batch.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });

  it('validates the batch envelope synchronously', async () => {
    const bad = (requests: unknown) => client.messages.batches.create({ requests } as never).catch((e) => e);
    expect((await bad([])).status).toBe(400);
    expect((await bad([{ custom_id: 'has space', params: params('x') }])).error.error.message).toMatch(
      /custom_id/,
    );
    expect(
      (
        await bad([
          { custom_id: 'd', params: params('x') },
          { custom_id: 'd', params: params('y') },
        ])
      ).error.error.message,
    ).toMatch(/unique/);
  });
});
