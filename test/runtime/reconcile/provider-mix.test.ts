import { AnthropicBedrock } from '@anthropic-ai/bedrock-sdk';
import { AnthropicVertex } from '@anthropic-ai/vertex-sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../../helpers/harness.ts';

type Entry = Record<string, any>;

/**
 * Reconciliation against each bill of the provider mix: calls on every face, then the day
 * reconciled against the Anthropic Admin API (fetched), the AWS CUR, the GCP billing export and
 * OpenAI's costs — each compared with that provider's calls in the ledger only. The bills are
 * the emulator's own exports; one with a day missing raises the alarm.
 */
describe('reconciliation per provider (the emulator’s bills)', () => {
  let h: Harness;
  let day: string;
  const emulatorGet = async (path: string, auth: Record<string, string>) => {
    const res = await fetch(`${h.rt.emulatorUrl}${path}`, { headers: auth });
    expect(res.status).toBe(200);
    return res.text();
  };

  beforeAll(async () => {
    h = await startHarness();
    day = new Date(h.rt.now()).toISOString().slice(0, 10);
    const { key } = await h.client({ team: 'recon-mix' });
    const ask = { max_tokens: 64, messages: [{ role: 'user' as const, content: 'Bill me' }] };
    await h
      .client({ team: 'recon-mix' })
      .then(({ client }) => client.messages.create({ model: 'claude-sonnet-4-6', ...ask }));
    // Above the one-cent floor of the tolerance, so a bill missing it is a divergence.
    await new AnthropicBedrock({
      baseURL: `${h.url}/bedrock`,
      awsRegion: 'us-east-1',
      apiKey: key,
    }).messages.create({
      model: 'us.anthropic.claude-sonnet-4-6',
      max_tokens: 4000,
      messages: [{ role: 'user', content: 'Bill me a lot [[emulator:output_tokens=2000]]' }],
    });
    await new AnthropicVertex({
      baseURL: `${h.url}/vertex`,
      region: 'global',
      projectId: 'acme',
      accessToken: key,
      authClient: { getRequestHeaders: async () => new Headers({ authorization: `Bearer ${key}` }) } as never,
    }).messages.create({ model: 'claude-haiku-4-5', ...ask });
    await new OpenAI({ baseURL: `${h.url}/v1`, apiKey: key }).chat.completions.create({
      model: 'gpt-5.4-mini',
      messages: [{ role: 'user', content: 'Bill me' }],
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  const reconcile = (body: Record<string, unknown>) =>
    h.api<Entry>('POST', '/api/reconciliations', { day, ...body });
  it('matches the Anthropic Admin API’s cost report to the anthropic calls only', async () => {
    const res = await reconcile({});
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ provider: 'anthropic', verdict: 'ok' });
    expect(res.body.total.provider_usd).toBe(res.body.total.ledger_usd);
    expect(Number(res.body.total.ledger_usd)).toBeGreaterThan(0);
  });

  it('matches the AWS CUR (Bedrock) and the GCP export (Vertex) to their calls', async () => {
    const control = { 'x-api-key': h.rt.emulatorAdminKey! };
    const cur = await emulatorGet(`/_emulator/exports/aws-cur?day=${day}`, control);
    const gcp = await emulatorGet(`/_emulator/exports/gcp-billing?day=${day}`, control);
    const bedrock = await reconcile({ report: cur });
    expect(bedrock.body).toMatchObject({ provider: 'bedrock', verdict: 'ok', source: { format: 'aws-cur' } });
    expect(bedrock.body.total.ledger_usd).toBe(bedrock.body.total.provider_usd);
    expect(bedrock.body.rows.map((r: Entry) => r.model)).toEqual(['claude-sonnet-4-6']);
    const vertex = await reconcile({ report: gcp });
    expect(vertex.body).toMatchObject({
      provider: 'vertex',
      verdict: 'ok',
      source: { format: 'gcp-billing' },
    });
    expect(vertex.body.rows.map((r: Entry) => r.model)).toEqual(['claude-haiku-4-5-20251001']);
  });

  it('matches OpenAI’s costs to the openai calls', async () => {
    const start = Math.floor(Date.parse(`${day}T00:00:00Z`) / 1000);
    const costs = await emulatorGet(
      `/openai/v1/organization/costs?start_time=${start}&end_time=${start + 86_400}&group_by=line_item`,
      { authorization: `Bearer ${h.rt.emulatorAdminKey}` },
    );
    const res = await reconcile({ report: costs });
    expect(res.body).toMatchObject({ provider: 'openai', verdict: 'ok', source: { format: 'openai-costs' } });
    expect(Number(res.body.total.ledger_usd)).toBeGreaterThan(0);
  });

  it('raises the alarm when a bill is missing the day’s Bedrock lines', async () => {
    const control = { 'x-api-key': h.rt.emulatorAdminKey! };
    const cur = await emulatorGet(`/_emulator/exports/aws-cur?day=${day}`, control);
    // The same bill with the day's lines moved to the day before: a CUR that covers the month
    // around the day but holds none of its Bedrock usage.
    const before = new Date(Date.parse(`${day}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
    const res = await reconcile({ report: cur.replaceAll(day, before), format: 'aws-cur' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ provider: 'bedrock', verdict: 'divergent' });
    const alarms = await h.api<{ alarms: Entry[] }>('GET', '/api/alarms');
    expect(alarms.body.alarms.some((a) => a.kind === 'reconciliation')).toBe(true);
  });

  it('names an unknown provider', async () => {
    const res = await reconcile({ provider: 'carrier-pigeon' });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('provider');
  });
});
