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
  aliases: string[];
  /** ISO date from which these rates apply. */
  from: string;
  rates: Rates;
  /** Above `threshold` input tokens (input + cache writes + cache reads), every token is priced at `rates`. */
  longContext?: { threshold: number; rates: Rates };
  /** The most output tokens one request may ask for. */
  maxOutputTokens: number;
}

const OPUS_45: Rates = { input: 5, cacheWrite5m: 6.25, cacheWrite1h: 10, cacheRead: 0.5, output: 25 };
const OPUS_4: Rates = { input: 15, cacheWrite5m: 18.75, cacheWrite1h: 30, cacheRead: 1.5, output: 75 };
const SONNET_4: Rates = { input: 3, cacheWrite5m: 3.75, cacheWrite1h: 6, cacheRead: 0.3, output: 15 };
const SONNET_4_LONG: Rates = { input: 6, cacheWrite5m: 7.5, cacheWrite1h: 12, cacheRead: 0.6, output: 22.5 };
const HAIKU_45: Rates = { input: 1, cacheWrite5m: 1.25, cacheWrite1h: 2, cacheRead: 0.1, output: 5 };
const HAIKU_35: Rates = { input: 0.8, cacheWrite5m: 1, cacheWrite1h: 1.6, cacheRead: 0.08, output: 4 };

const SONNET_LONG = { threshold: 200_000, rates: SONNET_4_LONG };

export const DEFAULT_PRICES: PriceEntry[] = [
  {
    model: 'claude-opus-4-6',
    aliases: [],
    from: '2025-11-01',
    rates: OPUS_45,
    maxOutputTokens: 128_000,
  },
  {
    model: 'claude-opus-4-5-20251101',
    aliases: ['claude-opus-4-5'],
    from: '2025-11-01',
    rates: OPUS_45,
    maxOutputTokens: 64_000,
  },
  {
    model: 'claude-opus-4-1-20250805',
    aliases: ['claude-opus-4-1'],
    from: '2025-08-05',
    rates: OPUS_4,
    maxOutputTokens: 32_000,
  },
  {
    model: 'claude-opus-4-20250514',
    aliases: ['claude-opus-4-0'],
    from: '2025-05-14',
    rates: OPUS_4,
    maxOutputTokens: 32_000,
  },
  {
    // Flat across its 1M window: no long-context premium for Sonnet 4.6.
    model: 'claude-sonnet-4-6',
    aliases: [],
    from: '2025-11-01',
    rates: SONNET_4,
    maxOutputTokens: 128_000,
  },
  {
    model: 'claude-sonnet-4-5-20250929',
    aliases: ['claude-sonnet-4-5'],
    from: '2025-09-29',
    rates: SONNET_4,
    longContext: SONNET_LONG,
    maxOutputTokens: 64_000,
  },
  {
    model: 'claude-sonnet-4-20250514',
    aliases: ['claude-sonnet-4-0'],
    from: '2025-05-14',
    rates: SONNET_4,
    longContext: SONNET_LONG,
    maxOutputTokens: 64_000,
  },
  {
    model: 'claude-haiku-4-5-20251001',
    aliases: ['claude-haiku-4-5'],
    from: '2025-10-01',
    rates: HAIKU_45,
    maxOutputTokens: 64_000,
  },
  {
    model: 'claude-3-5-haiku-20241022',
    aliases: ['claude-3-5-haiku-latest'],
    from: '2024-10-22',
    rates: HAIKU_35,
    maxOutputTokens: 8_192,
  },
];
