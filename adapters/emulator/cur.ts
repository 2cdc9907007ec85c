/**
 * The emulator's Bedrock bill as AWS would deliver it: a Cost and Usage Report 2.0 CSV (Data
 * Exports, DAILY granularity) holding the day's `bedrock` billing entries, one line per model,
 * token class and price (regional or global). Claude on Bedrock bills through AWS Marketplace for
 * many accounts (billing entity `AWS Marketplace`, the model's Marketplace product, usage types
 * `USE1-MP:USE1_InputTokenCount-Units`…) and through `AmazonBedrock` for others (usage types
 * `USE1-Claude5.5Opus-input-tokens`…): `entity` picks which. Costs are the entries' exact
 * per-class µ$, so the file sums to `billing.total('bedrock')` for the day to the µ$. Column
 * names and usage-type patterns: docs/research/bedrock-2026-12.md §6.
 */
import { createHash } from 'node:crypto';
import type { BillingEntry } from './billing.ts';
import { resolveModel, TOKEN_CLASSES, type TokenClass } from './catalog.ts';

export type CurEntity = 'marketplace' | 'bedrock';

export const CUR_COLUMNS = [
  'identity_line_item_id',
  'identity_time_interval',
  'bill_billing_entity',
  'bill_payer_account_id',
  'line_item_usage_account_id',
  'line_item_line_item_type',
  'line_item_usage_start_date',
  'line_item_usage_end_date',
  'line_item_product_code',
  'line_item_usage_type',
  'line_item_operation',
  'line_item_usage_amount',
  'line_item_unblended_rate',
  'line_item_unblended_cost',
  'line_item_currency_code',
  'line_item_line_item_description',
  'line_item_legal_entity',
  'product_product_name',
  'product_region_code',
  'pricing_unit',
] as const;

const ACCOUNT = '111122223333';
const MARKETPLACE_CLASS: Record<TokenClass, string> = {
  input: 'InputTokenCount',
  cacheWrite5m: 'CacheWriteInputTokenCount',
  cacheWrite1h: 'CacheWrite1hInputTokenCount',
  cacheRead: 'CacheReadInputTokenCount',
  output: 'OutputTokenCount',
};
const BEDROCK_CLASS: Record<TokenClass, string> = {
  input: 'input-tokens',
  cacheWrite5m: 'cache-write-input-token-count',
  cacheWrite1h: 'cache-write-1h-input-token-count',
  cacheRead: 'cache-read-input-token-count',
  output: 'output-tokens',
};

/** `Claude Opus 5.5` from the catalogue; `5.5Opus` is how Bedrock's own usage types name it. */
function names(model: string): { display: string; usage: string } {
  const display = resolveModel(model)?.displayName ?? model;
  const m = /^Claude (\w+) ([\d.]+)$/.exec(display);
  return { display, usage: m ? `Claude${m[2]}${m[1]}` : display.replace(/\s+/g, '') };
}

/** A Marketplace product code: opaque and stable per product, like AWS's. */
const productCode = (model: string) =>
  BigInt(`0x${createHash('sha256').update(model).digest('hex').slice(0, 32)}`)
    .toString(36)
    .slice(0, 25);

const micros = (n: number) =>
  `${n < 0 ? '-' : ''}${Math.floor(Math.abs(n) / 1e6)}.${String(Math.abs(n) % 1e6).padStart(6, '0')}`;

const quote = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

/**
 * The CUR 2.0 CSV of the `bedrock` entries billed on `day` (UTC, `YYYY-MM-DD`). Entries of other
 * providers are not on AWS's bill and are left out.
 */
export function curCsv(
  entries: readonly BillingEntry[],
  day: string,
  entity: CurEntity = 'marketplace',
): string {
  const since = Date.parse(`${day}T00:00:00Z`);
  const until = since + 86_400_000;
  const groups = new Map<
    string,
    { model: string; cls: TokenClass; regional: boolean; tokens: number; cost: number }
  >();
  for (const e of entries) {
    if (e.provider !== 'bedrock' || e.at < since || e.at >= until) continue;
    for (const cls of TOKEN_CLASSES) {
      if (e.usage[cls] === 0 && e.costByClass[cls] === 0) continue;
      const key = `${e.model}|${cls}|${e.regional === true}`;
      const g = groups.get(key) ?? { model: e.model, cls, regional: e.regional === true, tokens: 0, cost: 0 };
      g.tokens += e.usage[cls];
      g.cost += e.costByClass[cls];
      groups.set(key, g);
    }
  }
  const start = `${day}T00:00:00Z`;
  const end = new Date(until).toISOString().replace('.000Z', 'Z');
  const lines = [CUR_COLUMNS.join(',')];
  let n = 0;
  for (const g of groups.values()) {
    const { display, usage } = names(g.model);
    const marketplace = entity === 'marketplace';
    const scope = g.regional ? '' : '_Global';
    const usageType = marketplace
      ? `USE1-MP:USE1${scope}_${MARKETPLACE_CLASS[g.cls]}-Units`
      : `USE1-${usage}-${g.regional ? '' : 'global-'}${BEDROCK_CLASS[g.cls]}`;
    const rate = g.tokens ? (g.cost / 1e6 / g.tokens).toFixed(12) : '0';
    const row: Record<(typeof CUR_COLUMNS)[number], string> = {
      identity_line_item_id: createHash('sha1').update(`${day}|${++n}|${usageType}|${g.model}`).digest('hex'),
      identity_time_interval: `${start}/${end}`,
      bill_billing_entity: marketplace ? 'AWS Marketplace' : 'AWS',
      bill_payer_account_id: ACCOUNT,
      line_item_usage_account_id: ACCOUNT,
      line_item_line_item_type: 'Usage',
      line_item_usage_start_date: start,
      line_item_usage_end_date: end,
      line_item_product_code: marketplace ? productCode(g.model) : 'AmazonBedrock',
      line_item_usage_type: usageType,
      line_item_operation: 'InvokeModelInference',
      line_item_usage_amount: String(g.tokens),
      line_item_unblended_rate: rate,
      line_item_unblended_cost: micros(g.cost),
      line_item_currency_code: 'USD',
      line_item_line_item_description: `${display} ${BEDROCK_CLASS[g.cls]} on Amazon Bedrock, ${g.regional ? 'regional' : 'global'}`,
      line_item_legal_entity: marketplace ? 'Anthropic, PBC' : 'Amazon Web Services, Inc.',
      product_product_name: marketplace ? `${display} (Amazon Bedrock Edition)` : 'Amazon Bedrock',
      product_region_code: 'us-east-1',
      pricing_unit: marketplace ? 'Units' : 'Tokens',
    };
    lines.push(CUR_COLUMNS.map((c) => quote(row[c])).join(','));
  }
  return `${lines.join('\n')}\n`;
}
