import { formatUsd } from '../../money.ts';
import { type EndOfLife, endOfLifeLine, type Lifecycle, lifecycleOf } from '../../pricing/lifecycle.ts';
import { type PriceEntry, type Rates, SERVER_TOOL_PRICES } from '../../pricing/prices.ts';
import type { PriceTable } from '../../pricing/pricing.ts';
import type { IsoTime } from './format.ts';

/** Dollars per million tokens, per token class. */
export interface RatesView {
  input: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  cacheRead: number;
  output: number;
}

/**
 * One price row. `effective` says which row of a model's effective-dated history it is: the one
 * in force now (`current`), an older one (`past`) or one from a later date (`future`).
 */
export interface PriceView {
  model: string;
  aliases: string[];
  from: string;
  effective: 'current' | 'past' | 'future';
  display_name: string;
  released: string | null;
  retires: string | null;
  status: Lifecycle;
  rates_usd_per_mtok: RatesView;
  long_context?: { above_prompt_tokens: number; rates_usd_per_mtok: RatesView };
  fast?: { rates_usd_per_mtok: RatesView };
  max_output_tokens: number;
  us_only: boolean;
}

function ratesView(r: Rates): RatesView {
  return {
    input: r.input,
    cacheWrite5m: r.cacheWrite5m,
    cacheWrite1h: r.cacheWrite1h,
    cacheRead: r.cacheRead,
    output: r.output,
  };
}

export function priceView(e: PriceEntry, effective: PriceView['effective'], now: number): PriceView {
  return {
    model: e.model,
    aliases: e.aliases,
    from: e.from,
    effective,
    display_name: e.displayName ?? e.model,
    released: e.released ?? null,
    retires: e.retires ?? null,
    status: lifecycleOf(e, now),
    rates_usd_per_mtok: ratesView(e.rates),
    ...(e.longContext
      ? {
          long_context: {
            above_prompt_tokens: e.longContext.threshold,
            rates_usd_per_mtok: ratesView(e.longContext.rates),
          },
        }
      : {}),
    ...(e.fast ? { fast: { rates_usd_per_mtok: ratesView(e.fast) } } : {}),
    max_output_tokens: e.maxOutputTokens,
    us_only: e.usOnly === true,
  };
}

/** The price table: every model's rows (the current one first), newest models first. */
export function priceTableView(prices: PriceTable, now: number): PriceView[] {
  const current = new Set(prices.current(now));
  const byModel = new Map<string, PriceEntry[]>();
  for (const e of prices.entries()) byModel.set(e.model, [...(byModel.get(e.model) ?? []), e]);
  const released = (rows: PriceEntry[]) => {
    const e = rows.find((x) => current.has(x)) ?? rows[0]!;
    return Date.parse(`${e.released ?? e.from}T00:00:00Z`);
  };
  const from = (e: PriceEntry) => Date.parse(`${e.from}T00:00:00Z`);
  return [...byModel.entries()]
    .sort(([a, ra], [b, rb]) => released(rb) - released(ra) || a.localeCompare(b))
    .flatMap(([, rows]) =>
      rows
        .sort((a, b) => Number(current.has(b)) - Number(current.has(a)) || from(b) - from(a))
        .map((e) => priceView(e, current.has(e) ? 'current' : from(e) > now ? 'future' : 'past', now)),
    );
}

/** A model refused as unknown lately and still unpriced, with the `prices:` entry to add. */
export interface MissingPriceView {
  model: string;
  calls: number;
  last_seen: IsoTime | null;
  prices_entry: string;
}

export type ServerToolPricesView = Record<string, { usd_per_use: string; micros_per_use: number }>;

export function serverToolPricesView(): ServerToolPricesView {
  return Object.fromEntries(
    Object.entries(SERVER_TOOL_PRICES).map(([tool, micros]) => [
      tool,
      { usd_per_use: formatUsd(micros), micros_per_use: micros },
    ]),
  );
}

/** `GET /api/prices`. */
export interface PricesResponse {
  at: IsoTime | null;
  prices: PriceView[];
  missing: MissingPriceView[];
  server_tools: ServerToolPricesView;
}

export interface EndOfLifeView {
  model: string;
  status: EndOfLife['status'];
  retires: string;
  used_by: string[];
  move_to: string | null;
  summary: string;
}

export function endOfLifeView(e: EndOfLife): EndOfLifeView {
  return {
    model: e.name,
    status: e.status,
    retires: e.retires,
    used_by: e.usedBy,
    move_to: e.successor ?? null,
    summary: endOfLifeLine(e),
  };
}

/** `POST /api/prices/reload`. */
export interface PricesReloadResponse {
  reloaded: string;
  file: string;
  models: number;
  entries: number;
  restart_needed: string[];
  end_of_life: EndOfLifeView[];
}
