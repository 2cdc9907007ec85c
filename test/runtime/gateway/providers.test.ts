import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator, type Listening } from '../../../adapters/emulator/index.ts';
import { ConfigError } from '../../../runtime/config/error.ts';
import { resolveConfig } from '../../../runtime/config/load.ts';
import { PriceTable } from '../../../runtime/pricing/pricing.ts';
import { type Harness, startHarness } from '../../helpers/harness.ts';

type Entry = Record<string, any>;

describe('the provider mix: one call path, failover as a new admission', () => {
  let h: Harness;
  let backup: Emulator;
  let backupAt: Listening;
  let primary: Emulator;

  beforeAll(async () => {
    backup = createEmulator({ apiKey: 'sk-backup' });
    backupAt = await backup.listen();
    h = await startHarness({
      config: {
        providers: { backup: { kind: 'emulator', baseUrl: backupAt.url, apiKey: 'sk-backup' } },
        routing: {
          classes: { cheap: ['claude-haiku-4-5'], premium: ['claude-opus-4-5'] },
          providers: { premium: ['anthropic', 'backup'] },
          rules: [{ match: { team: 'pinned' }, allow: ['cheap', 'premium'], providers: ['backup'] }],
        },
      },
    });
    primary = h.rt.emulator!;
  });
  afterAll(async () => {
    await h?.close();
    await backupAt?.close();
  });
  beforeEach(() => {
    primary.clearFaults();
    backup.clearFaults();
  });

  const ledgerOf = async (keyId: string): Promise<Entry[]> => {
    const res = await h.api<{ entries: Entry[] }>('GET', '/api/ledger?limit=1000');
    return res.body.entries.filter((e) => e.identity.keyId === keyId).reverse();
  };
  const ask = (client: Anthropic, model: string) =>
    client.messages.create({ model, max_tokens: 64, messages: [{ role: 'user', content: 'Hello there' }] });

  it('fails over to the next provider when the first answers 529, ledgering both attempts', async () => {
    const { client, id } = await h.client({ team: 'mix' });
    primary.injectFault({ status: 529 });
    const before = backup.billing.total();
    const res = await ask(client, 'claude-opus-4-5').withResponse();
    expect(res.data.type).toBe('message');
    expect(res.response.headers.get('x-chokepoint-provider')).toBe('backup');
    const [failed, served] = await ledgerOf(id);
    expect(failed).toMatchObject({ provider: 'anthropic', outcome: 'error', cost: 0 });
    expect(served).toMatchObject({ provider: 'backup', outcome: 'ok' });
    // The backup's own bill is what the ledger charged, to the µ$.
    expect(served!.cost).toBe(backup.billing.total() - before);
    expect(served!.cost).toBeGreaterThan(0);
  });

  it('fails over when the first provider cannot be reached within its failures, and answers the last error when all fail', async () => {
    const { key, id } = await h.client({ team: 'mix2' });
    const client = new Anthropic({ baseURL: h.url, apiKey: key, maxRetries: 0 });
    primary.injectFault({ status: 500 });
    backup.injectFault({ status: 503 });
    const err = await ask(client, 'claude-opus-4-5').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(503);
    const entries = await ledgerOf(id);
    expect(entries.map((e) => [e.provider, e.outcome, e.cost])).toEqual([
      ['anthropic', 'error', 0],
      ['backup', 'error', 0],
    ]);
  });

  it('does not fail over a client error: a 400 from the provider is the answer', async () => {
    const { client, id } = await h.client({ team: 'mix3' });
    primary.injectFault({ status: 400 });
    const err = await ask(client, 'claude-opus-4-5').catch((e: unknown) => e);
    expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(400);
    expect((await ledgerOf(id)).map((e) => e.provider)).toEqual(['anthropic']);
  });

  it('admits a failover anew once the failed attempt is released: the budget holds one worst case at a time', async () => {
    const { client, id } = await h.client({ team: 'mix4', seat: 'tight' });
    // Room for one worst case of this call, not two held at once: the first attempt is released
    // before the second is admitted, so the failover still fits — the ledger shows both.
    const set = await h.api('POST', '/api/budgets/seat:tight/ceiling', { amount: '0.002', reason: 'test' });
    expect(set.status).toBe(200);
    primary.injectFault({ status: 529 });
    const res = await ask(client, 'claude-opus-4-5');
    expect(res.type).toBe('message');
    const entries = await ledgerOf(id);
    expect(entries.map((e) => e.provider)).toEqual(['anthropic', 'backup']);
    // Spent: exactly the served call, within the ceiling.
    const seat = await h.api<{ budget: Entry }>('GET', '/api/budgets/seat:tight');
    expect(seat.body.budget.spent_micros).toBe(entries[1]!.cost);
    expect(seat.body.budget.spent_micros).toBeLessThanOrEqual(2_000);
  });

  it('sends a rule-pinned identity to its provider only, and models without a list to the default', async () => {
    const pinned = await h.client({ team: 'pinned' });
    const res = await ask(pinned.client, 'claude-haiku-4-5').withResponse();
    expect(res.response.headers.get('x-chokepoint-provider')).toBe('backup');
    const plain = await h.client({ team: 'plain' });
    const res2 = await ask(plain.client, 'claude-haiku-4-5').withResponse();
    expect(res2.response.headers.get('x-chokepoint-provider')).toBe('anthropic');
    expect((await ledgerOf(pinned.id))[0]).toMatchObject({ provider: 'backup', outcome: 'ok' });
  });

  it('sums spend by provider', async () => {
    const res = await h.api<{ rows: Entry[] }>('GET', '/api/spend?by=provider');
    expect(res.status).toBe(200);
    const keys = res.body.rows.map((r) => r.key);
    expect(keys).toEqual(expect.arrayContaining(['anthropic', 'backup']));
  });
});

describe('providers in the config', () => {
  const resolve = (raw: Record<string, unknown>, env: Record<string, string> = {}) =>
    resolveConfig({ dataDir: '/tmp/cp-cfg', ...raw }, { env });

  it('reads kind-specific fields, env: values and the OpenAI key from the environment', () => {
    const c = resolve(
      {
        providers: {
          bedrock: { kind: 'emulator', region: 'eu-west-1', secret: 'env:AWS_SECRET' },
          gpt: { kind: 'emulator', apiKey: 'env:MY_KEY', timeout: '30s' },
        },
      },
      { AWS_SECRET: 's3cr3t', MY_KEY: 'k' },
    );
    expect(c.providers.bedrock).toMatchObject({
      kind: 'emulator',
      options: { region: 'eu-west-1', secret: 's3cr3t' },
    });
    expect(c.providers.gpt).toMatchObject({ apiKey: 'k', timeoutMs: 30_000 });
  });

  it('names what is wrong: the reserved name, an unset variable, an unknown provider in routing', () => {
    let err: unknown;
    try {
      resolve({
        providers: { anthropic: { kind: 'emulator' }, b: { kind: 'emulator', key: 'env:NOPE' } },
        routing: {
          classes: { cheap: ['claude-haiku-4-5'] },
          providers: { cheap: ['b', 'ghost'], nope: ['b'] },
        },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    expect(problems).toContain('providers.anthropic: "anthropic" is the default provider');
    expect(problems).toContain('providers.b.key: NOPE is not set in the environment');
    expect(problems).toContain('routing.providers.cheap.1: unknown provider "ghost"');
    expect(problems).toContain('routing.providers.nope: no model class "nope"');
  });

  it('refuses an unknown provider kind, listing the known ones', () => {
    expect(() => resolve({ providers: { x: { kind: 'carrier-pigeon' } } })).toThrow(
      /unknown provider "carrier-pigeon"/,
    );
  });
});

describe('prices per provider', () => {
  const table = new PriceTable([
    {
      model: 'claude-x',
      aliases: [],
      from: '2026-01-01',
      rates: { input: 1, cacheWrite5m: 1.25, cacheWrite1h: 2, cacheRead: 0.1, output: 5 },
      maxOutputTokens: 1000,
    },
    {
      model: 'claude-x',
      provider: 'bedrock',
      aliases: [],
      from: '2026-01-01',
      rates: { input: 2, cacheWrite5m: 2.5, cacheWrite1h: 4, cacheRead: 0.2, output: 10 },
      maxOutputTokens: 1000,
    },
    {
      model: 'gpt-x',
      provider: 'openai',
      aliases: [],
      from: '2026-01-01',
      rates: { input: 1, cacheWrite5m: 1, cacheWrite1h: 1, cacheRead: 0.1, output: 4 },
      maxOutputTokens: 1000,
    },
  ]);
  const usage = { input: 1_000_000, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 };
  const at = Date.parse('2026-06-01T00:00:00Z');

  it("uses a provider's own row, else Anthropic's list; never another provider's", () => {
    expect(table.cost('claude-x', usage, at)).toBe(1_000_000);
    expect(table.cost('claude-x', usage, at, { provider: 'bedrock' })).toBe(2_000_000);
    expect(table.cost('claude-x', usage, at, { provider: 'vertex' })).toBe(1_000_000);
    expect(table.lookup('gpt-x', at, 'vertex')).toBeUndefined();
    expect(table.lookup('gpt-x', at)?.provider).toBe('openai');
  });

  it('prices a regional endpoint at 1.1x, rounded up once', () => {
    expect(table.cost('claude-x', usage, at, { provider: 'vertex', regional: true })).toBe(1_100_000);
    expect(table.cost('claude-x', { ...usage, input: 3 }, at, { regional: true })).toBe(4);
  });
});

describe('a provider with a budget of its own: committed spend first, then the next', () => {
  let h: Harness;
  let backup: Emulator;
  let backupAt: Listening;
  beforeAll(async () => {
    backup = createEmulator({ apiKey: 'sk-backup' });
    backupAt = await backup.listen();
    h = await startHarness({
      config: {
        providers: {
          committed: {
            kind: 'emulator',
            baseUrl: backupAt.url,
            apiKey: 'sk-backup',
            budget: { ceiling: '0.004', window: 'day' },
          },
        },
        routing: {
          rules: [
            {
              match: { team: 'aws-commit' },
              allow: ['cheap', 'standard', 'premium'],
              providers: ['committed', 'anthropic'],
              providerChoice: 'budget',
            },
            {
              match: { team: 'commit-only' },
              allow: ['cheap', 'standard', 'premium'],
              providers: ['committed'],
            },
          ],
        },
      },
    });
  });
  afterAll(async () => {
    await h?.close();
    await backupAt?.close();
  });

  const ask = (client: Anthropic) =>
    client.messages
      .create({
        model: 'claude-sonnet-5-5',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'Spend [[emulator:output_tokens=60]]' }],
      })
      .withResponse();

  it('sends calls to the committed provider while its budget has room, then to the next; never past it', async () => {
    const { client, id } = await h.client({ team: 'aws-commit' });
    const served: string[] = [];
    for (let i = 0; i < 8; i++)
      served.push((await ask(client)).response.headers.get('x-chokepoint-provider')!);
    expect(served[0]).toBe('committed');
    expect(served.at(-1)).toBe('anthropic');
    // Once it moved on, it stayed moved: the committed budget had no room left.
    expect(served.slice(served.indexOf('anthropic')).every((p) => p === 'anthropic')).toBe(true);
    const budget = await h.api<{ budget: Entry }>('GET', '/api/budgets/provider:committed');
    expect(budget.body.budget.ceiling_micros).toBe(4_000);
    expect(budget.body.budget.spent_micros).toBeLessThanOrEqual(4_000);
    expect(budget.body.budget.spent_micros).toBe(backup.billing.total());
    const res = await h.api<{ entries: Entry[] }>('GET', '/api/ledger?scope=provider:committed&limit=100');
    expect(res.body.entries.every((e) => e.provider === 'committed' && e.identity.keyId === id)).toBe(true);
  });

  it('refuses a call whose only provider has no budget room left, naming that budget', async () => {
    const { client } = await h.client({ team: 'commit-only' });
    const err = (await ask(client).catch((e: unknown) => e)) as InstanceType<typeof Anthropic.APIError>;
    expect(err.status).toBe(429);
    expect(JSON.stringify(err.error)).toContain('provider:committed');
  });

  it('a kill switch on a provider holds on its next call', async () => {
    await h.api('POST', '/api/budgets/provider:committed/ceiling', { amount: '1.00', reason: 'more commit' });
    const { client } = await h.client({ team: 'commit-only' });
    expect((await ask(client)).response.headers.get('x-chokepoint-provider')).toBe('committed');
    const kill = await h.api('POST', '/api/kill-switches', {
      scope: 'provider:committed',
      reason: 'incident at the cloud',
    });
    expect(kill.status).toBeLessThan(300);
    const err = (await ask(client).catch((e: unknown) => e)) as InstanceType<typeof Anthropic.APIError>;
    expect(err.status).toBe(403);
  });
});
