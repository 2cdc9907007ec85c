/**
 * The emulated OpenAI's own catalogue: the models its face serves and what it bills them. Kept
 * apart from the runtime's price table on purpose (the emulator never imports the runtime), so a
 * price the runtime gets wrong shows up as a reconciliation difference. Source:
 * docs/research/openai-2026-12.md (§1 models and prices, §2 prompt caching).
 *
 * - Rates are integer pico-dollars per token (USD/MTok × 10⁶), like the Anthropic catalogue.
 * - Cache writes: GPT-5.6 and later bill them at 1.25× uncached input (`cacheWrites: true`,
 *   reported in `cache_write_tokens`); earlier models have no write fee (write rate = input).
 *   `cacheWrite5m` holds the 30-minute write rate, `cacheWrite1h` the 12-hour one (UNKNOWN on the
 *   price page: the 30-minute rate is used).
 * - Long context: the 1.05M-window models bill the whole request at 2× input/cached/write and
 *   1.5× output when the prompt is above 272,000 tokens (`band`).
 */
import type { PricedModel, PriceTable } from '../catalog.ts';

export interface OpenAIModel extends PricedModel {
  readonly kind: 'chat' | 'embedding';
  /** Unix seconds, as `GET /v1/models` shows `created`. */
  readonly created: number;
  /** Reasoning model: `max_tokens` is refused on chat completions (use `max_completion_tokens`). */
  readonly reasoning: boolean;
  /** GPT-5.6 and later: exact-match breakpoints, cache writes billed and reported. */
  readonly cacheWrites: boolean;
  readonly contextWindow: number;
  readonly maxOutputTokens: number;
  /** Embedding models: the default vector length. */
  readonly dimensions?: number;
}

const p = (usd: number) => Math.round(usd * 1_000_000);
/** Rates from USD/MTok; `write` true: the 1.25× write fee of GPT-5.6+. */
const rates = (input: number, cached: number, output: number, write = false): PriceTable => {
  const w = write ? p(input) * 1.25 : p(input);
  return { input: p(input), cacheWrite5m: w, cacheWrite1h: w, cacheRead: p(cached), output: p(output) };
};
const long = (r: PriceTable) => ({
  above: 272_000,
  prices: {
    input: r.input * 2,
    cacheWrite5m: r.cacheWrite5m * 2,
    cacheWrite1h: r.cacheWrite1h * 2,
    cacheRead: r.cacheRead * 2,
    output: r.output * 1.5,
  },
});
const day = (iso: string) => Date.parse(`${iso}T00:00:00Z`) / 1000;
const M105 = 1_050_000;
const K128 = 128_000;

type Row = Omit<OpenAIModel, 'kind' | 'reasoning' | 'cacheWrites' | 'contextWindow' | 'maxOutputTokens'> &
  Partial<OpenAIModel>;
/** A reasoning chat model with the 1.05M window and the long-context band. */
const gpt = (r: Row): OpenAIModel => ({
  kind: 'chat',
  reasoning: true,
  cacheWrites: false,
  contextWindow: M105,
  maxOutputTokens: K128,
  band: long(r.priceChanges?.at(-1)?.prices ?? r.prices),
  ...r,
});

/** Newest first. */
export const OPENAI_MODELS: readonly OpenAIModel[] = [
  gpt({
    id: 'gpt-6.1-terra',
    created: day('2026-10-26'),
    prices: rates(1, 0.05, 5, true),
    cacheWrites: true,
  }),
  gpt({ id: 'gpt-6.1-sol', created: day('2026-09-29'), prices: rates(2, 0.1, 10, true), cacheWrites: true }),
  gpt({ id: 'gpt-6-sol', created: day('2026-09-22'), prices: rates(2, 0.2, 10, true), cacheWrites: true }),
  gpt({
    id: 'gpt-6-luna',
    created: day('2026-09-22'),
    prices: rates(0.1, 0.01, 0.5, true),
    cacheWrites: true,
  }),
  gpt({ id: 'gpt-6-astra', created: day('2026-09-03'), prices: rates(10, 1, 50, true), cacheWrites: true }),
  gpt({
    ...{ id: 'gpt-5.6-sol', created: day('2026-07-09'), prices: rates(5, 0.5, 30, true), cacheWrites: true },
    // 2026-08-21: promotional cut, "through at least 2026-11-21"; no end announced (research §1).
    priceChanges: [{ from: '2026-08-21T00:00:00Z', prices: rates(4, 0.4, 20, true) }],
  }),
  gpt({
    ...{ id: 'gpt-5.6-terra', created: day('2026-07-09'), prices: rates(2.5, 0.25, 15, true) },
    ...{
      cacheWrites: true,
      priceChanges: [{ from: '2026-07-30T00:00:00Z', prices: rates(2, 0.2, 12, true) }],
    },
  }),
  gpt({
    ...{ id: 'gpt-5.6-luna', created: day('2026-07-09'), prices: rates(1, 0.1, 6, true) },
    ...{
      cacheWrites: true,
      priceChanges: [{ from: '2026-07-30T00:00:00Z', prices: rates(0.2, 0.02, 1.2, true) }],
    },
  }),
  gpt({ id: 'gpt-5.5', created: day('2026-04-23'), prices: rates(5, 0.5, 30) }),
  // GPT-5.5 Pro is sold without a cached-input discount.
  gpt({ id: 'gpt-5.5-pro', created: day('2026-04-23'), prices: rates(30, 30, 180) }),
  gpt({ id: 'gpt-5.4', created: day('2026-03-05'), prices: rates(2.5, 0.25, 15) }),
  gpt({ id: 'gpt-5.4-mini', created: day('2026-03-17'), prices: rates(0.75, 0.075, 4.5) }),
  gpt({ id: 'gpt-5.4-nano', created: day('2026-03-17'), prices: rates(0.2, 0.02, 1.25) }),
  gpt({ id: 'gpt-5.2', created: day('2025-12-11'), prices: rates(1.75, 0.175, 14), contextWindow: 400_000 }),
  gpt({ id: 'gpt-5.1', created: day('2025-11-13'), prices: rates(1.25, 0.125, 10), contextWindow: 400_000 }),
  gpt({ id: 'gpt-5', created: day('2025-08-07'), prices: rates(1.25, 0.125, 10), contextWindow: 400_000 }),
  gpt({
    id: 'gpt-5-mini',
    created: day('2025-08-07'),
    prices: rates(0.25, 0.025, 2),
    contextWindow: 400_000,
  }),
  gpt({
    id: 'gpt-5-nano',
    created: day('2025-08-07'),
    prices: rates(0.05, 0.005, 0.4),
    contextWindow: 400_000,
  }),
  {
    ...{ id: 'gpt-4.1', kind: 'chat', created: day('2025-04-14'), prices: rates(2, 0.5, 8) },
    ...{ reasoning: false, cacheWrites: false, contextWindow: 1_047_576, maxOutputTokens: 32_768 },
  },
  {
    ...{ id: 'gpt-4o', kind: 'chat', created: day('2024-05-13'), prices: rates(2.5, 1.25, 10) },
    ...{ reasoning: false, cacheWrites: false, contextWindow: K128, maxOutputTokens: 16_384 },
  },
  {
    ...{ id: 'gpt-4o-mini', kind: 'chat', created: day('2024-07-18'), prices: rates(0.15, 0.075, 0.6) },
    ...{ reasoning: false, cacheWrites: false, contextWindow: K128, maxOutputTokens: 16_384 },
  },
  {
    ...{
      id: 'text-embedding-3-large',
      kind: 'embedding',
      created: day('2024-01-25'),
      prices: rates(0.13, 0, 0),
    },
    ...{ reasoning: false, cacheWrites: false, contextWindow: 8191, maxOutputTokens: 0, dimensions: 3072 },
  },
  {
    ...{
      id: 'text-embedding-3-small',
      kind: 'embedding',
      created: day('2024-01-25'),
      prices: rates(0.02, 0, 0),
    },
    ...{ reasoning: false, cacheWrites: false, contextWindow: 8191, maxOutputTokens: 0, dimensions: 1536 },
  },
];

const BY_ID = new Map(OPENAI_MODELS.map((m) => [m.id, m]));
// Aliases OpenAI serves: `gpt-5.6` is Sol.
BY_ID.set('gpt-5.6', BY_ID.get('gpt-5.6-sol')!);

/** The model for an id or alias, or undefined. */
export function openaiModel(id: string): OpenAIModel | undefined {
  return BY_ID.get(id);
}

/** The minimum prompt (tokens) that is cached at all; below it nothing is read or written. */
export const MIN_CACHEABLE = 1024;
/** Before GPT-5.6, cache hits grow in steps of this many tokens past the first 1,024. */
export const CACHE_STEP = 128;
