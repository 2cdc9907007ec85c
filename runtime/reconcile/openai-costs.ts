/**
 * OpenAI's organization costs API (`GET /v1/organization/costs`, admin key) for one UTC day, as
 * `ProviderFigures`: a `page` of daily buckets (`start_time`/`end_time` in Unix seconds), each
 * with `results[]` whose `amount` is `{value: <USD as a number>, currency: "usd"}`. Fetched with
 * `group_by[]=line_item`, a row's `line_item` reads `"<model>, <item>"` (`gpt-5.4, input_tokens`)
 * and its cost goes to that model; rows without one count as unattributed. `project_id` rows add
 * up per `project:<id>`. A page with `has_more: true` is refused: pass every page merged.
 *
 * Amounts are exact: each `value` is read as the shortest decimal that round-trips the number
 * (to a picodollar), summed in BigInt, and rounded to µ$ once per model. Malformed input is a
 * `ReportError` naming the field path (`data[0].results[2].amount.value`).
 */
import type { PriceTable } from '../pricing/pricing.ts';
import { dayRange, type ProviderFigures, picoToMicros, ReportError, UNATTRIBUTED } from './report.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A USD number as picodollars, exactly as its decimal digits say. */
function usdToPico(v: number, where: string): bigint {
  if (!Number.isFinite(v)) throw new ReportError(where, `expected a dollar amount, got ${String(v)}`);
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(v.toFixed(12));
  if (!m) throw new ReportError(where, `expected a dollar amount, got ${String(v)}`);
  const pico = BigInt(m[2]!) * 1_000_000_000_000n + BigInt((m[3] ?? '').padEnd(12, '0'));
  return m[1] ? -pico : pico;
}

function str(row: Obj, field: string, path: string): string | undefined {
  const v = row[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !v)
    throw new ReportError(`${path}.${field}`, `expected a string or null, got ${JSON.stringify(v)}`);
  return v;
}

/** The model a line item names (`"gpt-5.4, input_tokens"` → `gpt-5.4`), canonical where priced. */
function modelOf(line: string | undefined, prices: PriceTable, at: number): string {
  if (!line) return UNATTRIBUTED;
  const comma = line.indexOf(',');
  if (comma <= 0) return UNATTRIBUTED;
  const model = line.slice(0, comma).trim();
  return prices.lookup(model, at)?.model ?? model;
}

function dayOf(b: Obj, path: string): string {
  const t = b.start_time;
  if (typeof t !== 'number' || !Number.isSafeInteger(t)) {
    throw new ReportError(`${path}.start_time`, `expected Unix seconds, got ${JSON.stringify(t ?? null)}`);
  }
  return new Date(t * 1000).toISOString().slice(0, 10);
}

/** Parses an OpenAI costs page (already JSON) for `day`. Throws ReportError. */
export function parseOpenAICosts(json: unknown, day: string, prices: PriceTable): ProviderFigures {
  const range = dayRange(day);
  if (!range) throw new ReportError('day', `expected a date like 2026-01-31, got ${JSON.stringify(day)}`);
  if (!isObj(json)) throw new ReportError('report', 'expected a JSON object with a "data" array of buckets');
  if (!Array.isArray(json.data))
    throw new ReportError('data', 'required: an array of buckets ({start_time, results})');
  if (json.has_more === true) {
    throw new ReportError(
      'has_more',
      'the costs report is one page of several (has_more: true): fetch every page (follow next_page) and pass them merged into one "data" array',
    );
  }
  const covers = new Set<string>();
  const pico = new Map<string, bigint>();
  const accounts = new Map<string, bigint>();
  let found = false;
  json.data.forEach((b, i) => {
    const path = `data[${i}]`;
    if (!isObj(b)) throw new ReportError(path, 'expected a bucket object');
    const d = dayOf(b, path);
    covers.add(d);
    if (!Array.isArray(b.results))
      throw new ReportError(`${path}.results`, 'required: an array of result rows');
    if (d !== day) return;
    found = true;
    b.results.forEach((row, j) => {
      const p = `${path}.results[${j}]`;
      if (!isObj(row)) throw new ReportError(p, 'expected a result object');
      if (!isObj(row.amount)) throw new ReportError(`${p}.amount`, 'required: {value, currency}');
      const cur = row.amount.currency;
      if (cur !== undefined && (typeof cur !== 'string' || cur.toLowerCase() !== 'usd')) {
        throw new ReportError(`${p}.amount.currency`, `expected "usd", got ${JSON.stringify(cur)}`);
      }
      const value = row.amount.value;
      if (typeof value !== 'number') {
        throw new ReportError(
          `${p}.amount.value`,
          `expected a dollar amount as a number, got ${JSON.stringify(value ?? null)}`,
        );
      }
      const cost = usdToPico(value, `${p}.amount.value`);
      const model = modelOf(str(row, 'line_item', p), prices, range.since);
      pico.set(model, (pico.get(model) ?? 0n) + cost);
      const project = str(row, 'project_id', p);
      if (project) accounts.set(`project:${project}`, (accounts.get(`project:${project}`) ?? 0n) + cost);
    });
  });
  const sorted = [...covers].sort();
  if (!found) {
    throw new ReportError(
      'report',
      `holds no data for ${day} (it covers ${sorted.length ? `${sorted[0]}${sorted.length > 1 ? ` .. ${sorted.at(-1)}` : ''}` : 'no day at all'})`,
    );
  }
  return {
    format: 'openai-costs',
    day,
    models: new Map([...pico].map(([m, v]) => [m, { cost: picoToMicros(v) }])),
    accounts: new Map([...accounts].map(([k, v]) => [k, picoToMicros(v)])),
    covers: sorted,
  };
}
