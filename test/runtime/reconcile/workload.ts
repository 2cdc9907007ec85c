import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import type { Harness } from '../../helpers/harness.ts';

export const LONG_SYSTEM = `You are a careful support agent for Acme. ${'Policy: be precise, cite the ticket id, never guess. '.repeat(120)}`;

export const today = () => new Date().toISOString().slice(0, 10);

export async function until<T>(fn: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Every kind of call the gateway sees, through the real Anthropic SDK: plain, streamed, cached
 * (a 5-minute write, then reads; a 1-hour write), a stream the client abandons, a provider error,
 * refusals (budget, kill switch, unknown model) and a bad key. Returns once the provider's billing
 * record and the ledger have both settled every billed call.
 */
export async function mixedWorkload(
  h: Harness,
  opts: { team?: string } = {},
): Promise<{ billed: number; keys: string[]; badKeys: string[]; requests: number }> {
  const team = opts.team ?? 'recon';
  const { client, key } = await h.client({ team, workflow: 'triage' });
  const billedBefore = h.rt.emulator!.billing.calls;
  let billed = 0;
  await client.messages.create({
    model: 'claude-haiku-4-5',
    max_tokens: 100,
    messages: [{ role: 'user', content: 'hello [[emulator:output_tokens=40]]' }],
  });
  billed++;
  await client.messages
    .stream({
      model: 'claude-sonnet-4-6',
      max_tokens: 400,
      messages: [{ role: 'user', content: 'tell me [[emulator:output_tokens=300]]' }],
    })
    .finalMessage();
  billed++;
  for (let i = 0; i < 3; i++) {
    const m = await client.messages.create({
      model: 'claude-sonnet-4-6',
      max_tokens: 60,
      system: [{ type: 'text', text: LONG_SYSTEM.repeat(2), cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: `Status of ticket ${i}?` }],
    });
    billed++;
    if (i > 0 && !(m.usage.cache_read_input_tokens! > 0)) throw new Error('the cache was not read');
  }
  await client.messages
    .stream({
      model: 'claude-opus-4-6',
      max_tokens: 200,
      system: [
        { type: 'text', text: LONG_SYSTEM.repeat(3), cache_control: { type: 'ephemeral', ttl: '1h' } },
      ],
      messages: [{ role: 'user', content: 'summarise [[emulator:output_tokens=120]]' }],
    })
    .finalMessage();
  billed++;

  // A stream the client walks away from: the provider bills what it generated, so does the ledger.
  const ctrl = new AbortController();
  const res = await fetch(`${h.url}/v1/messages`, {
    method: 'POST',
    signal: ctrl.signal,
    headers: { 'x-api-key': key, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({
      model: 'claude-haiku-4-5',
      max_tokens: 2000,
      stream: true,
      messages: [{ role: 'user', content: 'go [[emulator:output_tokens=800]] [[emulator:delta_delay=1]]' }],
    }),
  });
  await res.body!.getReader().read();
  ctrl.abort();
  billed++;

  // A provider error (not billed, released in the ledger).
  const noRetry = new Anthropic({ baseURL: h.url, apiKey: key, maxRetries: 0 });
  const failed = await noRetry.messages
    .create({
      model: 'claude-haiku-4-5',
      max_tokens: 10,
      messages: [{ role: 'user', content: 'x [[emulator:error=529]]' }],
    })
    .catch((e) => e);
  if (failed.status !== 529) throw new Error(`expected a 529, got ${failed.status}`);

  // Refusals: a tight seat budget, a kill switch, an unknown model, a bad key.
  const seat = `tight-${Date.now()}`;
  const tight = await h.client({ team, seat });
  await h.api('POST', `/api/budgets/seat:${seat}/ceiling`, {
    amount: '0.0001',
    reason: 'test',
  });
  const refusedBudget = await tight.client.messages
    .create({ model: 'claude-opus-4-6', max_tokens: 4000, messages: [{ role: 'user', content: 'hi' }] })
    .catch((e) => e);
  if (refusedBudget.status !== 429) throw new Error(`expected a 429, got ${refusedBudget.status}`);
  const killedTeam = `${team}-killed`;
  const victim = await h.client({ team: killedTeam });
  await h.api('POST', '/api/kill-switches', { scope: `team:${killedTeam}`, reason: 'test' });
  const killed = await victim.client.messages
    .create({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
    .catch((e) => e);
  if (killed.status !== 403) throw new Error(`expected a 403, got ${killed.status}`);
  const unknown = await client.messages
    .create({ model: 'claude-nonexistent-9', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
    .catch((e) => e);
  if (unknown.status !== 400) throw new Error(`expected a 400, got ${unknown.status}`);
  const stranger = new Anthropic({ baseURL: h.url, apiKey: 'cp_not-a-real-key-0123456789', maxRetries: 0 });
  const unauth = await stranger.messages
    .create({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
    .catch((e) => e);
  if (unauth.status !== 401) throw new Error(`expected a 401, got ${unauth.status}`);

  // Both sides settled: the provider billed every call, and the ledger holds them all.
  await until(() => h.rt.emulator!.billing.calls - billedBefore >= billed || undefined);
  await until(async () => {
    const entries = await h.rt.store.listLedger({ since: Date.now() - 86_400_000, limit: 10_000 });
    return entries.filter((e) => e.cost > 0).length >= h.rt.emulator!.billing.calls ? true : undefined;
  });
  // Requests made to /v1/messages: 1 + 1 + 3 + 1 + 1 (abandoned) + 1 (529) + budget + kill + unknown model + bad key.
  return {
    billed,
    keys: [key, tight.key, victim.key],
    badKeys: ['cp_not-a-real-key-0123456789'],
    requests: 12,
  };
}

/** A local HTTP receiver for webhooks: every JSON body it got. */
export async function webhookReceiver(): Promise<{ url: string; bodies: unknown[]; close(): Promise<void> }> {
  const bodies: unknown[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/secret-path-token`,
    bodies,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
