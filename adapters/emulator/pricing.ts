/**
 * What one call costs, exactly, in whole µ$ (research §2–§4, §9 integer note):
 *
 * - list rates are integer pico-dollars per token (`models.ts`), chosen by the call's time
 *   (effective-dated changes such as Sonnet 5.5's 2026-10-07 cache-read cut) and by its prompt
 *   length (a model's band: Haiku 5.5 above 100,000 prompt tokens, the historical Sonnet 4/4.5
 *   long-context tier above 200,000) — the band applies to every class, output included;
 * - modifiers multiply every class and stack: fast mode 2×, `inference_geo: "us"` 1.1×, batch ½
 *   (pricing page, Aug-2026 text: "These multipliers stack with other pricing modifiers");
 * - `Σ tokens × rate` is summed in pico-dollars (BigInt, exact at any size) and rounded up once per
 *   call to a whole µ$; the per-class split floors each class and hands the rounding µ$ to the
 *   largest remainders, so the parts always sum to the whole.
 */
import type { PricedModel, PriceTable } from './catalog.ts';

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

/** The context-window split of the usage/cost reports ("0-200k" / "200k-1M"). */
export const LONG_CONTEXT_THRESHOLD = 200_000;

/** The prompt: input + cache writes + cache reads (what selects a prompt-length band). */
export function totalInput(u: TokenUsage): number {
  return u.input + u.cacheWrite5m + u.cacheWrite1h + u.cacheRead;
}

/** Price modifiers of one call, as reported in its `usage`. */
export interface PriceMods {
  readonly speed?: 'standard' | 'fast';
  readonly inferenceGeo?: string | null;
  readonly serviceTier?: 'standard' | 'batch';
  /**
   * Served on a regional endpoint of a cloud provider (a Bedrock geographic or in-Region profile,
   * a Vertex regional location): 1.1× the global price, like `inference_geo: "us"`.
   */
  readonly regional?: boolean;
  /** When the call was served (epoch ms): picks effective-dated prices. Default: latest prices. */
  readonly at?: number;
}

/** The price table that applies to one call of `model` with usage `u` at time `at`. */
export function pricesFor(model: PricedModel, u: TokenUsage, at = Number.POSITIVE_INFINITY): PriceTable {
  if (model.band && totalInput(u) > model.band.above) return model.band.prices;
  let p = model.prices;
  for (const c of model.priceChanges ?? []) if (at >= Date.parse(c.from)) p = c.prices;
  return p;
}

/** A call's cost in µ$, split by token class so that the parts sum exactly to the whole. */
export interface CallCost {
  readonly micros: number;
  readonly byClass: Readonly<Record<TokenClass, number>>;
  /** True when the model's band (long-context tier / Haiku 5.5 high band) priced the call. */
  readonly longContext: boolean;
}

const PICO_PER_MICRO = 1_000_000n;

/**
 * Prices one call: `ceil(Σ tokens × rate × modifiers)` µ$, exact.
 *
 * @example priceCall(resolveModel('claude-sonnet-4-6')!, { input: 0, cacheWrite5m: 0,
 *   cacheWrite1h: 0, cacheRead: 1_000_000, output: 0 }).micros // 300_000
 */
export function priceCall(model: PricedModel, u: TokenUsage, mods: PriceMods = {}): CallCost {
  const p = pricesFor(model, u, mods.at);
  let num = 1n;
  let den = 1n;
  if (mods.speed === 'fast') num *= 2n;
  if (mods.inferenceGeo === 'us' || mods.regional) {
    num *= 11n;
    den *= 10n;
  }
  if (mods.serviceTier === 'batch') den *= 2n;
  const exact = TOKEN_CLASSES.map((k) => (BigInt(u[k]) * BigInt(p[k]) * num) / den);
  const sum = exact.reduce((a, b) => a + b, 0n);
  const micros = (sum + PICO_PER_MICRO - 1n) / PICO_PER_MICRO;
  const floors = exact.map((e) => e / PICO_PER_MICRO);
  const rest = exact.map((e) => e % PICO_PER_MICRO);
  let spare = micros - floors.reduce((a, b) => a + b, 0n);
  while (spare > 0n) {
    let best = 0;
    for (let i = 1; i < rest.length; i++) if (rest[i]! > rest[best]!) best = i;
    floors[best] = floors[best]! + 1n;
    rest[best] = -1n;
    spare--;
  }
  const parts = floors.map(Number);
  return {
    micros: Number(micros),
    byClass: {
      input: parts[0]!,
      cacheWrite5m: parts[1]!,
      cacheWrite1h: parts[2]!,
      cacheRead: parts[3]!,
      output: parts[4]!,
    },
    longContext: p === model.band?.prices,
  };
}
