import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createEmulator,
  DEFAULT_API_KEY,
  type Emulator,
  type Listening,
} from '../../../adapters/emulator/index.ts';
import { OPENAI_PRICES } from '../../../runtime/pricing/openai-prices.ts';
import { PriceTable } from '../../../runtime/pricing/pricing.ts';
import { parseReport, type ReportError } from '../../../runtime/reconcile/report.ts';

const DAY = '2026-12-02';
const NOW = Date.parse(`${DAY}T10:00:00Z`);
const prices = new PriceTable(OPENAI_PRICES);

let emu: Emulator;
let server: Listening;

beforeAll(async () => {
  emu = createEmulator({ now: () => NOW });
  server = await emu.listen();
  const client = new OpenAI({ baseURL: `${server.url}/openai/v1`, apiKey: DEFAULT_API_KEY, maxRetries: 0 });
  await client.chat.completions.create({ model: 'gpt-5.4', messages: [{ role: 'user', content: 'one' }] });
  await client.chat.completions.create({
    model: 'gpt-5.6-sol',
    messages: [{ role: 'user', content: 'two [[emulator:output_tokens=333]]' }],
  });
  await client.responses.create({
    model: 'gpt-5.4',
    tools: [{ type: 'web_search' }],
    input: 'news [[emulator:web_search=1]]',
  });
  await client.embeddings.create({ model: 'text-embedding-3-small', input: 'three' });
});
afterAll(() => server.close());

const costs = async (query: string) => {
  const res = await fetch(`${server.url}/openai/v1/organization/costs?${query}`, {
    headers: { authorization: `Bearer ${emu.adminKey}` },
  });
  expect(res.status).toBe(200);
  return res.text();
};
const start = Date.parse(`${DAY}T00:00:00Z`) / 1000;
const errorOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e as ReportError;
  }
  throw new Error('no error');
};

describe('the OpenAI costs import', () => {
  it('reconciles the costs API, by line item, to the emulator openai bill to the µ$, per model', async () => {
    const text = await costs(`start_time=${start}&group_by[]=line_item&group_by[]=project_id`);
    const f = parseReport(text, DAY, { prices });
    expect(f.format).toBe('openai-costs');
    const total = [...f.models.values()].reduce((s, m) => s + m.cost, 0);
    expect(total).toBe(emu.billing.total('openai'));
    const byModel = new Map<string, number>();
    for (const e of emu.billing.list()) byModel.set(e.model, (byModel.get(e.model) ?? 0) + e.costMicros);
    expect(new Map([...f.models].map(([m, v]) => [m, v.cost]))).toEqual(byModel);
    expect(f.accounts.get('project:proj_default')).toBe(total);
  });

  it('reads an ungrouped page as one unattributed total', async () => {
    const f = parseReport(await costs(`start_time=${start}`), DAY, { prices, format: 'openai-costs' });
    expect(f.models.get('(unattributed)')!.cost).toBe(emu.billing.total('openai'));
  });

  it('names the field of malformed input, and refuses one page of several', async () => {
    const page = (rows: unknown[], more = false) =>
      JSON.stringify({
        object: 'page',
        data: [{ object: 'bucket', start_time: start, end_time: start + 86400, results: rows }],
        has_more: more,
      });
    const at = (rows: unknown[]) =>
      errorOf(() => parseReport(page(rows), DAY, { prices, format: 'openai-costs' })).where;
    expect(at([{ object: 'organization.costs.result', amount: { value: '1.5', currency: 'usd' } }])).toBe(
      'data[0].results[0].amount.value',
    );
    expect(at([{ object: 'organization.costs.result', amount: { value: 1, currency: 'eur' } }])).toBe(
      'data[0].results[0].amount.currency',
    );
    expect(at([{ object: 'organization.costs.result' }])).toBe('data[0].results[0].amount');
    expect(errorOf(() => parseReport(page([], true), DAY, { prices, format: 'openai-costs' })).where).toBe(
      'has_more',
    );
    const noDay = errorOf(() => parseReport(page([]), '2026-12-01', { prices, format: 'openai-costs' }));
    expect(noDay.message).toContain('holds no data for 2026-12-01');
    const badStart = JSON.stringify({ data: [{ start_time: 'today', results: [] }] });
    expect(errorOf(() => parseReport(badStart, DAY, { prices, format: 'openai-costs' })).where).toBe(
      'data[0].start_time',
    );
  });
});
