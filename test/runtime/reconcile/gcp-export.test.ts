import Anthropic from '@anthropic-ai/sdk';
import { AnthropicVertex } from '@anthropic-ai/vertex-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, DEFAULT_ADMIN_KEY, type Emulator } from '../../../adapters/emulator/index.ts';
import { PriceTable } from '../../../runtime/pricing/pricing.ts';
import {
  classOfSku,
  decimalPico,
  modelOfSku,
  parseGcpBilling,
} from '../../../runtime/reconcile/gcp-export.ts';
import { detectFormat, parseReport, ReportError } from '../../../runtime/reconcile/report.ts';

const prices = new PriceTable();
const HEADER =
  'billing_account_id,service.id,service.description,sku.id,sku.description,usage_start_time,usage_end_time,project.id,location.region,cost,currency,currency_conversion_rate,usage.amount,usage.unit,credits,cost_type';
const row = (o: {
  service?: string;
  sku?: string;
  start?: string;
  cost?: string;
  currency?: string;
  credits?: string;
  type?: string;
  amount?: string;
}) =>
  [
    'A-1',
    'S-1',
    o.service ?? 'Claude Sonnet 5.5',
    'K-1',
    o.sku ?? 'Claude Sonnet 5.5 Input Tokens',
    o.start ?? '2026-12-01 10:00:00 UTC',
    '2026-12-01 11:00:00 UTC',
    'proj-a',
    'global',
    o.cost ?? '1.000000',
    o.currency ?? 'USD',
    '1',
    o.amount ?? '500000',
    'count',
    o.credits ?? '[]',
    o.type ?? 'regular',
  ].join(',');

const whereOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (e instanceof ReportError) return e.where;
    throw e;
  }
  return undefined;
};

describe('a GCP billing export built from the emulator’s bill', () => {
  const token = 'gcp-export-token';
  let emu: Emulator;
  let url: string;
  let close: () => Promise<void>;
  beforeAll(async () => {
    emu = createEmulator({ apiKeys: { vertex: token } });
    ({ url, close } = await emu.listen());
  });
  afterAll(() => close());

  it('reconciles to the emulator’s vertex total to the µ$, per model and token class, Anthropic calls left out', async () => {
    const vertex = (region: string) =>
      new AnthropicVertex({
        baseURL: `${url}/vertex/v1`,
        region,
        projectId: 'p',
        authClient: {
          getRequestHeaders: async () => new Headers({ authorization: `Bearer ${token}` }),
        } as never,
        maxRetries: 0,
      });
    const ask = (model: string, n: number) => ({
      model,
      max_tokens: 200,
      messages: [{ role: 'user' as const, content: `export line ${n} [[emulator:output_tokens=${17 * n}]]` }],
    });
    let n = 0;
    for (const region of ['global', 'us-east5', 'europe-west1']) {
      for (const model of ['claude-haiku-4-5@20251001', 'claude-opus-5-5', 'claude-sonnet-5-5']) {
        await vertex(region).messages.create(ask(model, ++n));
      }
    }
    const direct = new Anthropic({ baseURL: url, apiKey: token, maxRetries: 0 });
    await direct.messages.create(ask('claude-opus-5-5', 99));
    expect(emu.billing.total('anthropic')).toBeGreaterThan(0);

    const day = new Date().toISOString().slice(0, 10);
    const res = await fetch(`${url}/_emulator/exports/gcp-billing?day=${day}`, {
      headers: { 'x-api-key': DEFAULT_ADMIN_KEY },
    });
    const csv = await res.text();
    expect(detectFormat(csv)).toBe('gcp-billing');
    const figures = parseReport(csv, day, { prices });
    expect(figures.format).toBe('gcp-billing');

    let total = 0;
    for (const m of figures.models.values()) total += m.cost;
    expect(total).toBe(emu.billing.total('vertex'));

    const want = new Map<string, { cost: number; output: number; input: number }>();
    for (const e of emu.billing.list()) {
      if (e.provider !== 'vertex') continue;
      const id = prices.lookup(e.model, e.at)!.model;
      const w = want.get(id) ?? { cost: 0, output: 0, input: 0 };
      w.cost += e.costMicros;
      w.output += e.usage.output;
      w.input += e.usage.input;
      want.set(id, w);
    }
    expect([...figures.models.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [id, w] of want) {
      const got = figures.models.get(id)!;
      expect(got.cost).toBe(w.cost);
      expect(got.tokens?.output).toBe(w.output);
      expect(got.tokens?.input).toBe(w.input);
    }
  });
});

describe('reading a GCP billing export', () => {
  const day = '2026-12-01';

  it('sums Claude lines per canonical model, skipping other services and tax lines', () => {
    const csv = [
      HEADER,
      row({ cost: '1.5' }),
      row({ sku: 'Claude Sonnet 5.5 Output Tokens', cost: '2.25', amount: '100' }),
      row({ service: 'Compute Engine', sku: 'N2 Instance Core running in Americas', cost: '9' }),
      row({ cost: '0.3', type: 'tax' }),
      row({ service: 'Claude Haiku 4.5', sku: 'Claude Haiku 4.5 Cache Read Input Tokens', cost: '1.2E-5' }),
    ].join('\n');
    const f = parseGcpBilling(csv, day, { prices });
    expect(f.models.get('claude-sonnet-5-5')).toEqual({
      cost: 3_750_000,
      tokens: { input: 500000, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 100 },
    });
    expect(f.models.get(prices.lookup('claude-haiku-4-5', Date.parse(day))!.model)?.cost).toBe(12);
    expect(f.accounts.get('project:proj-a')).toBe(3_750_012);
    expect(f.covers).toEqual([day]);
  });

  it('names the line of a malformed row, counting the lines inside quoted fields', () => {
    const csv = [HEADER, row({}), row({ credits: '"[{""name"":\n""promo""}]"' }), row({ cost: 'abc' })].join(
      '\n',
    );
    expect(whereOf(() => parseGcpBilling(csv, day, { prices }))).toBe('line 5');
    expect(
      whereOf(() => parseGcpBilling([HEADER, row({ start: 'yesterday' })].join('\n'), day, { prices })),
    ).toBe('line 2');
    expect(
      whereOf(() =>
        parseGcpBilling([HEADER, row({ service: 'Anthropic', sku: 'Claude Tokens' })].join('\n'), day, {
          prices,
        }),
      ),
    ).toBe('line 2');
    expect(
      whereOf(() => parseGcpBilling([HEADER, row({ credits: 'oops' })].join('\n'), day, { prices })),
    ).toBe('line 2');
    expect(whereOf(() => parseGcpBilling([HEADER, 'a,b'].join('\n'), day, { prices }))).toBe('line 2');
    expect(whereOf(() => parseGcpBilling('service.description,cost\n', day, { prices }))).toBe('line 1');
  });

  it('refuses a non-USD line unless a rate is given, then converts it', () => {
    const csv = [HEADER, row({ cost: '0.92', currency: 'EUR' })].join('\n');
    expect(() => parseGcpBilling(csv, day, { prices })).toThrow(/line 2: currency: "EUR" needs a rate/);
    const f = parseGcpBilling(csv, day, { prices, rates: { EUR: '0.92' } });
    expect(f.models.get('claude-sonnet-5-5')?.cost).toBe(1_000_000);
  });

  it('reads a bill without the wanted day as nothing billed that day (a gap to flag), saying what it covers', () => {
    const csv = [HEADER, row({ start: '2026-11-30T23:00:00Z' })].join('\n');
    const figures = parseGcpBilling(csv, day, { prices });
    expect(figures.models.size).toBe(0);
    expect(figures.covers).toEqual(['2026-11-30']);
    expect(() => parseGcpBilling(HEADER, day, { prices })).toThrow('it covers no day at all');
  });

  it.each([
    ['Claude Opus 5.5 Input Tokens', 'claude-opus-5-5', 'input'],
    ['Claude Haiku 4.5 1h Cache Write Input Tokens', 'claude-haiku-4-5', 'cacheWrite1h'],
    ['Claude Sonnet 4.5 5m Cache Write Input Tokens', 'claude-sonnet-4-5', 'cacheWrite5m'],
    ['Claude 3.5 Sonnet Output Tokens', 'claude-3-5-sonnet', 'output'],
    ['Claude Fable 5.2 Web Search Requests', 'claude-fable-5-2', undefined],
  ])('reads the SKU %s as %s, class %s', (sku, model, cls) => {
    expect(modelOfSku(sku)).toBe(model);
    expect(classOfSku(sku)).toBe(cls);
  });

  it('reads decimal and exponent amounts exactly to the picodollar', () => {
    expect(decimalPico('1.000001')).toBe(1_000_001_000_000n);
    expect(decimalPico('-0.5')).toBe(-500_000_000_000n);
    expect(decimalPico('1.2E-5')).toBe(12_000_000n);
    expect(decimalPico('12,5')).toBeUndefined();
  });
});
