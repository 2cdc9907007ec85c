/**
 * The emulated provider's model catalogue and list prices: the provider's truth, kept apart from
 * whatever the runtime believes (adapters never import the runtime, so a price the runtime gets
 * wrong shows up as a reconciliation difference instead of being silently copied).
 *
 * Facts checked against platform.claude.com (models overview, prompt caching, pricing):
 * - minimum cacheable prompt: 4,096 tokens for Opus 4.5/4.6/4.7 and Haiku 4.5; 2,048 for
 *   Sonnet 4.6 and Haiku 3.5; 1,024 for Opus 4.8, Sonnet 4/4.5 and Opus 4/4.1.
 * - max output: 128K for Opus 4.6/4.7/4.8 and Sonnet 4.6; 64K for Opus 4.5, Sonnet 4/4.5,
 *   Haiku 4.5; 32K for Opus 4/4.1; 8,192 for Haiku 3.5.
 * - Opus 4.7/4.8 dates (createdAt) are placeholders: the provider lists them undated.
 * - 1M context: native (flat price) for Opus 4.6 and Sonnet 4.6 since 2026-03-13; behind the
 *   `context-1m-2025-08-07` beta for Sonnet 4/4.5, where a request whose total input (uncached +
 *   cache writes + cache reads) passes 200K is billed entirely at the long-context rates.
 */

/**
 * Prices in hundredths of a micro-dollar per token (= USD per MTok × 100), so every list price is
 * an integer: $0.30/MTok is 30, $18.75/MTok is 1875.
 */
export interface PriceTable {
  readonly input: number;
  readonly cacheWrite5m: number;
  readonly cacheWrite1h: number;
  readonly cacheRead: number;
  readonly output: number;
}

export interface ModelInfo {
  /** Canonical id, as echoed in responses (dated where the provider dates it). */
  readonly id: string;
  readonly aliases: readonly string[];
  readonly displayName: string;
  readonly createdAt: string;
  readonly maxOutputTokens: number;
  readonly minCacheableTokens: number;
  /** Context window without any beta header. */
  readonly contextWindow: number;
  /** 1M window with the `context-1m-2025-08-07` beta (undefined: no such beta for this model). */
  readonly betaContextWindow?: number;
  readonly prices: PriceTable;
  /** Rates for a request whose total input passes {@link LONG_CONTEXT_THRESHOLD}. */
  readonly longContextPrices?: PriceTable;
}

/** Total input tokens above which long-context prices apply (where a model has them). */
export const LONG_CONTEXT_THRESHOLD = 200_000;

/** The beta header value that opens the 1M window on Sonnet 4 and 4.5. */
export const CONTEXT_1M_BETA = 'context-1m-2025-08-07';

const price = (input: number, w5: number, w1: number, read: number, output: number): PriceTable => ({
  input,
  cacheWrite5m: w5,
  cacheWrite1h: w1,
  cacheRead: read,
  output,
});

const OPUS_45 = price(500, 625, 1000, 50, 2500);
const OPUS_4 = price(1500, 1875, 3000, 150, 7500);
const SONNET_4 = price(300, 375, 600, 30, 1500);
const SONNET_4_LONG = price(600, 750, 1200, 60, 2250);
const HAIKU_45 = price(100, 125, 200, 10, 500);
const HAIKU_35 = price(80, 100, 160, 8, 400);

/** Every model the emulator serves. */
export const MODELS: readonly ModelInfo[] = [
  {
    id: 'claude-opus-4-8',
    aliases: [],
    displayName: 'Claude Opus 4.8',
    createdAt: '2026-06-01T00:00:00Z',
    maxOutputTokens: 128_000,
    minCacheableTokens: 1024,
    contextWindow: 1_000_000,
    prices: OPUS_45,
  },
  {
    id: 'claude-opus-4-7',
    aliases: [],
    displayName: 'Claude Opus 4.7',
    createdAt: '2026-04-01T00:00:00Z',
    maxOutputTokens: 128_000,
    minCacheableTokens: 4096,
    contextWindow: 1_000_000,
    prices: OPUS_45,
  },
  {
    id: 'claude-opus-4-6',
    aliases: [],
    displayName: 'Claude Opus 4.6',
    createdAt: '2026-02-05T00:00:00Z',
    maxOutputTokens: 128_000,
    minCacheableTokens: 4096,
    contextWindow: 1_000_000,
    prices: OPUS_45,
  },
  {
    id: 'claude-opus-4-5-20251101',
    aliases: ['claude-opus-4-5'],
    displayName: 'Claude Opus 4.5',
    createdAt: '2025-11-01T00:00:00Z',
    maxOutputTokens: 64_000,
    minCacheableTokens: 4096,
    contextWindow: 200_000,
    prices: OPUS_45,
  },
  {
    id: 'claude-opus-4-1-20250805',
    aliases: ['claude-opus-4-1'],
    displayName: 'Claude Opus 4.1',
    createdAt: '2025-08-05T00:00:00Z',
    maxOutputTokens: 32_000,
    minCacheableTokens: 1024,
    contextWindow: 200_000,
    prices: OPUS_4,
  },
  {
    id: 'claude-opus-4-20250514',
    aliases: ['claude-opus-4-0'],
    displayName: 'Claude Opus 4',
    createdAt: '2025-05-14T00:00:00Z',
    maxOutputTokens: 32_000,
    minCacheableTokens: 1024,
    contextWindow: 200_000,
    prices: OPUS_4,
  },
  {
    id: 'claude-sonnet-4-6',
    aliases: [],
    displayName: 'Claude Sonnet 4.6',
    createdAt: '2026-02-17T00:00:00Z',
    maxOutputTokens: 128_000,
    minCacheableTokens: 2048,
    contextWindow: 1_000_000,
    prices: SONNET_4,
  },
  {
    id: 'claude-sonnet-4-5-20250929',
    aliases: ['claude-sonnet-4-5'],
    displayName: 'Claude Sonnet 4.5',
    createdAt: '2025-09-29T00:00:00Z',
    maxOutputTokens: 64_000,
    minCacheableTokens: 1024,
    contextWindow: 200_000,
    betaContextWindow: 1_000_000,
    prices: SONNET_4,
    longContextPrices: SONNET_4_LONG,
  },
  {
    id: 'claude-sonnet-4-20250514',
    aliases: ['claude-sonnet-4-0'],
    displayName: 'Claude Sonnet 4',
    createdAt: '2025-05-14T00:00:00Z',
    maxOutputTokens: 64_000,
    minCacheableTokens: 1024,
    contextWindow: 200_000,
    betaContextWindow: 1_000_000,
    prices: SONNET_4,
    longContextPrices: SONNET_4_LONG,
  },
  {
    id: 'claude-haiku-4-5-20251001',
    aliases: ['claude-haiku-4-5'],
    displayName: 'Claude Haiku 4.5',
    createdAt: '2025-10-01T00:00:00Z',
    maxOutputTokens: 64_000,
    minCacheableTokens: 4096,
    contextWindow: 200_000,
    prices: HAIKU_45,
  },
  {
    id: 'claude-3-5-haiku-20241022',
    aliases: ['claude-3-5-haiku-latest'],
    displayName: 'Claude Haiku 3.5',
    createdAt: '2024-10-22T00:00:00Z',
    maxOutputTokens: 8192,
    minCacheableTokens: 2048,
    contextWindow: 200_000,
    prices: HAIKU_35,
  },
];

const BY_NAME = new Map<string, ModelInfo>();
for (const m of MODELS) {
  BY_NAME.set(m.id, m);
  for (const a of m.aliases) BY_NAME.set(a, m);
}

/** Resolves a model id or alias; undefined when the provider does not know it (a 404). */
export function resolveModel(name: string): ModelInfo | undefined {
  return BY_NAME.get(name);
}

/** Tokens by billing class, as the provider bills them. */
export interface TokenUsage {
  readonly input: number;
  readonly cacheWrite5m: number;
  readonly cacheWrite1h: number;
  readonly cacheRead: number;
  readonly output: number;
}

export const TOKEN_CLASSES = ['input', 'cacheWrite5m', 'cacheWrite1h', 'cacheRead', 'output'] as const;
export type TokenClass = (typeof TOKEN_CLASSES)[number];

/** Total input tokens: what decides the long-context tier. */
export function totalInput(u: TokenUsage): number {
  return u.input + u.cacheWrite5m + u.cacheWrite1h + u.cacheRead;
}

/** The price table that applies to one call of `model` with usage `u`. */
export function pricesFor(model: ModelInfo, u: TokenUsage): PriceTable {
  return model.longContextPrices && totalInput(u) > LONG_CONTEXT_THRESHOLD
    ? model.longContextPrices
    : model.prices;
}

/** A call's cost in µ$, split by token class so that the parts sum exactly to the whole. */
export interface CallCost {
  readonly micros: number;
  readonly byClass: Readonly<Record<TokenClass, number>>;
  readonly longContext: boolean;
}

/**
 * Prices one call: `ceil(Σ tokens × USD/MTok)` µ$, exact (integer arithmetic on hundredths of a µ$).
 * The per-class split floors each class and hands the rounding µ$ to the classes with the
 * largest remainders, so a cost report summed by class equals the sum of call costs.
 *
 * @example priceCall(resolveModel('claude-sonnet-4-6')!, { input: 0, cacheWrite5m: 0,
 *   cacheWrite1h: 0, cacheRead: 1_000_000, output: 0 }).micros // 300_000
 */
export function priceCall(model: ModelInfo, u: TokenUsage): CallCost {
  const p = pricesFor(model, u);
  // Hundredths of a µ$ per class: integers. Number arithmetic is exact below 2^53; past that
  // (≈ 10^12 tokens in one call) BigInt takes over.
  const exact = TOKEN_CLASSES.map((k) => u[k] * p[k]);
  const sum = exact.reduce((a, b) => a + b, 0);
  if (!Number.isSafeInteger(sum)) return priceBig(model, u, p);
  const micros = Math.floor((sum + 99) / 100);
  const floors = exact.map((e) => Math.floor(e / 100));
  let spare = micros - floors.reduce((a, b) => a + b, 0);
  // Hand the rounding µ$ to the classes with the largest remainders (at most four of them).
  const rest = exact.map((e) => e % 100);
  while (spare > 0) {
    let best = 0;
    for (let i = 1; i < rest.length; i++) if (rest[i]! > rest[best]!) best = i;
    floors[best]!++;
    rest[best] = -1;
    spare--;
  }
  return { micros, byClass: byClassOf(floors), longContext: p === model.longContextPrices };
}

function byClassOf(parts: readonly number[]): Record<TokenClass, number> {
  return {
    input: parts[0]!,
    cacheWrite5m: parts[1]!,
    cacheWrite1h: parts[2]!,
    cacheRead: parts[3]!,
    output: parts[4]!,
  };
}

function priceBig(model: ModelInfo, u: TokenUsage, p: PriceTable): CallCost {
  const exact = TOKEN_CLASSES.map((k) => BigInt(u[k]) * BigInt(p[k]));
  const micros = (exact.reduce((a, b) => a + b, 0n) + 99n) / 100n;
  const floors = exact.map((e) => e / 100n);
  let spare = micros - floors.reduce((a, b) => a + b, 0n);
  const rest = exact.map((e) => e % 100n);
  while (spare > 0n) {
    let best = 0;
    for (let i = 1; i < rest.length; i++) if (rest[i]! > rest[best]!) best = i;
    floors[best] = floors[best]! + 1n;
    rest[best] = -1n;
    spare--;
  }
  return {
    micros: Number(micros),
    byClass: byClassOf(floors.map(Number)),
    longContext: p === model.longContextPrices,
  };
}
