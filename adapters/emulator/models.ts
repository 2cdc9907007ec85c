/**
 * Every model the emulated provider serves or served, with its limits, lifecycle and list prices.
 * Source: docs/research/anthropic-2026-12.md (§1 identity/limits/lifecycle, §2 prices, §4a fast
 * mode, §4b geo, §7 request fields, §8 minimum cacheable length). Points that rest on third-party
 * sources only are marked [3P]; values the research could not find are marked UNKNOWN with the
 * default used.
 *
 * - Minimum cacheable prompt (§8, prompt-caching page, Aug-2026 text): 512 Opus 5 / Fable 5 /
 *   Mythos 5; 512 [3P] Fable 5.1, Haiku 5.5; 2,048 Opus 4.7 and Haiku 3.5; 4,096 Opus 4.5/4.6 and
 *   Haiku 4.5; 1,024 Opus 4.8, Sonnet 5/4.6/4.5/4, Opus 4.1/4. UNKNOWN (1,024 used): Opus 5.5,
 *   Sonnet 5.5, Fable 5.2, Mythos 5.2, Mythos 5.1.
 * - Mid-conversation `role: "system"` (§7, §10.9): the official page (Aug-2026 text) lists Opus
 *   4.8, Opus 5, Fable 5, Mythos 5 and says "not Sonnet 5"; LangChain [3P] adds Opus 5.5, Sonnet
 *   5.5, Haiku 5.5 and Fable/Mythos 5.1 (models newer than the official text) but also claims
 *   Sonnet 5 — where the two conflict (Sonnet 5) the official reading wins: refused.
 * - `thinking: {type: "disabled"}` is a 400 on Fable 5.x and Opus 5.5 (§7). Mythos is not named
 *   there, so it is not treated as always-on.
 * - Fast mode (§4a): GA on Opus 5.5 and Fable/Mythos 5.2; research preview (beta header) on Opus 5;
 *   removed from Opus 4.8 on 2026-11-30 and Opus 4.7 on 2026-07-24 (error), from Opus 4.6 on
 *   2026-06-29 (served at standard speed, no error).
 * - createdAt: release dates from §1 (Opus 4/Sonnet 4: May 2025, day from the dated id).
 */
import type { ModelInfo, PriceTable } from './catalog.ts';

/** A price table from USD/MTok list prices (converted to integer pico-dollars per token). */
const usd = (input: number, w5: number, w1: number, read: number, output: number): PriceTable => {
  const p = (x: number) => Math.round(x * 1_000_000);
  return { input: p(input), cacheWrite5m: p(w5), cacheWrite1h: p(w1), cacheRead: p(read), output: p(output) };
};
const times = (t: PriceTable, k: number): PriceTable => ({
  input: t.input * k,
  cacheWrite5m: t.cacheWrite5m * k,
  cacheWrite1h: t.cacheWrite1h * k,
  cacheRead: t.cacheRead * k,
  output: t.output * k,
});

const FABLE_52 = usd(8, 10, 16, 0.2, 40); // cache rates [3P] (§10.1); in/out official
const FABLE_51 = usd(10, 12.5, 20, 0.25, 50);
const FABLE_5 = usd(10, 12.5, 20, 1, 50);
const OPUS_55 = usd(4, 5, 8, 0.2, 20);
const OPUS_45 = usd(5, 6.25, 10, 0.5, 25); // Opus 4.5 – 4.8 and Opus 5
const OPUS_4 = usd(15, 18.75, 30, 1.5, 75);
const SONNET_5 = usd(2, 2.5, 4, 0.2, 10);
const SONNET_4 = usd(3, 3.75, 6, 0.3, 15);
const SONNET_4_LONG = usd(6, 7.5, 12, 0.6, 22.5);
const HAIKU_55 = usd(0.1, 0.125, 0.2, 0.01, 0.5); // cache read [3P]
const HAIKU_45 = usd(1, 1.25, 2, 0.1, 5);
const HAIKU_35 = usd(0.8, 1, 1.6, 0.08, 4);

const M = 1_000_000;
const K128 = 128_000;
const BATCH_300K = 300_000;
const GA_FAST = { beta: false } as const;

type Row = Omit<ModelInfo, 'aliases' | 'midConversationSystem' | 'thinkingAlwaysOn'> &
  Partial<Pick<ModelInfo, 'aliases' | 'midConversationSystem' | 'thinkingAlwaysOn'>>;
const row = (r: Row): ModelInfo => ({
  aliases: [],
  midConversationSystem: false,
  thinkingAlwaysOn: false,
  ...r,
});

/** Newest first (the order `GET /v1/models` lists them). */
export const MODELS: readonly ModelInfo[] = [
  row({
    ...{ id: 'claude-fable-5-2', displayName: 'Claude Fable 5.2', line: 'fable', generation: 5.2 },
    ...{ createdAt: '2026-11-09T00:00:00Z', maxOutputTokens: K128, minCacheableTokens: 1024 },
    ...{ contextWindow: M, prices: FABLE_52, fast: GA_FAST },
    ...{ midConversationSystem: true, thinkingAlwaysOn: true },
  }),
  row({
    ...{ id: 'claude-mythos-5-2', displayName: 'Claude Mythos 5.2', line: 'mythos', generation: 5.2 },
    ...{ createdAt: '2026-11-09T00:00:00Z', maxOutputTokens: K128, minCacheableTokens: 1024 },
    ...{ contextWindow: M, prices: FABLE_52, fast: GA_FAST, midConversationSystem: true },
  }),
  row({
    ...{ id: 'claude-haiku-5-5', displayName: 'Claude Haiku 5.5', line: 'haiku', generation: 5.5 },
    ...{ createdAt: '2026-10-07T00:00:00Z', maxOutputTokens: K128, batchMaxOutputTokens: BATCH_300K },
    ...{ minCacheableTokens: 512, contextWindow: M, prices: HAIKU_55, midConversationSystem: true },
    // §2b: above 100,000 prompt tokens every class (output included) is billed at 5× ([3P] scope).
    band: { above: 100_000, prices: times(HAIKU_55, 5) },
  }),
  row({
    ...{ id: 'claude-sonnet-5-5', displayName: 'Claude Sonnet 5.5', line: 'sonnet', generation: 5.5 },
    ...{ createdAt: '2026-09-28T00:00:00Z', maxOutputTokens: K128, batchMaxOutputTokens: BATCH_300K },
    ...{ minCacheableTokens: 1024, contextWindow: M, prices: SONNET_5, midConversationSystem: true },
    // Release note 2026-10-08: cache reads lowered from $0.20 to $0.10/MTok, effective 2026-10-07.
    priceChanges: [{ from: '2026-10-07T00:00:00Z', prices: usd(2, 2.5, 4, 0.1, 10) }],
  }),
  row({
    ...{ id: 'claude-opus-5-5', displayName: 'Claude Opus 5.5', line: 'opus', generation: 5.5 },
    ...{ createdAt: '2026-09-22T00:00:00Z', maxOutputTokens: K128, batchMaxOutputTokens: BATCH_300K },
    ...{ minCacheableTokens: 1024, contextWindow: M, prices: OPUS_55, fast: GA_FAST },
    ...{ midConversationSystem: true, thinkingAlwaysOn: true },
  }),
  row({
    ...{ id: 'claude-fable-5-1', displayName: 'Claude Fable 5.1', line: 'fable', generation: 5.1 },
    ...{ createdAt: '2026-09-01T00:00:00Z', maxOutputTokens: K128, minCacheableTokens: 512 },
    ...{ contextWindow: M, prices: FABLE_51, midConversationSystem: true, thinkingAlwaysOn: true },
  }),
  row({
    ...{ id: 'claude-mythos-5-1', displayName: 'Claude Mythos 5.1', line: 'mythos', generation: 5.1 },
    ...{ createdAt: '2026-09-01T00:00:00Z', maxOutputTokens: K128, minCacheableTokens: 1024 },
    ...{ contextWindow: M, prices: FABLE_51, midConversationSystem: true },
  }),
  row({
    ...{ id: 'claude-opus-5', displayName: 'Claude Opus 5', line: 'opus', generation: 5 },
    ...{ createdAt: '2026-07-24T00:00:00Z', maxOutputTokens: K128, batchMaxOutputTokens: BATCH_300K },
    ...{ minCacheableTokens: 512, contextWindow: M, prices: OPUS_45, midConversationSystem: true },
    fast: { beta: true },
  }),
  row({
    ...{ id: 'claude-sonnet-5', displayName: 'Claude Sonnet 5', line: 'sonnet', generation: 5 },
    ...{ createdAt: '2026-06-30T00:00:00Z', maxOutputTokens: K128, batchMaxOutputTokens: BATCH_300K },
    ...{ minCacheableTokens: 1024, contextWindow: M, prices: SONNET_5 },
  }),
  row({
    ...{ id: 'claude-fable-5', displayName: 'Claude Fable 5', line: 'fable', generation: 5 },
    ...{ createdAt: '2026-06-09T00:00:00Z', maxOutputTokens: K128, minCacheableTokens: 512 },
    ...{ contextWindow: M, prices: FABLE_5, midConversationSystem: true, thinkingAlwaysOn: true },
  }),
  row({
    ...{ id: 'claude-mythos-5', displayName: 'Claude Mythos 5', line: 'mythos', generation: 5 },
    ...{ createdAt: '2026-06-09T00:00:00Z', maxOutputTokens: K128, minCacheableTokens: 512 },
    ...{ contextWindow: M, prices: FABLE_5, midConversationSystem: true },
  }),
  row({
    ...{ id: 'claude-opus-4-8', displayName: 'Claude Opus 4.8', line: 'opus', generation: 4.8 },
    ...{ createdAt: '2026-05-28T00:00:00Z', maxOutputTokens: K128, batchMaxOutputTokens: BATCH_300K },
    ...{ minCacheableTokens: 1024, contextWindow: M, prices: OPUS_45, midConversationSystem: true },
    fast: { beta: false, removedAt: '2026-11-30T00:00:00Z', afterRemoval: 'error' },
  }),
  row({
    ...{ id: 'claude-opus-4-7', displayName: 'Claude Opus 4.7', line: 'opus', generation: 4.7 },
    ...{ createdAt: '2026-04-16T00:00:00Z', maxOutputTokens: K128, batchMaxOutputTokens: BATCH_300K },
    ...{ minCacheableTokens: 2048, contextWindow: M, prices: OPUS_45 },
    fast: { beta: false, removedAt: '2026-07-24T00:00:00Z', afterRemoval: 'error' },
  }),
  row({
    ...{ id: 'claude-sonnet-4-6', displayName: 'Claude Sonnet 4.6', line: 'sonnet', generation: 4.6 },
    ...{ createdAt: '2026-02-17T00:00:00Z', maxOutputTokens: K128, batchMaxOutputTokens: BATCH_300K },
    ...{ minCacheableTokens: 1024, contextWindow: M, prices: SONNET_4 },
  }),
  row({
    ...{ id: 'claude-opus-4-6', displayName: 'Claude Opus 4.6', line: 'opus', generation: 4.6 },
    ...{ createdAt: '2026-02-05T00:00:00Z', maxOutputTokens: K128, batchMaxOutputTokens: BATCH_300K },
    ...{ minCacheableTokens: 4096, contextWindow: M, prices: OPUS_45 },
    fast: { beta: false, removedAt: '2026-06-29T00:00:00Z', afterRemoval: 'standard' },
  }),
  row({
    ...{ id: 'claude-opus-4-5-20251101', aliases: ['claude-opus-4-5'], displayName: 'Claude Opus 4.5' },
    ...{ line: 'opus', generation: 4.5, createdAt: '2025-11-24T00:00:00Z', maxOutputTokens: 64_000 },
    ...{ minCacheableTokens: 4096, contextWindow: 200_000, prices: OPUS_45 },
    // [3P] (Modelpin, §10.5): deprecated 2026-11-23, retiring 2027-01-22.
    ...{ deprecatedAt: '2026-11-23T00:00:00Z', retiresAt: '2027-01-22T00:00:00Z' },
  }),
  row({
    ...{ id: 'claude-sonnet-4-5-20250929', aliases: ['claude-sonnet-4-5'], displayName: 'Claude Sonnet 4.5' },
    ...{ line: 'sonnet', generation: 4.5, createdAt: '2025-09-29T00:00:00Z', maxOutputTokens: 64_000 },
    ...{ minCacheableTokens: 1024, contextWindow: 200_000, betaContextWindow: M, prices: SONNET_4 },
    band: { above: 200_000, prices: SONNET_4_LONG },
    ...{ deprecatedAt: '2026-09-30T00:00:00Z', retiresAt: '2026-11-30T00:00:00Z' },
  }),
  row({
    ...{ id: 'claude-haiku-4-5-20251001', aliases: ['claude-haiku-4-5'], displayName: 'Claude Haiku 4.5' },
    ...{ line: 'haiku', generation: 4.5, createdAt: '2025-10-15T00:00:00Z', maxOutputTokens: 64_000 },
    ...{ minCacheableTokens: 4096, contextWindow: 200_000, prices: HAIKU_45 },
  }),
  row({
    ...{ id: 'claude-opus-4-1-20250805', aliases: ['claude-opus-4-1'], displayName: 'Claude Opus 4.1' },
    ...{ line: 'opus', generation: 4.1, createdAt: '2025-08-05T00:00:00Z', maxOutputTokens: 32_000 },
    ...{ minCacheableTokens: 1024, contextWindow: 200_000, prices: OPUS_4 },
    ...{ deprecatedAt: '2026-06-05T00:00:00Z', retiresAt: '2026-08-05T00:00:00Z' },
  }),
  row({
    ...{ id: 'claude-opus-4-20250514', aliases: ['claude-opus-4-0'], displayName: 'Claude Opus 4' },
    ...{ line: 'opus', generation: 4, createdAt: '2025-05-14T00:00:00Z', maxOutputTokens: 32_000 },
    ...{ minCacheableTokens: 1024, contextWindow: 200_000, prices: OPUS_4 },
    ...{ deprecatedAt: '2026-04-14T00:00:00Z', retiresAt: '2026-06-15T00:00:00Z' },
  }),
  row({
    ...{ id: 'claude-sonnet-4-20250514', aliases: ['claude-sonnet-4-0'], displayName: 'Claude Sonnet 4' },
    ...{ line: 'sonnet', generation: 4, createdAt: '2025-05-14T00:00:00Z', maxOutputTokens: 64_000 },
    ...{ minCacheableTokens: 1024, contextWindow: 200_000, betaContextWindow: M, prices: SONNET_4 },
    band: { above: 200_000, prices: SONNET_4_LONG },
    // Deprecation date UNKNOWN (the research gives only the 2026-06-15 retirement).
    retiresAt: '2026-06-15T00:00:00Z',
  }),
  row({
    ...{
      id: 'claude-3-5-haiku-20241022',
      aliases: ['claude-3-5-haiku-latest'],
      displayName: 'Claude Haiku 3.5',
    },
    ...{ line: 'haiku', generation: 3.5, createdAt: '2024-10-22T00:00:00Z', maxOutputTokens: 8192 },
    ...{ minCacheableTokens: 2048, contextWindow: 200_000, prices: HAIKU_35 },
    ...{ deprecatedAt: '2025-12-19T00:00:00Z', retiresAt: '2026-02-19T00:00:00Z' },
  }),
];

/** The `context-1m-2025-08-07` beta: opened the 1M window on Sonnet 4/4.5 until it was retired. */
export const CONTEXT_1M_BETA = 'context-1m-2025-08-07';
/** §2c: the 1M beta was retired 2026-04-30; after that requests over 200K are refused. */
export const CONTEXT_1M_BETA_RETIRED = '2026-04-30T00:00:00Z';
