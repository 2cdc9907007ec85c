/**
 * Provider billing reports, parsed into one shape: cost per model for one UTC day. Three inputs:
 *
 * - `anthropic-cost`: the Admin API cost report (`GET /v1/organizations/cost_report`), whose
 *   `amount` is in **cents** as a decimal string (`"123.45"` is $1.2345). With
 *   `group_by[]=description` each row names its model; rows without one count as unattributed.
 * - `anthropic-usage`: the Admin API usage report (`GET /v1/organizations/usage_report/messages`,
 *   grouped by model): tokens by class, priced here with the runtime's own price table (the
 *   `200k-1M` context window at the long-context rates).
 * - `openai-costs`: OpenAI's organization costs API (`openai-costs.ts`).
 * - `csv`: `date,model,cost_usd` lines for any other billing source.
 * - `aws-cur`: an AWS Cost and Usage Report 2.0 CSV, Claude on Bedrock lines only (`cur.ts`).
 * - `gcp-billing`: the Google Cloud Billing export as CSV, its Claude (Vertex AI) lines
 *   (gcp-export.ts).
 *
 * Amounts are summed exactly (BigInt picodollars) and rounded to µ$ once per model. Anything
 * malformed is a `ReportError` naming the field path or the CSV line: nothing half-parsed is used.
 */
import type { Micros } from '../money.ts';
import type { Rates } from '../pricing/prices.ts';
import type { PriceTable } from '../pricing/pricing.ts';
import type { TokenCounts } from '../store/port.ts';
import { parseCur } from './cur.ts';
import { parseGcpBilling } from './gcp-export.ts';
import { parseOpenAICosts } from './openai-costs.ts';

export const REPORT_FORMATS = [
  'anthropic-cost',
  'anthropic-usage',
  'csv',
  'openai-costs',
  'gcp-billing',
  'aws-cur',
] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** Rows of a cost report that carry no model (a report not grouped by description, or a non-token cost). */
export const UNATTRIBUTED = '(unattributed)';

/** A malformed report: `where` is a field path (`data[0].results[2].amount`) or `line 4`. */
export class ReportError extends Error {
  constructor(
    readonly where: string,
    problem: string,
  ) {
    super(`${where}: ${problem}`);
    this.name = 'ReportError';
  }
}

export interface ProviderModel {
  cost: Micros;
  /** Tokens by class (usage reports only). */
  tokens?: TokenCounts;
}

export interface ProviderFigures {
  format: ReportFormat;
  day: string;
  /** Cost per model (canonical id where the price table knows it). */
  models: Map<string, ProviderModel>;
  /** Cost per provider API key / workspace, when the report carries them (`api_key:…`, `workspace:…`). */
  accounts: Map<string, Micros>;
  /** Days the report holds data for (to say which, when the wanted day is missing). */
  covers: string[];
}

export interface ParseOptions {
  format?: ReportFormat;
  prices: PriceTable;
  /** `gcp-billing`: currency → units per US dollar, for lines not billed in USD. */
  rates?: Record<string, string>;
}

const PICO_PER_MICRO = 1_000_000n;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** `2026-01-31` → [start, end) in epoch ms (UTC); undefined if it is not a real date. */
export function dayRange(day: string): { since: number; until: number } | undefined {
  if (!DAY.test(day)) return undefined;
  const since = Date.parse(`${day}T00:00:00Z`);
  if (Number.isNaN(since) || new Date(since).toISOString().slice(0, 10) !== day) return undefined;
  return { since, until: since + 86_400_000 };
}

/** A decimal string (`"12.3456"`, `"-0.5"`) scaled by 10^`scale` into picodollars, or undefined. */
export function decimalToPico(s: string, picoPerUnit: bigint, maxDecimals = 12): bigint | undefined {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(s.trim());
  if (!m) return undefined;
  const frac = m[3] ?? '';
  if (frac.length > maxDecimals) return undefined;
  const scale = 10n ** BigInt(frac.length);
  const v = (BigInt(m[2]!) * scale + BigInt(frac || '0')) * picoPerUnit;
  if (v % scale !== 0n) return undefined; // more precision than a picodollar
  return (m[1] ? -1n : 1n) * (v / scale);
}

/** Picodollars to µ$, rounding half away from zero. */
export function picoToMicros(pico: bigint): Micros {
  const sign = pico < 0n ? -1n : 1n;
  const abs = pico * sign;
  return Number(sign * ((abs + PICO_PER_MICRO / 2n) / PICO_PER_MICRO));
}

/** Guesses the format from the content: JSON rows with `amount` → cost, with token fields → usage, else CSV. */
export function detectFormat(text: string): ReportFormat {
  const t = text.trimStart();
  if (!t.startsWith('{') && !t.startsWith('[')) {
    if (/^\uFEFF?[^\n]*(line_item_|lineItem\/)/.test(t)) return 'aws-cur';
    return /^[^\n]*sku[._]description/i.test(t) ? 'gcp-billing' : 'csv';
  }
  if (/"organization\.costs\.result"/.test(t)) return 'openai-costs';
  if (/"uncached_input_tokens"\s*:/.test(t) || /"output_tokens"\s*:/.test(t)) return 'anthropic-usage';
  return 'anthropic-cost';
}

/** Parses a report for `day` (YYYY-MM-DD, UTC). Throws ReportError. */
export function parseReport(text: string, day: string, opts: ParseOptions): ProviderFigures {
  if (!dayRange(day))
    throw new ReportError('day', `expected a date like 2026-01-31, got ${JSON.stringify(day)}`);
  const format = opts.format ?? detectFormat(text);
  if (format === 'csv') return parseCsv(text, day, opts.prices);
  if (format === 'gcp-billing') return parseGcpBilling(text, day, opts);
  if (format === 'aws-cur') return parseCur(text, day, opts.prices);
  const json = parseJson(text);
  if (format === 'openai-costs') return parseOpenAICosts(json, day, opts.prices);
  return format === 'anthropic-cost' ? parseCost(json, day, opts.prices) : parseUsage(json, day, opts.prices);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    // V8 does not always say where: find the first error ourselves, as line and column.
    const at = jsonErrorAt(text);
    const before = text.slice(0, at.pos);
    const line = before.split('\n').length;
    const column = before.length - before.lastIndexOf('\n');
    throw new ReportError(
      `line ${line}, column ${column}`,
      `not valid JSON: ${at.problem ?? (err as Error).message}`,
    );
  }
}

/** The offset and nature of the first syntax error in `text` (a small JSON scanner). */
export function jsonErrorAt(text: string): { pos: number; problem?: string } {
  let i = 0;
  const fail = (problem: string): never => {
    throw { pos: i, problem };
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const str = () => {
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') i++;
      else if (text.charCodeAt(i) < 0x20) fail('a control character inside a string');
      i++;
    }
    if (i >= text.length) fail('a string is not closed');
    i++;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === undefined) fail('unexpected end of input');
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail(`expected a "quoted" property name, found ${show(text[i])}`);
        str();
        ws();
        if (text[i] !== ':') fail(`expected ':' after a property name, found ${show(text[i])}`);
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') return void i++;
        fail(`expected ',' or '}', found ${show(text[i])}`);
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') return void i++;
        fail(`expected ',' or ']', found ${show(text[i])}`);
      }
    }
    if (c === '"') {
      str();
      return;
    }
    const m = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (!m) fail(`expected a value, found ${show(c)}`);
    i += m![0].length;
  };
  try {
    value();
    ws();
    if (i < text.length) fail(`unexpected ${show(text[i])} after the end of the document`);
  } catch (e) {
    if (typeof e === 'object' && e && 'pos' in e) return e as { pos: number; problem: string };
    throw e;
  }
  return { pos: 0 };
}

const show = (c: string | undefined) => (c === undefined ? 'the end of input' : JSON.stringify(c));

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The `data` buckets of an Admin API report that start on `day`. */
function buckets(
  json: unknown,
  day: string,
): { wanted: Array<{ path: string; results: unknown[] }>; covers: string[] } {
  if (!isObj(json)) throw new ReportError('report', 'expected a JSON object with a "data" array of buckets');
  if (!Array.isArray(json.data))
    throw new ReportError('data', 'required: an array of buckets ({starting_at, results})');
  const wanted: Array<{ path: string; results: unknown[] }> = [];
  const covers = new Set<string>();
  json.data.forEach((b, i) => {
    const path = `data[${i}]`;
    if (!isObj(b)) throw new ReportError(path, 'expected a bucket object');
    if (typeof b.starting_at !== 'string' || Number.isNaN(Date.parse(b.starting_at))) {
      throw new ReportError(
        `${path}.starting_at`,
        `expected an RFC 3339 time, got ${JSON.stringify(b.starting_at ?? null)}`,
      );
    }
    if (!Array.isArray(b.results))
      throw new ReportError(`${path}.results`, 'required: an array of result rows');
    const d = new Date(Date.parse(b.starting_at)).toISOString().slice(0, 10);
    covers.add(d);
    if (d === day) wanted.push({ path, results: b.results });
  });
  if (json.has_more === true) {
    throw new ReportError(
      'has_more',
      'the report is one page of several (has_more: true): fetch every page (follow next_page) and pass them merged into one "data" array',
    );
  }
  return { wanted, covers: [...covers].sort() };
}

export function missingDay(day: string, covers: string[]): ReportError {
  return new ReportError(
    'report',
    `holds no data for ${day} (it covers ${covers.length ? `${covers[0]}${covers.length > 1 ? ` .. ${covers.at(-1)}` : ''}` : 'no day at all'})`,
  );
}

export class Sums {
  readonly pico = new Map<string, bigint>();
  readonly accounts = new Map<string, bigint>();
  readonly tokens = new Map<string, TokenCounts>();
  add(model: string, pico: bigint, account?: string) {
    this.pico.set(model, (this.pico.get(model) ?? 0n) + pico);
    if (account) this.accounts.set(account, (this.accounts.get(account) ?? 0n) + pico);
  }
  figures(format: ReportFormat, day: string, covers: string[]): ProviderFigures {
    const models = new Map<string, ProviderModel>();
    for (const [m, p] of this.pico) {
      const t = this.tokens.get(m);
      models.set(m, { cost: picoToMicros(p), ...(t ? { tokens: t } : {}) });
    }
    const accounts = new Map([...this.accounts].map(([k, p]) => [k, picoToMicros(p)]));
    return { format, day, models, accounts, covers };
  }
}

const canonical = (prices: PriceTable, model: string, at: number) => prices.lookup(model, at)?.model ?? model;

function optionalString(row: Obj, field: string, path: string): string | undefined {
  const v = row[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '')
    throw new ReportError(`${path}.${field}`, `expected a string or null, got ${JSON.stringify(v)}`);
  return v;
}

function account(row: Obj, path: string): string | undefined {
  const key = optionalString(row, 'api_key_id', path);
  if (key) return `api_key:${key}`;
  const ws = optionalString(row, 'workspace_id', path);
  return ws ? `workspace:${ws}` : undefined;
}

function parseCost(json: unknown, day: string, prices: PriceTable): ProviderFigures {
  const { wanted, covers } = buckets(json, day);
  if (!wanted.length) throw missingDay(day, covers);
  const at = dayRange(day)!.since;
  const sums = new Sums();
  for (const { path, results } of wanted) {
    results.forEach((row, j) => {
      const p = `${path}.results[${j}]`;
      if (!isObj(row)) throw new ReportError(p, 'expected a result object');
      if (row.currency !== undefined && row.currency !== 'USD') {
        throw new ReportError(`${p}.currency`, `expected "USD", got ${JSON.stringify(row.currency)}`);
      }
      if (typeof row.amount !== 'string') {
        throw new ReportError(
          `${p}.amount`,
          row.amount === undefined
            ? 'required: the cost in cents as a decimal string like "123.45"'
            : `expected cents as a decimal string like "123.45", got ${JSON.stringify(row.amount)}`,
        );
      }
      const pico = decimalToPico(row.amount, 10_000_000_000n, 10);
      if (pico === undefined) {
        throw new ReportError(
          `${p}.amount`,
          `expected cents as a decimal string like "123.45", got ${JSON.stringify(row.amount)}`,
        );
      }
      const model = optionalString(row, 'model', p);
      sums.add(model ? canonical(prices, model, at) : UNATTRIBUTED, pico, account(row, p));
    });
  }
  return sums.figures('anthropic-cost', day, covers);
}

const CLASSES = ['input', 'cacheWrite5m', 'cacheWrite1h', 'cacheRead', 'output'] as const;

/** tokens × rate (µ$ per MTok as USD per MTok), exact, in picodollars: µ$/MTok = pico/token. */
function pricePico(rates: Rates, t: TokenCounts): bigint {
  let sum = 0n;
  for (const c of CLASSES) sum += BigInt(t[c]) * BigInt(Math.round(rates[c] * 1_000_000));
  return sum;
}

function tokenField(row: Obj, field: string, path: string): number {
  const v = row[field];
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new ReportError(
      `${path}.${field}`,
      `expected a token count (a whole number >= 0), got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function parseUsage(json: unknown, day: string, prices: PriceTable): ProviderFigures {
  const { wanted, covers } = buckets(json, day);
  if (!wanted.length) throw missingDay(day, covers);
  const at = dayRange(day)!.since;
  const sums = new Sums();
  for (const { path, results } of wanted) {
    results.forEach((row, j) => {
      const p = `${path}.results[${j}]`;
      if (!isObj(row)) throw new ReportError(p, 'expected a result object');
      const model = optionalString(row, 'model', p);
      if (!model) {
        throw new ReportError(
          `${p}.model`,
          'required to price the usage: fetch the usage report with group_by[]=model (or use the cost report)',
        );
      }
      const cc = row.cache_creation;
      if (cc !== undefined && cc !== null && !isObj(cc)) {
        throw new ReportError(`${p}.cache_creation`, `expected an object, got ${JSON.stringify(cc)}`);
      }
      const t: TokenCounts = {
        input: tokenField(row, 'uncached_input_tokens', p),
        cacheWrite5m: isObj(cc) ? tokenField(cc, 'ephemeral_5m_input_tokens', `${p}.cache_creation`) : 0,
        cacheWrite1h: isObj(cc) ? tokenField(cc, 'ephemeral_1h_input_tokens', `${p}.cache_creation`) : 0,
        cacheRead: tokenField(row, 'cache_read_input_tokens', p),
        output: tokenField(row, 'output_tokens', p),
      };
      if (row.uncached_input_tokens === undefined && row.output_tokens === undefined) {
        throw new ReportError(
          `${p}.uncached_input_tokens`,
          'required: a usage row has uncached_input_tokens and output_tokens',
        );
      }
      const entry = prices.lookup(model, at);
      if (!entry) {
        throw new ReportError(
          `${p}.model`,
          `no price is known for ${JSON.stringify(model)}: add it under prices: in the config`,
        );
      }
      const window = optionalString(row, 'context_window', p);
      const rates = window === '200k-1M' && entry.longContext ? entry.longContext.rates : entry.rates;
      const id = entry.model;
      sums.add(id, pricePico(rates, t), account(row, p));
      const acc = sums.tokens.get(id) ?? {
        input: 0,
        cacheWrite5m: 0,
        cacheWrite1h: 0,
        cacheRead: 0,
        output: 0,
      };
      for (const c of CLASSES) acc[c] += t[c];
      sums.tokens.set(id, acc);
    });
  }
  return sums.figures('anthropic-usage', day, covers);
}

/** One CSV line into fields (RFC 4180 quotes: `"a,b"`, `""` for a quote). */
export function csvFields(line: string, n: number): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= line.length) throw new ReportError(`line ${n}`, 'a quoted field is not closed');
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            v += '"';
            i += 2;
          } else {
            i++;
            break;
          }
        } else v += line[i++];
      }
      out.push(v);
      if (i < line.length && line[i] !== ',')
        throw new ReportError(`line ${n}`, 'expected a comma after a quoted field');
      i++;
    } else {
      const end = line.indexOf(',', i);
      const stop = end === -1 ? line.length : end;
      out.push(line.slice(i, stop).trim());
      i = stop + 1;
    }
  }
  return out;
}

function parseCsv(text: string, day: string, prices: PriceTable): ProviderFigures {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let header: string[] | undefined;
  let cols = { date: -1, model: -1, cost: -1 };
  const covers = new Set<string>();
  const sums = new Sums();
  const at = dayRange(day)!.since;
  let seen = 0;
  lines.forEach((line, idx) => {
    const n = idx + 1;
    if (!line.trim()) return;
    const fields = csvFields(line, n);
    if (!header) {
      header = fields.map((f) => f.trim().toLowerCase());
      cols = {
        date: header.indexOf('date'),
        model: header.indexOf('model'),
        cost: header.indexOf('cost_usd'),
      };
      const missing = Object.entries({ date: cols.date, model: cols.model, cost_usd: cols.cost })
        .filter(([, i]) => i === -1)
        .map(([k]) => k);
      if (missing.length) {
        throw new ReportError(
          `line ${n}`,
          `the header must name the columns date,model,cost_usd (missing: ${missing.join(', ')})`,
        );
      }
      return;
    }
    if (fields.length !== header.length) {
      throw new ReportError(
        `line ${n}`,
        `expected ${header.length} fields like the header, got ${fields.length}`,
      );
    }
    const date = fields[cols.date]!;
    if (!dayRange(date))
      throw new ReportError(
        `line ${n}`,
        `date: expected a date like 2026-01-31, got ${JSON.stringify(date)}`,
      );
    const model = fields[cols.model]!;
    if (!model) throw new ReportError(`line ${n}`, 'model: required');
    const cost = decimalToPico(fields[cols.cost]!.replace(/^\$/, ''), 1_000_000_000_000n);
    if (cost === undefined) {
      throw new ReportError(
        `line ${n}`,
        `cost_usd: expected a dollar amount like 12.34, got ${JSON.stringify(fields[cols.cost])}`,
      );
    }
    covers.add(date);
    if (date !== day) return;
    seen++;
    sums.add(canonical(prices, model, at), cost);
  });
  if (!header)
    throw new ReportError(
      'line 1',
      'empty: expected the header date,model,cost_usd and one line per day and model',
    );
  if (!seen) throw missingDay(day, [...covers].sort());
  return sums.figures('csv', day, [...covers].sort());
}
