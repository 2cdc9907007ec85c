import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ADMIN_KEY } from '../../../adapters/emulator/index.ts';
import { sha256 } from '../../../runtime/auth/operators.ts';
import { ADMIN_TOKEN, type Harness, startHarness } from '../../helpers/harness.ts';
import { mixedWorkload, today } from '../reconcile/workload.ts';

type Line = Record<string, unknown> & { msg: string; level: string };
const calls = (h: Harness): Line[] =>
  h.logs.map((l) => JSON.parse(l) as Line).filter((l) => l.msg === 'model call');

describe('request logs', () => {
  let h: Harness;
  let work: Awaited<ReturnType<typeof mixedWorkload>>;
  beforeAll(async () => {
    h = await startHarness();
    work = await mixedWorkload(h);
  }, 60_000);
  afterAll(() => h?.close());

  it('one line per gateway call at info: request id, identity, model, tokens, cost, outcome, timings', async () => {
    expect(calls(h)).toHaveLength(work.requests);
    const { key, id } = await h.client({ team: 'logs', env: 'staging', seat: 'sam', workflow: 'triage' });
    const res = await fetch(`${h.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({
        model: 'claude-haiku-4-5',
        max_tokens: 50,
        messages: [{ role: 'user', content: 'hi [[emulator:output_tokens=20]]' }],
      }),
    });
    const body = (await res.json()) as { usage: { input_tokens: number; output_tokens: number } };
    const requestId = res.headers.get('x-chokepoint-request-id');
    expect(requestId).toMatch(/^req_/);
    const line = calls(h).find((l) => l.requestId === requestId)!;
    const [entry] = await h.rt.store.listLedger({ scope: 'seat:sam' });
    expect(line).toMatchObject({
      level: 'info',
      outcome: 'ok',
      status: 200,
      model: 'claude-haiku-4-5',
      stream: false,
      team: 'logs',
      env: 'staging',
      seat: 'sam',
      workflow: 'triage',
      keyId: id,
      tokens: { input: body.usage.input_tokens, output: 20, cacheRead: 0, cacheWrite5m: 0, cacheWrite1h: 0 },
      cost_micros: entry!.cost,
      ledgerId: entry!.id,
    });
    expect(line.cost_usd).toMatch(/^0\.\d+$/);
    for (const f of ['ms', 'admitMs', 'providerMs']) expect(typeof line[f]).toBe('number');

    const refused = calls(h).filter((l) => l.outcome === 'refused');
    expect(refused.map((l) => l.code).sort()).toEqual([
      'budget_exhausted',
      'invalid_request',
      'killed',
      'unauthenticated',
    ]);
    expect(calls(h).find((l) => l.outcome === 'error')).toMatchObject({
      code: 'overloaded_error',
      status: 529,
    });
  });

  it('writes nothing (and builds nothing) when the level is above info', async () => {
    const q = await startHarness({ logLevel: 'warn' });
    try {
      const { client } = await q.client();
      await client.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'hi' }],
      });
      const bad = new Anthropic({ baseURL: q.url, apiKey: 'cp_nope-0000000000000', maxRetries: 0 });
      await bad.messages
        .create({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
        .catch(() => undefined);
      expect(q.logs.filter((l) => !/"level":"(warn|error)"/.test(l))).toEqual([]);
    } finally {
      await q.close();
    }
  });

  it('never shows an API key, operator token, provider key or Admin key in logs, error bodies or alarms', async () => {
    const viewer = 'cpo_viewer-secret-token-0000000000';
    h.rt.operatorSetup.registry.add({ name: 'v', role: 'viewer' }, sha256(viewer));
    const fakeAnthropic = `sk-ant-api03-${'Z'.repeat(40)}`;
    const wrongOperator = 'cpo_wrong-operator-token-00000000';
    const wrongAdmin = 'sk-ant-admin01-wrong-admin-key-0000000000';
    const bodies: string[] = [];
    const send = async (path: string, init: RequestInit) => {
      const res = await fetch(`${h.url}${path}`, init);
      bodies.push(await res.text());
      return res.status;
    };
    const msg = JSON.stringify({
      model: 'claude-haiku-4-5',
      max_tokens: 5,
      messages: [{ role: 'user', content: 'x' }],
    });
    const json = { 'content-type': 'application/json' };
    // Wrong credentials of every kind, in every place they can be sent.
    expect(
      await send('/v1/messages', {
        method: 'POST',
        headers: { ...json, 'x-api-key': fakeAnthropic },
        body: msg,
      }),
    ).toBe(401);
    expect(
      await send('/v1/messages', {
        method: 'POST',
        headers: { ...json, authorization: `Bearer ${wrongOperator}` },
        body: msg,
      }),
    ).toBe(401);
    expect(
      await send('/v1/messages', {
        method: 'POST',
        headers: { ...json, 'x-api-key': ADMIN_TOKEN },
        body: msg,
      }),
    ).toBe(401);
    expect(
      await send('/v1/messages', {
        method: 'POST',
        headers: { ...json, 'x-api-key': work.keys[0]! },
        body: '{bad',
      }),
    ).toBe(400);
    expect(
      await send('/v1/messages/count_tokens', {
        method: 'POST',
        headers: { ...json, 'x-api-key': work.keys[0]! },
        body: msg,
      }),
    ).toBe(200);
    expect(await send('/api/budgets', { headers: { authorization: `Bearer ${wrongOperator}` } })).toBe(401);
    expect(await send('/api/keys', { headers: { authorization: `Bearer ${viewer}` } })).toBe(403);
    expect(await send('/metrics', { headers: { authorization: `Bearer ${work.keys[0]}` } })).toBe(401);
    expect(await send('/metrics', { headers: { authorization: `Bearer ${viewer}` } })).toBe(200);
    // The Admin API path: a good fetch, then a refused one from the scheduled job (an alarm).
    expect((await h.api('POST', '/api/reconciliations', { day: today() })).status).toBe(201);
    (h.rt.config.provider as { adminApiKey?: string }).adminApiKey = wrongAdmin;
    try {
      const res = await h.api('POST', '/api/reconciliations', { day: today() });
      expect(res.status).toBe(502);
      bodies.push(JSON.stringify(res.body));
      await h.rt.reconcile!.schedule!.trigger(today());
    } finally {
      (h.rt.config.provider as { adminApiKey?: string }).adminApiKey = undefined;
    }
    bodies.push(JSON.stringify((await h.api('GET', '/api/alarms?limit=1000')).body));
    bodies.push(JSON.stringify((await h.api('GET', '/api/reconciliations')).body));
    bodies.push(JSON.stringify((await h.api('GET', '/api/ledger?limit=1000')).body));

    const secrets = [
      ...work.keys,
      ...work.badKeys,
      ADMIN_TOKEN,
      viewer,
      wrongOperator,
      fakeAnthropic,
      h.rt.emulatorApiKey!,
      DEFAULT_ADMIN_KEY,
      wrongAdmin,
    ];
    const haystack = [...h.logs, ...bodies].join('\n');
    expect(haystack).toContain('could not run: the provider refused the cost report (401)');
    for (const s of secrets) expect(haystack.includes(s), `leaked: ${s.slice(0, 8)}…`).toBe(false);
    // Not even their distinctive tails (a masked prefix is fine, the rest is not).
    for (const s of secrets)
      expect(haystack.includes(s.slice(-16)), `leaked tail of ${s.slice(0, 8)}…`).toBe(false);
  });
});
