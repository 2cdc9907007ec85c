/**
 * An AWS Cost and Usage Report 2.0 CSV (Data Exports; legacy CUR column names such as
 * `lineItem/UsageStartDate` are read too) reduced to what Claude on Amazon Bedrock cost per model
 * on one UTC day. Sources: docs/research/bedrock-2026-12.md §6.
 *
 * Claude on Bedrock reaches the bill two ways, and both are counted:
 * - through **AWS Marketplace** (`bill_billing_entity` = `AWS Marketplace`): the product is the
 *   model's Marketplace listing, named in `product_product_name`
 *   (`Claude Opus 5.5 (Amazon Bedrock Edition)`); this is the spend AWS's own anomaly detection
 *   does not see as Bedrock;
 * - through **`AmazonBedrock`** (`line_item_product_code`): the usage type names the model and
 *   token class (`USE1-Claude5.5Opus-input-tokens`, `…-cache-read-input-token-count`).
 *
 * Every other line (other services, other Marketplace products, non-Claude Bedrock models) is
 * skipped, and so are line types that are not usage (tax, credits, refunds, fees: they are not
 * the list-price spend the ledger prices). A Claude line that cannot be read — a bad date or
 * amount, a model it does not name, a currency other than USD — is a ReportError naming its line.
 */
import type { PriceTable } from '../pricing/pricing.ts';
import {
  csvFields,
  dayRange,
  decimalToPico,
  missingDay,
  type ProviderFigures,
  ReportError,
  Sums,
} from './report.ts';

/** The line item types that are usage at (or covered by) a price. */
const USAGE_TYPES = new Set(['Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage']);
const REQUIRED = [
  'line_item_usage_start_date',
  'line_item_product_code',
  'line_item_line_item_type',
  'line_item_unblended_cost',
  'line_item_usage_type',
] as const;

/** `lineItem/UsageStartDate` (legacy CUR) → `line_item_usage_start_date` (CUR 2.0). */
export function curColumn(name: string): string {
  return name
    .trim()
    .replace(/\//g, '_')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

const LINES = ['opus', 'sonnet', 'haiku', 'fable', 'mythos'];

/** `Claude Opus 5.5` / `Claude5.5Opus` / `Claude 3.5 Haiku` → `claude-opus-5-5` / `claude-3-5-haiku`. */
export function modelOfCurName(text: string): string | undefined {
  const named = /Claude\s*(Opus|Sonnet|Haiku|Fable|Mythos)\s*(\d+(?:\.\d+)?)/i.exec(text);
  if (named) return `claude-${named[1]!.toLowerCase()}-${named[2]!.replace('.', '-')}`;
  const versionFirst = /Claude\s*(\d+(?:\.\d+)?)\s*(Opus|Sonnet|Haiku|Fable|Mythos)/i.exec(text);
  if (!versionFirst) return undefined;
  const [, version, line] = versionFirst;
  const major = Number(version!.split('.')[0]);
  // Claude 3.x put the version first in its own name (`claude-3-5-haiku`); Bedrock's usage types
  // put it first for every model (`Claude5.5Opus`).
  if (major <= 3) return `claude-${version!.replace('.', '-')}-${line!.toLowerCase()}`;
  return `claude-${line!.toLowerCase()}-${version!.replace('.', '-')}`;
}

/** Parses a CUR 2.0 CSV for `day` (YYYY-MM-DD, UTC) into cost per canonical model. */
export function parseCur(text: string, day: string, prices: PriceTable): ProviderFigures {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const at = dayRange(day)!.since;
  const sums = new Sums();
  const covers = new Set<string>();
  let header: string[] | undefined;
  let col: (name: string) => number = () => -1;
  let seen = 0;
  lines.forEach((line, idx) => {
    const n = idx + 1;
    if (!line.trim()) return;
    const fields = csvFields(line, n);
    if (!header) {
      header = fields.map(curColumn);
      const h = header;
      col = (name) => h.indexOf(name);
      const missing = REQUIRED.filter((c) => col(c) === -1);
      if (missing.length) {
        throw new ReportError(`line ${n}`, `not a CUR 2.0 header: missing ${missing.join(', ')}`);
      }
      return;
    }
    if (fields.length !== header.length) {
      throw new ReportError(
        `line ${n}`,
        `expected ${header.length} fields like the header, got ${fields.length}`,
      );
    }
    const get = (name: string) => (col(name) === -1 ? '' : fields[col(name)]!);
    const model = claudeModelOf(get, n);
    if (!model || !USAGE_TYPES.has(get('line_item_line_item_type'))) return;
    const date = get('line_item_usage_start_date').slice(0, 10);
    if (!dayRange(date)) {
      throw new ReportError(
        `line ${n}`,
        `line_item_usage_start_date: expected a time like 2026-12-02T00:00:00Z, got ${JSON.stringify(get('line_item_usage_start_date'))}`,
      );
    }
    const currency = get('line_item_currency_code');
    if (currency && currency !== 'USD') {
      throw new ReportError(
        `line ${n}`,
        `line_item_currency_code: expected USD, got ${JSON.stringify(currency)}`,
      );
    }
    const cost = decimalToPico(get('line_item_unblended_cost'), 1_000_000_000_000n);
    if (cost === undefined) {
      throw new ReportError(
        `line ${n}`,
        `line_item_unblended_cost: expected a dollar amount like 0.012345, got ${JSON.stringify(get('line_item_unblended_cost'))}`,
      );
    }
    covers.add(date);
    if (date !== day) return;
    seen++;
    const account = get('line_item_usage_account_id');
    sums.add(prices.lookup(model, at)?.model ?? model, cost, account ? `aws_account:${account}` : undefined);
  });
  if (!header) throw new ReportError('line 1', 'empty: expected a CUR 2.0 header and line items');
  // A bill that covers other days but none of this one billed nothing that day: a gap the
  // comparison flags (an alarm when the ledger has spend), not a malformed file.
  if (!seen && covers.size === 0) throw missingDay(day, []);
  return sums.figures('aws-cur', day, [...covers].sort());
}

/**
 * The Claude model a line bills, undefined when it is no Claude-on-Bedrock line. Throws when a
 * line is Claude on Bedrock but names no model it can read.
 */
function claudeModelOf(get: (name: string) => string, n: number): string | undefined {
  const product = get('line_item_product_code');
  const name = get('product_product_name');
  const usageType = get('line_item_usage_type');
  const marketplace = get('bill_billing_entity') === 'AWS Marketplace';
  if (marketplace) {
    // Claude on Bedrock's listings; other Marketplace products (and Claude Platform on AWS, which
    // is not Bedrock) are not this bill's.
    if (!/Claude/i.test(name) || !/Bedrock/i.test(name)) return undefined;
    const model = modelOfCurName(name);
    if (!model)
      throw new ReportError(
        `line ${n}`,
        `product_product_name: names no Claude model: ${JSON.stringify(name)}`,
      );
    return model;
  }
  if (product !== 'AmazonBedrock') return undefined;
  if (!/Claude/i.test(usageType)) return undefined;
  const model = modelOfCurName(usageType);
  if (!model || !LINES.some((l) => model.includes(l))) {
    throw new ReportError(
      `line ${n}`,
      `line_item_usage_type: names no Claude model: ${JSON.stringify(usageType)}`,
    );
  }
  return model;
}
