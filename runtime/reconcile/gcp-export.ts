/**
 * The Google Cloud Billing export (format `gcp-billing`): the standard usage cost export
 * (BigQuery table `gcp_billing_export_v1_<account>`) written out as CSV, one line per service,
 * SKU and usage hour. Nested columns arrive flattened (`service.description` or
 * `service_description`), the repeated `credits` as JSON text. Claude on Vertex AI bills as a
 * partner model: its lines name the model in the service and the SKU (`Claude Sonnet 4.5` /
 * `Claude Sonnet 4.5 Input Tokens`; older lines say `Claude 3.5 Sonnet`), whatever service id the
 * account shows them under. Sources: docs/research/vertex-2026-12.md.
 *
 * Read: every line whose service or SKU names Claude/Anthropic; `cost` (before credits: the
 * list-price usage the ledger records; credits are promotions and commitments, not usage) summed
 * exactly per canonical model for the UTC day of `usage_start_time`; `cost_type: tax` lines are
 * skipped. Tokens by class are summed where the SKU names its class and `usage.amount` counts
 * tokens. Non-USD lines are an error unless `rates` gives the currency (units per US dollar, the
 * sense of the export's own `currency_conversion_rate`). Anything malformed names its line.
 */
import type { PriceTable } from '../pricing/pricing.ts';
import type { TokenCounts } from '../store/port.ts';
import { dayRange, type ProviderFigures, type ProviderModel, picoToMicros, ReportError } from './report.ts';

export interface GcpBillingOptions {
  prices: PriceTable;
  /** Currency → units per US dollar (`EUR: "0.92"`), for lines not billed in USD. */
  rates?: Record<string, string>;
}

const REQUIRED = ['service.description', 'sku.description', 'usage_start_time', 'cost', 'currency'] as const;
const norm = (h: string) => h.trim().toLowerCase().replace(/\./g, '_');
const PICO = 1_000_000_000_000n;

/** The CSV's records with the line each starts on (RFC 4180: quoted fields may hold commas, quotes, newlines). */
export function csvRecords(text: string): Array<{ line: number; fields: string[] }> {
  const out: Array<{ line: number; fields: string[] }> = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  let any = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      any = true;
    } else if (c === ',') {
      fields.push(field);
      field = '';
      any = true;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      if (any || field) out.push({ line: start, fields: [...fields, field] });
      fields = [];
      field = '';
      any = false;
      line++;
      start = line;
    } else {
      field += c;
      any = true;
    }
  }
  if (quoted) throw new ReportError(`line ${start}`, 'a quoted field is not closed');
  if (any || field) out.push({ line: start, fields: [...fields, field] });
  return out;
}

/** A decimal (`0.123456`, `-1`, `1.5E-5`) in picounits, exact to the picounit, or undefined. */
export function decimalPico(s: string): bigint | undefined {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(s.trim());
  if (!m) return undefined;
  const digits = BigInt(`${m[2]}${m[3] ?? ''}`);
  const exp = Number(m[4] ?? 0) - (m[3]?.length ?? 0) + 12;
  let v: bigint;
  if (exp >= 0) v = digits * 10n ** BigInt(exp);
  else {
    const d = 10n ** BigInt(-exp);
    v = (digits + d / 2n) / d; // beyond a picodollar: round half up
  }
  return m[1] ? -v : v;
}

/** `2026-12-01 13:00:00 UTC`, `2026-12-01T13:00:00Z`, `…-08:00` → the UTC day, or undefined. */
function utcDay(s: string): string | undefined {
  const iso = s.trim().replace(/ UTC$/, 'Z').replace(' ', 'T');
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString().slice(0, 10);
}

const LINES: Record<string, string> = {
  opus: 'opus',
  sonnet: 'sonnet',
  haiku: 'haiku',
  fable: 'fable',
  mythos: 'mythos',
};

/** The Anthropic model id a SKU or service description names (`Claude Haiku 4.5` → `claude-haiku-4-5`). */
export function modelOfSku(text: string): string | undefined {
  const modern = /claude\s+(opus|sonnet|haiku|fable|mythos)\s+(\d+(?:\.\d+)?)/i.exec(text);
  if (modern) return `claude-${LINES[modern[1]!.toLowerCase()]}-${modern[2]!.replace('.', '-')}`;
  const legacy = /claude\s+(\d+(?:\.\d+)?)\s+(opus|sonnet|haiku)/i.exec(text);
  if (legacy) return `claude-${legacy[1]!.replace('.', '-')}-${legacy[2]!.toLowerCase()}`;
  return undefined;
}

/** The token class a SKU bills, or undefined (per-request SKUs such as web search). */
export function classOfSku(sku: string): keyof TokenCounts | undefined {
  const s = sku.toLowerCase();
  if (!/token/.test(s)) return undefined;
  if (/cache\s*(read|hit)/.test(s)) return 'cacheRead';
  if (/cache\s*(write|creation)|cache\s*storage/.test(s))
    return /\b1\s*h|1-hour|1 hour/.test(s) ? 'cacheWrite1h' : 'cacheWrite5m';
  if (/output/.test(s)) return 'output';
  if (/input/.test(s)) return 'input';
  return undefined;
}

const isClaude = (service: string, sku: string) => /claude|anthropic/i.test(`${service} ${sku}`);

function credits(text: string, where: string): void {
  if (!text.trim()) return;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ReportError(where, `credits: expected a JSON list, got ${JSON.stringify(text.slice(0, 80))}`);
  }
  if (!Array.isArray(v)) throw new ReportError(where, 'credits: expected a JSON list of {name, amount}');
}

type Columns = Record<(typeof REQUIRED)[number], number> & {
  costType: number;
  amount: number;
  project: number;
  credits: number;
};

function columnsOf(header: string[], line: number): Columns {
  const at = new Map(header.map((h, i) => [norm(h), i]));
  const missing = REQUIRED.filter((r) => !at.has(norm(r)));
  if (missing.length) {
    throw new ReportError(
      `line ${line}`,
      `a GCP billing export needs the columns ${REQUIRED.join(', ')} (missing: ${missing.join(', ')})`,
    );
  }
  const col = (n: string) => at.get(norm(n)) ?? -1;
  return {
    'service.description': col('service.description'),
    'sku.description': col('sku.description'),
    usage_start_time: col('usage_start_time'),
    cost: col('cost'),
    currency: col('currency'),
    costType: col('cost_type'),
    amount: col('usage.amount'),
    project: col('project.id'),
    credits: col('credits'),
  };
}

/** Sums the Claude lines of a GCP billing export CSV for `day`. Throws ReportError. */
export function parseGcpBilling(text: string, day: string, opts: GcpBillingOptions): ProviderFigures {
  if (!dayRange(day))
    throw new ReportError('day', `expected a date like 2026-01-31, got ${JSON.stringify(day)}`);
  const records = csvRecords(text.replace(/^\uFEFF/, ''));
  const head = records.shift();
  if (!head) throw new ReportError('line 1', 'empty: expected the export header and its lines');
  const c = columnsOf(head.fields, head.line);
  const at = dayRange(day)!.since;
  const pico = new Map<string, bigint>();
  const projects = new Map<string, bigint>();
  const tokens = new Map<string, TokenCounts>();
  const covers = new Set<string>();
  for (const { line, fields } of records) {
    const where = `line ${line}`;
    if (fields.length !== head.fields.length) {
      throw new ReportError(
        where,
        `expected ${head.fields.length} fields like the header, got ${fields.length}`,
      );
    }
    const service = fields[c['service.description']]!;
    const sku = fields[c['sku.description']]!;
    if (!isClaude(service, sku)) continue;
    if (c.costType !== -1 && fields[c.costType]!.trim().toLowerCase() === 'tax') continue;
    const d = utcDay(fields[c.usage_start_time]!);
    if (!d) {
      throw new ReportError(
        where,
        `usage_start_time: expected a time like 2026-12-01 13:00:00 UTC, got ${JSON.stringify(fields[c.usage_start_time])}`,
      );
    }
    const model = modelOfSku(sku) ?? modelOfSku(service);
    if (!model)
      throw new ReportError(where, `sku.description: names no Claude model: ${JSON.stringify(sku)}`);
    let cost = decimalPico(fields[c.cost]!);
    if (cost === undefined)
      throw new ReportError(where, `cost: expected a decimal amount, got ${JSON.stringify(fields[c.cost])}`);
    const currency = fields[c.currency]!.trim().toUpperCase();
    if (currency !== 'USD') {
      const rate = opts.rates?.[currency] !== undefined ? decimalPico(opts.rates[currency]!) : undefined;
      if (rate === undefined || rate <= 0n) {
        throw new ReportError(
          where,
          `currency: ${JSON.stringify(currency)} needs a rate (units per US dollar) to compare with the ledger's USD`,
        );
      }
      cost = (cost * PICO + rate / 2n) / rate;
    }
    if (c.credits !== -1) credits(fields[c.credits]!, where);
    covers.add(d);
    if (d !== day) continue;
    const id = opts.prices.lookup(model, at)?.model ?? model;
    pico.set(id, (pico.get(id) ?? 0n) + cost);
    const project = c.project !== -1 ? fields[c.project]!.trim() : '';
    if (project) projects.set(`project:${project}`, (projects.get(`project:${project}`) ?? 0n) + cost);
    const cls = classOfSku(sku);
    const amount = c.amount !== -1 ? fields[c.amount]!.trim() : '';
    if (cls && /^\d+$/.test(amount)) {
      const t = tokens.get(id) ?? { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 };
      t[cls] += Number(amount);
      tokens.set(id, t);
    }
  }
  const days = [...covers].sort();
  // A bill that covers other days but none of this one billed nothing that day: a gap the
  // comparison flags (an alarm when the ledger has spend), not a malformed file.
  if (!pico.size && days.length === 0) {
    throw new ReportError(
      'report',
      `holds no Claude lines for ${day} (it covers ${days.length ? `${days[0]}${days.length > 1 ? ` .. ${days.at(-1)}` : ''}` : 'no day at all'})`,
    );
  }
  const models = new Map<string, ProviderModel>();
  for (const [m, p] of pico) {
    const t = tokens.get(m);
    models.set(m, { cost: picoToMicros(p), ...(t ? { tokens: t } : {}) });
  }
  const accounts = new Map([...projects].map(([k, p]) => [k, picoToMicros(p)]));
  return { format: 'gcp-billing', day, models, accounts, covers: days };
}
