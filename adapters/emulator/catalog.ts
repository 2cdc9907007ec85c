/**
 * The emulated provider's model catalogue: the provider's truth, kept apart from whatever the
 * runtime believes (adapters never import the runtime, so a price the runtime gets wrong shows up
 * as a reconciliation difference instead of being silently copied). The rows live in
 * `models.ts`; prices are computed in `pricing.ts`; this file holds the shapes, lookup and
 * lifecycle (active / deprecated / retired against the emulator's clock).
 *
 * Lifecycle semantics follow the SDK's `ModelInfo.lifecycle` doc (@anthropic-ai/sdk 1.13.0):
 * a retired model "is no longer available for use; inference requests naming it fail. It remains
 * in the catalogue as the historical record" — so a retired model is still priced (history,
 * re-pricing) and `GET /v1/models/{id}` still shows it, but `POST /v1/messages` answers 404.
 */
import { MODELS } from './models.ts';

export {
  type CallCost,
  LONG_CONTEXT_THRESHOLD,
  type PriceMods,
  priceCall,
  pricesFor,
  TOKEN_CLASSES,
  type TokenClass,
  type TokenUsage,
  totalInput,
} from './pricing.ts';
export { MODELS };

/**
 * List prices in pico-dollars per token (= USD per MTok × 10⁶), so every rate is an integer even
 * after the batch (½), US-geo (1.1×) and fast (2×) multipliers: Haiku 5.5's $0.125/MTok 5m write
 * is 125,000; a batch US-geo Haiku 5.5 cache read ($0.0055/MTok) is 5,500.
 */
export interface PriceTable {
  readonly input: number;
  readonly cacheWrite5m: number;
  readonly cacheWrite1h: number;
  readonly cacheRead: number;
  readonly output: number;
}

/** A price band selected by the request's prompt length (input + cache reads + cache writes). */
export interface PromptBand {
  /** The band applies when the prompt is strictly above this many tokens. */
  readonly above: number;
  readonly prices: PriceTable;
}

/** Fast mode (`speed: "fast"`) on one model. */
export interface FastMode {
  /** True when the `fast-mode-2026-02-01` beta header is required (research preview). */
  readonly beta: boolean;
  /** When fast mode was removed from this model (ISO date), if it was. */
  readonly removedAt?: string;
  /** After removal: `error` (400) or `standard` (served at standard speed, `usage.speed: "standard"`). */
  readonly afterRemoval?: 'error' | 'standard';
}

export type ModelLine = 'opus' | 'sonnet' | 'haiku' | 'fable' | 'mythos';

export interface ModelInfo {
  /** Canonical id, as echoed in responses (dated where the provider dates it). */
  readonly id: string;
  readonly aliases: readonly string[];
  readonly displayName: string;
  readonly line: ModelLine;
  /** Model generation as a number (4.5, 4.6, 5, 5.5 …): decides geo, sampling and thinking rules. */
  readonly generation: number;
  readonly createdAt: string;
  readonly maxOutputTokens: number;
  /** Max `max_tokens` in a batch with the `output-300k-2026-03-24` beta (undefined: no such limit). */
  readonly batchMaxOutputTokens?: number;
  readonly minCacheableTokens: number;
  /** Context window without any beta header. */
  readonly contextWindow: number;
  /** 1M window with the `context-1m-2025-08-07` beta (undefined: no such beta for this model). */
  readonly betaContextWindow?: number;
  /** Base prices (the first schedule entry). */
  readonly prices: PriceTable;
  /** Later price changes, oldest first: from `from` (ISO date, UTC) on, `prices` apply. */
  readonly priceChanges?: readonly { readonly from: string; readonly prices: PriceTable }[];
  /** Long-context tier / prompt-length band: every class of the call billed at these rates. */
  readonly band?: PromptBand;
  readonly fast?: FastMode;
  /** Accepts `role: "system"` messages inside `messages`. */
  readonly midConversationSystem: boolean;
  /** Adaptive thinking cannot be turned off (`thinking: {type: "disabled"}` is a 400). */
  readonly thinkingAlwaysOn: boolean;
  readonly deprecatedAt?: string;
  readonly retiresAt?: string;
}

/**
 * What pricing needs of a model: its id, list prices, dated changes and prompt-length band. Every
 * catalogue's rows have this shape (the Anthropic models here, the OpenAI ones in `openai/models.ts`),
 * so one billing record prices them all.
 */
export type PricedModel = Pick<ModelInfo, 'id' | 'prices' | 'priceChanges' | 'band'>;

const BY_NAME = new Map<string, ModelInfo>();
for (const m of MODELS) {
  BY_NAME.set(m.id, m);
  for (const a of m.aliases) BY_NAME.set(a, m);
}

/** Resolves a model id or alias (retired ones included); undefined when the provider never knew it. */
export function resolveModel(name: string): ModelInfo | undefined {
  return BY_NAME.get(name);
}

export type Lifecycle = 'active' | 'deprecated' | 'retired';

/** The model's lifecycle stage at `now` (epoch ms). */
export function lifecycleOf(m: ModelInfo, now: number): Lifecycle {
  if (m.retiresAt && now >= Date.parse(m.retiresAt)) return 'retired';
  if (m.deprecatedAt && now >= Date.parse(m.deprecatedAt)) return 'deprecated';
  return 'active';
}

/** True when `now` is at or after an ISO date. */
export const reached = (iso: string | undefined, now: number): boolean =>
  iso !== undefined && now >= Date.parse(iso);
