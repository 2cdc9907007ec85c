/**
 * OpenAI list prices as data (USD per MTok = µ$ per token), same shape as prices.ts, each row
 * `provider: 'openai'`; pricing.ts joins them to Anthropic's list. Sources and dates: docs/research/openai-2026-12.md §1–§2
 * (developers.openai.com/api/docs/pricing and the models' pages, as quoted by the trackers cited
 * there; the openai SDK 7.59 for the usage fields).
 *
 * - `cacheRead` = cached input. `cacheWrite5m` = a 30-minute cache write, `cacheWrite1h` = a
 *   12-hour one: 1.25× input from GPT-5.6 on (UNKNOWN for 12-hour writes: the 30-minute rate is
 *   used); before GPT-5.6 writes carry no premium, so both equal the input rate.
 * - Reasoning tokens are output tokens (inside `completion_tokens` / `output_tokens`).
 * - `longContext`: the 1.05M-window models bill the whole request at 2× input, cached and write
 *   and 1.5× output when the prompt is above 272,000 tokens.
 * - Batch (½), flex and priority tiers are not modelled here (the call path sends none).
 */
import type { PriceEntry, Rates } from './prices.ts';

const r = (input: number, cached: number, output: number, writePremium = false): Rates => {
  const write = writePremium ? input * 1.25 : input;
  return { input, cacheWrite5m: write, cacheWrite1h: write, cacheRead: cached, output };
};
const long = (x: Rates) => ({
  threshold: 272_000,
  rates: {
    input: x.input * 2,
    cacheWrite5m: x.cacheWrite5m * 2,
    cacheWrite1h: x.cacheWrite1h * 2,
    cacheRead: x.cacheRead * 2,
    output: x.output * 1.5,
  },
});
const K128 = 128_000;
/** A GPT-5.4+ row: 128K output, the >272K long-context tier. */
const gpt = (model: string, from: string, rates: Rates, aliases: string[] = []): PriceEntry => ({
  model,
  provider: 'openai',
  aliases,
  from,
  rates,
  longContext: long(rates),
  maxOutputTokens: K128,
  released: from,
});
/** A row without a long-context tier. */
const flat = (model: string, from: string, rates: Rates, maxOutputTokens: number): PriceEntry => ({
  model,
  provider: 'openai',
  aliases: [],
  from,
  rates,
  maxOutputTokens,
  released: from,
});

export const OPENAI_PRICES: PriceEntry[] = [
  gpt('gpt-6.1-terra', '2026-10-26', r(1, 0.05, 5, true)),
  gpt('gpt-6.1-sol', '2026-09-29', r(2, 0.1, 10, true)),
  gpt('gpt-6-sol', '2026-09-22', r(2, 0.2, 10, true)),
  gpt('gpt-6-luna', '2026-09-22', r(0.1, 0.01, 0.5, true)),
  gpt('gpt-6-astra', '2026-09-03', r(10, 1, 50, true)),
  gpt('gpt-5.6-sol', '2026-07-09', r(5, 0.5, 30, true), ['gpt-5.6']),
  // Promotional cut "through at least 2026-11-21"; no end was announced by 2026-12-02.
  gpt('gpt-5.6-sol', '2026-08-21', r(4, 0.4, 20, true), ['gpt-5.6']),
  gpt('gpt-5.6-terra', '2026-07-09', r(2.5, 0.25, 15, true)),
  gpt('gpt-5.6-terra', '2026-07-30', r(2, 0.2, 12, true)),
  gpt('gpt-5.6-luna', '2026-07-09', r(1, 0.1, 6, true)),
  gpt('gpt-5.6-luna', '2026-07-30', r(0.2, 0.02, 1.2, true)),
  gpt('gpt-5.5', '2026-04-23', r(5, 0.5, 30)),
  // Sold without a cached-input discount.
  gpt('gpt-5.5-pro', '2026-04-23', r(30, 30, 180)),
  gpt('gpt-5.4', '2026-03-05', r(2.5, 0.25, 15)),
  gpt('gpt-5.4-mini', '2026-03-17', r(0.75, 0.075, 4.5)),
  gpt('gpt-5.4-nano', '2026-03-17', r(0.2, 0.02, 1.25)),
  gpt('gpt-5.4-pro', '2026-03-05', r(30, 30, 180)),
  flat('gpt-5.2', '2025-12-11', r(1.75, 0.175, 14), K128),
  flat('gpt-5.1', '2025-11-13', r(1.25, 0.125, 10), K128),
  flat('gpt-5', '2025-08-07', r(1.25, 0.125, 10), K128),
  flat('gpt-5-mini', '2025-08-07', r(0.25, 0.025, 2), K128),
  flat('gpt-5-nano', '2025-08-07', r(0.05, 0.005, 0.4), K128),
  flat('gpt-4.1', '2025-04-14', r(2, 0.5, 8), 32_768),
  flat('gpt-4o', '2024-05-13', r(2.5, 1.25, 10), 16_384),
  flat('gpt-4o-mini', '2024-07-18', r(0.15, 0.075, 0.6), 16_384),
  flat('text-embedding-3-large', '2024-01-25', r(0.13, 0, 0), 0),
  flat('text-embedding-3-small', '2024-01-25', r(0.02, 0, 0), 0),
];

/**
 * The Responses API's built-in tools, µ$ per call (proposed `SERVER_TOOL_PRICES` entries for the
 * `openai` provider): web search $10 / 1,000 calls (search content tokens billed as input);
 * file search $2.50 / 1,000 calls; code interpreter: a container session is $0.03 per 20 minutes
 * (1 GB), billed by the minute with a 5-minute minimum — charged here as one full 20-minute
 * 1 GB session per `code_interpreter_call` (an upper bound for sessions up to 20 minutes, never
 * below the bill for those; reconciliation corrects it).
 */
export const OPENAI_TOOL_PRICES = {
  webSearch: 10_000,
  fileSearch: 2_500,
  codeInterpreter: 30_000,
} as const;
