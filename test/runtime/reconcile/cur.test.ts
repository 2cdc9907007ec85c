import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { billedRegional } from '../../../adapters/bedrock/models.ts';
import { BedrockProvider, bedrockOptions } from '../../../adapters/bedrock/provider.ts';
import { createEmulator, type Emulator, type Listening } from '../../../adapters/emulator/index.ts';
import { readAll, type Usage } from '../../../adapters/provider.ts';
import { PriceTable } from '../../../runtime/pricing/pricing.ts';
import { compare, DEFAULT_TOLERANCE, type LedgerModel } from '../../../runtime/reconcile/compare.ts';
import { modelOfCurName, parseCur } from '../../../runtime/reconcile/cur.ts';
import { detectFormat, parseReport, ReportError } from '../../../runtime/reconcile/report.ts';

const prices = new PriceTable();
const DAY = '2026-12-01';
const NONE = { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 };
const ledger = new Map<string, LedgerModel>();
let emu: Emulator;
let server: Listening;

beforeAll(async () => {
  emu = createEmulator({ now: () => Date.parse(`${DAY}T10:00:00Z`) });
  server = await emu.listen();
  const options = bedrockOptions({ options: { region: 'us-east-1', profile: 'us', ...emu.awsCredentials } });
  const bedrock = new BedrockProvider('bedrock', options, `${server.url}/bedrock`, 10_000);
  const calls: Array<[string, string | undefined, boolean]> = [
    ['claude-opus-5-5', 'us', false],
    ['claude-opus-5-5', 'global', true],
    ['claude-haiku-4-5', 'eu', true],
    ['claude-sonnet-5-5', undefined, false],
    ['claude-opus-5-5', 'us', true],
  ];
  for (const [model, geo, stream] of calls) {
    const body = { model, max_tokens: 200, stream, messages: [{ role: 'user', content: `about ${model}` }] };
    const res = await bedrock.send({ body: Buffer.from(JSON.stringify(body)), geo });
    expect(res.status).toBe(200);
    let usage: Usage;
    if (res.streaming) {
      const reader = bedrock.streamReader();
      for await (const c of res.body) reader.feed(c as Buffer);
      usage = reader.usage();
    } else {
      usage = bedrock.answer(res.status, await readAll(res.body)).usage!;
    }
    // What the gateway's ledger would hold: the usage it read, at the runtime's own prices
    // (1.1x on regional endpoints for the models AWS charges it on).
    const regional = billedRegional(model, geo ?? options.profile);
    const id = prices.lookup(model)!.model;
    const l = ledger.get(id) ?? { model: id, cost: 0, calls: 0, tokens: { ...NONE } };
    l.cost += prices.cost(model, usage.tokens, Date.parse(`${DAY}T10:00:00Z`), { usOnly: regional });
    l.calls++;
    ledger.set(id, l);
  }
  await bedrock.close();
  // An Anthropic-face call is on Anthropic's bill, not AWS's.
  await fetch(`${server.url}/v1/messages`, {
    method: 'POST',
    headers: {
      'x-api-key': 'sk-emulator-local',
      'anthropic-version': '2023-06-01',
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      model: 'claude-opus-5-5',
      max_tokens: 50,
      messages: [{ role: 'user', content: 'direct' }],
    }),
  });
});
afterAll(() => server.close());

async function cur(query: string): Promise<string> {
  const res = await fetch(`${server.url}/_emulator/exports/aws-cur?${query}`, {
    headers: { 'x-api-key': emu.adminKey },
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/csv');
  return res.text();
}

function errorOf(fn: () => unknown): ReportError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ReportError) return err;
    throw err;
  }
  throw new Error('expected a ReportError');
}

const billedByModel = () => {
  const by = new Map<string, number>();
  for (const e of emu.billing.list()) {
    if (e.provider !== 'bedrock') continue;
    const m = prices.lookup(e.model)?.model ?? e.model;
    by.set(m, (by.get(m) ?? 0) + e.costMicros);
  }
  return by;
};

describe('the AWS Cost and Usage Report (CUR 2.0)', () => {
  it("a CUR built from the emulator's Marketplace lines reconciles to its bedrock bill, to the µ$", async () => {
    const text = await cur(`day=${DAY}`);
    expect(detectFormat(text)).toBe('aws-cur');
    const f = parseReport(text, DAY, { prices });
    expect(f.format).toBe('aws-cur');
    const total = [...f.models.values()].reduce((a, m) => a + m.cost, 0);
    expect(total).toBe(emu.billing.total('bedrock'));
    expect(emu.billing.total('anthropic')).toBeGreaterThan(0);
    expect(new Map([...f.models].map(([k, v]) => [k, v.cost]))).toEqual(billedByModel());
    expect([...f.accounts.keys()]).toEqual(['aws_account:111122223333']);
  });

  it("reconciles with the ledger the gateway would write from the adapter's usage, within tolerance", async () => {
    const f = parseReport(await cur(`day=${DAY}`), DAY, { prices });
    const r = compare([...ledger.values()], f, DEFAULT_TOLERANCE);
    expect(r.verdict).toBe('ok');
    expect(r.rows.map((x) => x.model).sort()).toEqual([...ledger.keys()].sort());
    expect(r.total.calls).toBe(5);
  });

  it('reads the same bill written as AmazonBedrock lines', async () => {
    const f = parseCur(await cur(`day=${DAY}&entity=bedrock`), DAY, prices);
    expect(new Map([...f.models].map(([k, v]) => [k, v.cost]))).toEqual(billedByModel());
  });

  it('the export is control-key guarded and needs a day', async () => {
    expect((await fetch(`${server.url}/_emulator/exports/aws-cur?day=${DAY}`)).status).toBe(401);
    const bad = await fetch(`${server.url}/_emulator/exports/aws-cur?day=yesterday`, {
      headers: { 'x-api-key': emu.adminKey },
    });
    expect(bad.status).toBe(400);
  });

  it('a bill without the wanted day billed nothing that day (a gap to flag), and says what it covers', async () => {
    const err = errorOf(() => parseCur('', DAY, prices));
    expect(err.message).toContain('empty');
    const text = await cur(`day=${DAY}`);
    const figures = parseCur(text, '2026-12-02', prices);
    expect(figures.models.size).toBe(0);
    expect(figures.covers).toEqual([DAY]);
  });
});

const HEADER =
  'bill_billing_entity,line_item_line_item_type,line_item_usage_start_date,line_item_product_code,line_item_usage_type,line_item_unblended_cost,line_item_currency_code,product_product_name,line_item_usage_account_id';

describe('CUR lines: which count', () => {
  it('counts Marketplace and AmazonBedrock Claude lines, skips everything else', () => {
    const csv = [
      HEADER,
      // Marketplace: Claude Opus 5.5 (a quoted name with a comma)
      `AWS Marketplace,Usage,${DAY}T00:00:00Z,2e8w4mb6y4ra5ymc03n6gc7z9,USE1-MP:USE1_InputTokenCount-Units,1.250000,USD,"Claude Opus 5.5 (Amazon Bedrock Edition), by Anthropic",111`,
      `AWS Marketplace,Usage,${DAY}T00:00:00Z,2e8w4mb6y4ra5ymc03n6gc7z9,USE1-MP:USE1_OutputTokenCount-Units,2.000001,USD,Claude Opus 5.5 (Amazon Bedrock Edition),111`,
      // AmazonBedrock: Opus 5.5 and Haiku 4.5 by usage type
      `AWS,Usage,${DAY}T00:00:00Z,AmazonBedrock,USE1-Claude5.5Opus-cache-read-input-token-count,0.100000,USD,Amazon Bedrock,222`,
      `AWS,Usage,${DAY}T00:00:00Z,AmazonBedrock,EUW1-Claude4.5Haiku-output-tokens,0.030000,USD,Amazon Bedrock,222`,
      // skipped: another service, a non-Claude Bedrock model, a tax line, another Marketplace product
      `AWS,Usage,${DAY}T00:00:00Z,AmazonEC2,BoxUsage:m7g.large,9.990000,USD,Amazon Elastic Compute Cloud,222`,
      `AWS,Usage,${DAY}T00:00:00Z,AmazonBedrock,USE1-NovaPro-input-tokens,5.000000,USD,Amazon Bedrock,222`,
      `AWS,Tax,${DAY}T00:00:00Z,AmazonBedrock,USE1-Claude5.5Opus-input-tokens,0.700000,USD,Amazon Bedrock,222`,
      `AWS Marketplace,Usage,${DAY}T00:00:00Z,abc123,USE1-MP:Hours,3.000000,USD,Some Firewall Appliance,111`,
    ].join('\n');
    const f = parseCur(csv, DAY, prices);
    const opus = prices.lookup('claude-opus-5-5')?.model ?? 'claude-opus-5-5';
    const haiku = prices.lookup('claude-haiku-4-5')?.model ?? 'claude-haiku-4-5';
    expect(f.models.get(opus)?.cost).toBe(3_350_001);
    expect(f.models.get(haiku)?.cost).toBe(30_000);
    expect(f.models.size).toBe(2);
    expect(f.accounts.get('aws_account:111')).toBe(3_250_001);
  });

  it('reads legacy CUR column names', () => {
    const csv = [
      'bill/BillingEntity,lineItem/LineItemType,lineItem/UsageStartDate,lineItem/ProductCode,lineItem/UsageType,lineItem/UnblendedCost,product/ProductName',
      `AWS Marketplace,Usage,${DAY}T00:00:00Z,x,USE1-MP:USE1_InputTokenCount-Units,0.5,Claude Sonnet 5.5 (Amazon Bedrock Edition)`,
    ].join('\n');
    expect([...parseCur(csv, DAY, prices).models.values()][0]?.cost).toBe(500_000);
  });

  it('names the line of a malformed Claude line', () => {
    const line = (cost: string, date = `${DAY}T00:00:00Z`) =>
      `AWS,Usage,${date},AmazonBedrock,USE1-Claude5.5Opus-input-tokens,${cost},USD,Amazon Bedrock,1`;
    expect(
      errorOf(() => parseCur([HEADER, line('1.0'), line('12,34')].join('\n'), DAY, prices)).message,
    ).toBe('line 3: expected 9 fields like the header, got 10');
    expect(errorOf(() => parseCur([HEADER, line('1.0'), line('abc')].join('\n'), DAY, prices)).message).toBe(
      'line 3: line_item_unblended_cost: expected a dollar amount like 0.012345, got "abc"',
    );
    expect(errorOf(() => parseCur([HEADER, line('1.0', 'Dec 1')].join('\n'), DAY, prices)).where).toBe(
      'line 2',
    );
    const noModel = `AWS Marketplace,Usage,${DAY}T00:00:00Z,x,USE1-MP:Units,1.0,USD,Claude (Amazon Bedrock Edition),1`;
    expect(errorOf(() => parseCur([HEADER, noModel].join('\n'), DAY, prices)).message).toContain(
      'line 2: product_product_name: names no Claude model',
    );
    expect(errorOf(() => parseCur('date,model,cost_usd\n', DAY, prices)).message).toContain(
      'line 1: not a CUR 2.0 header: missing line_item_usage_start_date',
    );
  });

  it('maps the names AWS uses to canonical model ids', () => {
    expect(modelOfCurName('Claude Opus 5.5 (Amazon Bedrock Edition)')).toBe('claude-opus-5-5');
    expect(modelOfCurName('USE1-Claude4.5Haiku-output-tokens')).toBe('claude-haiku-4-5');
    expect(modelOfCurName('Claude 3.5 Haiku (Amazon Bedrock Edition)')).toBe('claude-3-5-haiku');
    expect(modelOfCurName('Claude Opus 5 (Amazon Bedrock Edition)')).toBe('claude-opus-5');
    expect(modelOfCurName('Amazon Nova Pro')).toBeUndefined();
  });
});
