import { OPENAI_PRICES } from './openai-prices.ts';

/**
 * Anthropic list prices as data: USD per million tokens, effective from a date. USD per MTok is
 * numerically µ$ per token, which is how pricing.ts uses these numbers. Config can add models or
 * override rates (`prices:` in chokepoint.config.yaml); an entry with a later `from` wins from
 * that day on.
 */
export interface Rates {
  input: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  cacheRead: number;
  output: number;
}

export interface PriceEntry {
  /** Canonical model id (dated where Anthropic dates it). */
  model: string;
  /**
   * The provider kind these rates are for (`bedrock`, `vertex`, `openai`). Absent: Anthropic's
   * list prices, which also price Claude on a cloud that has no row of its own for the model.
   */
  provider?: string;
  aliases: string[];
  /** ISO date from which these rates apply. */
  from: string;
  rates: Rates;
  /** Above `threshold` prompt tokens (input + cache writes + cache reads), every token of the
   * request, output included, is priced at `rates` (Haiku 5.5 above 100K; Sonnet 4/4.5's old 1M beta). */
  longContext?: { threshold: number; rates: Rates };
  /** `speed: "fast"` rates, where the model offers fast mode (2× every class today). */
  fast?: Rates;
  /** The most output tokens one request may ask for. */
  maxOutputTokens: number;
  displayName?: string;
  /** ISO release date (what `GET /v1/models` reports as created_at). */
  released?: string;
  /** ISO date the provider stops serving the model (end of life): flagged at start, hidden from /v1/models. */
  retires?: string;
  /** `inference_geo: "us"` is accepted (1.1×): Claude 4.6 and later. */
  usOnly?: boolean;
}

/** Server tools billed per use, by the usage field that counts them. */
export type ServerTool = 'webSearch' | 'webFetch' | 'codeExecution' | 'fileSearch' | 'codeInterpreter';

/**
 * µ$ per use. Web search: $10 per 1,000 searches. Web fetch: tokens only. Code execution is
 * metered by the provider per container-hour at the organisation level (1,550 free hours a month,
 * then $0.05/hour, 5 minutes minimum, free beside web search/fetch 2026-02-09+): the gateway
 * charges each reported execution the paid 5-minute minimum (4,167 µ$), never less than the bill;
 * reconciliation corrects it. Sources: docs/research/anthropic-2026-12.md §5.
 */
export const SERVER_TOOL_PRICES: Partial<Record<ServerTool, number>> = {
  webSearch: 10_000,
  webFetch: 0,
  codeExecution: 4_167,
};

const r = (input: number, read: number, output: number): Rates => ({
  input,
  cacheWrite5m: input * 1.25,
  cacheWrite1h: input * 2,
  cacheRead: read,
  output,
});
const twice = (x: Rates): Rates => ({
  input: x.input * 2,
  cacheWrite5m: x.cacheWrite5m * 2,
  cacheWrite1h: x.cacheWrite1h * 2,
  cacheRead: x.cacheRead * 2,
  output: x.output * 2,
});

const FABLE_52 = r(8, 0.2, 40);
const FABLE_51 = r(10, 0.25, 50);
const FABLE_5 = r(10, 1, 50);
const OPUS_55 = r(4, 0.2, 20);
const OPUS_45 = r(5, 0.5, 25);
const OPUS_4 = r(15, 1.5, 75);
const SONNET_5 = r(2, 0.2, 10);
const SONNET_55 = r(2, 0.1, 10);
const SONNET_4 = r(3, 0.3, 15);
const SONNET_4_LONG: Rates = { input: 6, cacheWrite5m: 7.5, cacheWrite1h: 12, cacheRead: 0.6, output: 22.5 };
const HAIKU_55 = r(0.1, 0.01, 0.5);
const HAIKU_55_LONG = r(0.5, 0.05, 2.5);
const HAIKU_45 = r(1, 0.1, 5);
const HAIKU_35 = r(0.8, 0.08, 4);

const K128 = 128_000;

/**
 * Anthropic's list prices on 2026-12-02, looked up in the provider's model and pricing pages (the
 * sources, and what rests on third-party pages only, are in docs/research/anthropic-2026-12.md).
 * Cache writes are 1.25× (5m) and 2× (1h) input on every model; cache reads differ per model
 * (0.1× on most, 0.05× on Opus 5.5 and on Sonnet 5.5 since 2026-10-07, 0.025× on Fable 5.1/5.2).
 * Batch (50%), US-only inference (1.1×) and fast mode (2×) apply on top (pricing.ts).
 */
export const DEFAULT_PRICES: PriceEntry[] = [
  {
    model: 'claude-fable-5-2',
    aliases: [],
    from: '2026-11-09',
    rates: FABLE_52,
    fast: twice(FABLE_52),
    maxOutputTokens: K128,
    displayName: 'Claude Fable 5.2',
    released: '2026-11-09',
    usOnly: true,
  },
  {
    model: 'claude-mythos-5-2',
    aliases: [],
    from: '2026-11-09',
    rates: FABLE_52,
    fast: twice(FABLE_52),
    maxOutputTokens: K128,
    displayName: 'Claude Mythos 5.2',
    released: '2026-11-09',
    usOnly: true,
  },
  {
    model: 'claude-fable-5-1',
    aliases: [],
    from: '2026-09-01',
    rates: FABLE_51,
    maxOutputTokens: K128,
    displayName: 'Claude Fable 5.1',
    released: '2026-09-01',
    usOnly: true,
  },
  {
    model: 'claude-mythos-5-1',
    aliases: [],
    from: '2026-09-01',
    rates: FABLE_51,
    maxOutputTokens: K128,
    displayName: 'Claude Mythos 5.1',
    released: '2026-09-01',
    usOnly: true,
  },
  {
    model: 'claude-fable-5',
    aliases: [],
    from: '2026-06-09',
    rates: FABLE_5,
    maxOutputTokens: K128,
    displayName: 'Claude Fable 5',
    released: '2026-06-09',
    usOnly: true,
  },
  {
    model: 'claude-opus-5-5',
    aliases: [],
    from: '2026-09-22',
    rates: OPUS_55,
    fast: twice(OPUS_55),
    maxOutputTokens: K128,
    displayName: 'Claude Opus 5.5',
    released: '2026-09-22',
    usOnly: true,
  },
  {
    model: 'claude-opus-5',
    aliases: [],
    from: '2026-07-24',
    rates: OPUS_45,
    fast: twice(OPUS_45),
    maxOutputTokens: K128,
    displayName: 'Claude Opus 5',
    released: '2026-07-24',
    usOnly: true,
  },
  {
    model: 'claude-opus-4-8',
    aliases: [],
    from: '2026-05-28',
    rates: OPUS_45,
    maxOutputTokens: K128,
    displayName: 'Claude Opus 4.8',
    released: '2026-05-28',
    usOnly: true,
  },
  {
    model: 'claude-opus-4-7',
    aliases: [],
    from: '2026-04-16',
    rates: OPUS_45,
    maxOutputTokens: K128,
    displayName: 'Claude Opus 4.7',
    released: '2026-04-16',
    usOnly: true,
  },
  {
    model: 'claude-opus-4-6',
    aliases: [],
    from: '2026-02-05',
    rates: OPUS_45,
    maxOutputTokens: K128,
    displayName: 'Claude Opus 4.6',
    released: '2026-02-05',
    usOnly: true,
  },
  {
    model: 'claude-opus-4-5-20251101',
    aliases: ['claude-opus-4-5'],
    from: '2025-11-01',
    rates: OPUS_45,
    maxOutputTokens: 64_000,
    displayName: 'Claude Opus 4.5',
    released: '2025-11-24',
    retires: '2027-01-22',
  },
  {
    model: 'claude-opus-4-1-20250805',
    aliases: ['claude-opus-4-1'],
    from: '2025-08-05',
    rates: OPUS_4,
    maxOutputTokens: 32_000,
    displayName: 'Claude Opus 4.1',
    released: '2025-08-05',
    retires: '2026-08-05',
  },
  {
    model: 'claude-opus-4-20250514',
    aliases: ['claude-opus-4-0'],
    from: '2025-05-14',
    rates: OPUS_4,
    maxOutputTokens: 32_000,
    displayName: 'Claude Opus 4',
    released: '2025-05-14',
    retires: '2026-06-15',
  },
  // Sonnet 5.5's cache reads were cut from $0.20 to $0.10 per MTok on 2026-10-07: two rows.
  {
    model: 'claude-sonnet-5-5',
    aliases: [],
    from: '2026-10-07',
    rates: SONNET_55,
    maxOutputTokens: K128,
    displayName: 'Claude Sonnet 5.5',
    released: '2026-09-28',
    usOnly: true,
  },
  {
    model: 'claude-sonnet-5-5',
    aliases: [],
    from: '2026-09-28',
    rates: SONNET_5,
    maxOutputTokens: K128,
    displayName: 'Claude Sonnet 5.5',
    released: '2026-09-28',
    usOnly: true,
  },
  {
    model: 'claude-sonnet-5',
    aliases: [],
    from: '2026-06-30',
    rates: SONNET_5,
    maxOutputTokens: K128,
    displayName: 'Claude Sonnet 5',
    released: '2026-06-30',
    usOnly: true,
  },
  // Flat across its 1M window: no long-context premium for Claude 4.6 and later.
  {
    model: 'claude-sonnet-4-6',
    aliases: [],
    from: '2026-02-17',
    rates: SONNET_4,
    maxOutputTokens: K128,
    displayName: 'Claude Sonnet 4.6',
    released: '2026-02-17',
    usOnly: true,
  },
  // The >200K tier existed only with the 1M beta, retired 2026-04-30; kept for older calls.
  {
    model: 'claude-sonnet-4-5-20250929',
    aliases: ['claude-sonnet-4-5'],
    from: '2025-09-29',
    rates: SONNET_4,
    longContext: { threshold: 200_000, rates: SONNET_4_LONG },
    maxOutputTokens: 64_000,
    displayName: 'Claude Sonnet 4.5',
    released: '2025-09-29',
    retires: '2026-11-30',
  },
  {
    model: 'claude-sonnet-4-20250514',
    aliases: ['claude-sonnet-4-0'],
    from: '2025-05-14',
    rates: SONNET_4,
    longContext: { threshold: 200_000, rates: SONNET_4_LONG },
    maxOutputTokens: 64_000,
    displayName: 'Claude Sonnet 4',
    released: '2025-05-14',
    retires: '2026-06-15',
  },
  // Priced by prompt length: above 100,000 prompt tokens every token of the request costs 5×.
  {
    model: 'claude-haiku-5-5',
    aliases: [],
    from: '2026-10-07',
    rates: HAIKU_55,
    longContext: { threshold: 100_000, rates: HAIKU_55_LONG },
    maxOutputTokens: K128,
    displayName: 'Claude Haiku 5.5',
    released: '2026-10-07',
    usOnly: true,
  },
  {
    model: 'claude-haiku-4-5-20251001',
    aliases: ['claude-haiku-4-5'],
    from: '2025-10-01',
    rates: HAIKU_45,
    maxOutputTokens: 64_000,
    displayName: 'Claude Haiku 4.5',
    released: '2025-10-15',
  },
  {
    model: 'claude-3-5-haiku-20241022',
    aliases: ['claude-3-5-haiku-latest'],
    from: '2024-10-22',
    rates: HAIKU_35,
    maxOutputTokens: 8_192,
    displayName: 'Claude Haiku 3.5',
    released: '2024-10-22',
    retires: '2026-02-19',
  },
];

/** Every price the gateway knows without config: Anthropic's list and OpenAI's (openai-prices.ts). */
export const BUILT_IN_PRICES: readonly PriceEntry[] = [...DEFAULT_PRICES, ...OPENAI_PRICES];
