/**
 * The bill's Vertex calls as Google Cloud would export them: the Cloud Billing standard usage cost
 * export (BigQuery `gcp_billing_export_v1_*`), its columns flattened to CSV the way
 * `bq extract`/a query result does it (nested fields as `service.description`, the repeated
 * `credits` as JSON). One row per hour, model, token class and endpoint kind, like the export's
 * hourly SKU lines. Claude on Vertex bills as a partner model: each model is its own service
 * (`Claude Haiku 4.5`) with one SKU per token class (docs/research/vertex-2026-12.md).
 *
 * The rows' costs (µ$ as a decimal dollar string with six places) sum exactly to
 * `billing.total('vertex')` for the day. `location.region` says `global` or `regional` (the bill
 * keeps whether a call was regional, not which region).
 */
import { createHash } from 'node:crypto';
import type { BillingEntry } from './billing.ts';
import { resolveModel } from './catalog.ts';
import { TOKEN_CLASSES, type TokenClass } from './pricing.ts';

export const GCP_EXPORT_COLUMNS = [
  'billing_account_id',
  'service.id',
  'service.description',
  'sku.id',
  'sku.description',
  'usage_start_time',
  'usage_end_time',
  'project.id',
  'location.region',
  'cost',
  'currency',
  'currency_conversion_rate',
  'usage.amount',
  'usage.unit',
  'credits',
  'cost_type',
] as const;

/** The SKU wording of each token class (what the import's classifier reads back). */
export const SKU_CLASS: Readonly<Record<TokenClass | 'webSearch', string>> = {
  input: 'Input Tokens',
  cacheWrite5m: '5m Cache Write Input Tokens',
  cacheWrite1h: '1h Cache Write Input Tokens',
  cacheRead: 'Cache Read Input Tokens',
  output: 'Output Tokens',
  webSearch: 'Web Search Requests',
};

const BILLING_ACCOUNT = '01EMU0-VERTEX-000000';
const hexId = (s: string) => {
  const h = createHash('sha256').update(s).digest('hex').toUpperCase();
  return `${h.slice(0, 4)}-${h.slice(4, 8)}-${h.slice(8, 12)}`;
};

/** `2026-12-01 13:00:00 UTC`, BigQuery's CSV form of a TIMESTAMP. */
const stamp = (ms: number) => `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;

const dollars = (micros: number) => {
  const sign = micros < 0 ? '-' : '';
  const abs = Math.abs(micros);
  return `${sign}${Math.floor(abs / 1_000_000)}.${String(abs % 1_000_000).padStart(6, '0')}`;
};

const csvField = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

interface Line {
  hour: number;
  model: string;
  display: string;
  what: TokenClass | 'webSearch';
  regional: boolean;
  micros: number;
  amount: number;
}

/** The Vertex lines of `day` (UTC) in `entries` as a GCP billing export CSV (header first). */
export function gcpBillingCsv(entries: readonly BillingEntry[], day: string): string {
  const since = Date.parse(`${day}T00:00:00Z`);
  const until = since + 86_400_000;
  const lines = new Map<string, Line>();
  const add = (e: BillingEntry, what: Line['what'], micros: number, amount: number) => {
    if (micros === 0 && amount === 0) return;
    const hour = e.at - (e.at % 3_600_000);
    const regional = e.regional === true;
    const key = `${hour}|${e.model}|${what}|${regional}`;
    let l = lines.get(key);
    if (!l) {
      const display = resolveModel(e.model)?.displayName ?? e.model;
      l = { hour, model: e.model, display, what, regional, micros: 0, amount: 0 };
      lines.set(key, l);
    }
    l.micros += micros;
    l.amount += amount;
  };
  for (const e of entries) {
    if (e.provider !== 'vertex' || e.at < since || e.at >= until) continue;
    for (const k of TOKEN_CLASSES) add(e, k, e.costByClass[k], e.usage[k]);
    add(e, 'webSearch', e.webSearchMicros, e.webSearchRequests);
  }
  const out = [GCP_EXPORT_COLUMNS.join(',')];
  const sorted = [...lines.values()].sort((a, b) => a.hour - b.hour || a.model.localeCompare(b.model));
  for (const l of sorted) {
    const sku = `${l.display} ${SKU_CLASS[l.what]}`;
    const row = [
      BILLING_ACCOUNT,
      hexId(l.model),
      l.display,
      hexId(`${l.model}|${l.what}|${l.regional}`),
      sku,
      stamp(l.hour),
      stamp(l.hour + 3_600_000),
      'emulator-project',
      l.regional ? 'regional' : 'global',
      dollars(l.micros),
      'USD',
      '1',
      String(l.amount),
      l.what === 'webSearch' ? 'requests' : 'count',
      '[]',
      'regular',
    ];
    out.push(row.map(csvField).join(','));
  }
  return `${out.join('\n')}\n`;
}
