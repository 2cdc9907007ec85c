import type { Micros } from '../money.ts';
import type { TokenCounts } from '../store/port.ts';
import { OPENAI_TOOL_PRICES } from './openai-prices.ts';
import {
  BUILT_IN_PRICES,
  type PriceEntry,
  type Rates,
  SERVER_TOOL_PRICES,
  type ServerTool,
} from './prices.ts';

/** A model with no known price: callers refuse the call (fail closed), never charge zero. */
export class UnknownPriceError extends Error {
  readonly code = 'unknown_model';
  constructor(readonly model: string) {
    super(`no price is known for model ${JSON.stringify(model)}: add it under \`prices:\` in the config`);
    this.name = 'UnknownPriceError';
  }
}

const CLASSES = ['input', 'cacheWrite5m', 'cacheWrite1h', 'cacheRead', 'output'] as const;

/** Rates as integer µ$ per million tokens, so that pricing is exact integer arithmetic. */
type IntRates = Record<(typeof CLASSES)[number], number>;

interface Priced {
  entry: PriceEntry;
  from: number;
  rates: IntRates;
  long?: { threshold: number; rates: IntRates };
  fast?: IntRates;
}

function toInt(rates: Rates): IntRates {
  const out = {} as IntRates;
  for (const c of CLASSES) out[c] = Math.round(rates[c] * 1_000_000);
  return out;
}

/**
 * ⌈Σ tokens × rate × num / den⌉ µ$, exact. In doubles while every step is an exact integer — all
 * terms are ≥ 0, so a sum that ends a safe integer had no step that was not (a call's tokens are
 * far from that) — in BigInt beyond, or for what is not a count (which BigInt refuses, as before).
 */
function exactCost(usage: TokenCounts, rates: IntRates, num: number, den: number): Micros {
  // Each class by name, not a loop over CLASSES: `usage[c]` with a different key each time is a
  // slow (megamorphic) lookup in V8, and every call is priced here.
  const { input, cacheWrite5m, cacheWrite1h, cacheRead, output } = usage;
  if (!(count(input) && count(cacheWrite5m) && count(cacheWrite1h) && count(cacheRead) && count(output))) {
    return bigCost(usage, rates, num, den);
  }
  let sum =
    input * rates.input +
    cacheWrite5m * rates.cacheWrite5m +
    cacheWrite1h * rates.cacheWrite1h +
    cacheRead * rates.cacheRead +
    output * rates.output;
  sum *= num;
  if (!Number.isSafeInteger(sum)) return bigCost(usage, rates, num, den);
  // The quotient of two doubles is off by at most one from the whole one: the remainder says.
  let q = Math.floor(sum / den);
  let r = sum - q * den;
  if (r < 0) {
    q -= 1;
    r += den;
  } else if (r >= den) {
    q += 1;
    r -= den;
  }
  return r > 0 ? q + 1 : q;
}

const count = (t: number) => t >= 0 && Number.isSafeInteger(t);

/** exactCost in BigInt, whatever the size. */
function bigCost(usage: TokenCounts, rates: IntRates, num: number, den: number): Micros {
  let sum = 0n;
  for (const c of CLASSES) sum += BigInt(usage[c]) * BigInt(rates[c]);
  sum *= BigInt(num);
  const d = BigInt(den);
  return Number((sum + d - 1n) / d);
}

/** What changes a call's price besides its tokens (each one read off the request by the gateway). */
export interface PriceOptions {
  /** Message Batches: half price on every token class. */
  batch?: boolean;
  /** `speed: "fast"`: the model's fast-mode rates (refused where the model has none). */
  fast?: boolean;
  /** `inference_geo: "us"`: US-only inference, 1.1× on every token class. */
  usOnly?: boolean;
  /** A cloud's regional endpoint (a Bedrock geographic or in-Region profile, a Vertex region): 1.1×. */
  regional?: boolean;
  /** The provider kind whose rows price the call (see PriceEntry.provider); absent: Anthropic's. */
  provider?: string;
}

/** Server tools billed per use (not in tokens), as the usage object's `server_tool_use` counts them. */
export type ServerToolUses = Partial<Record<ServerTool, number>>;

/** Tokens by class and, where any were used, server-tool uses: everything a call is billed for. */
export type Usage = TokenCounts & { serverTools?: ServerToolUses };

/**
 * The effective-dated price table. `cost()` turns a usage into µ$ exactly: the sum over token
 * classes of tokens × rate (× the batch, fast-mode and US-only factors, as integer fractions),
 * rounded up once to the next whole µ$ (never down: we do not under-charge), plus the server
 * tools' per-use prices. 1,000,000 cache-read tokens of Sonnet 4.6 cost exactly 300,000 µ$.
 */
export class PriceTable {
  private readonly byName = new Map<string, Priced[]>();

  constructor(entries: readonly PriceEntry[] = BUILT_IN_PRICES) {
    for (const entry of entries) {
      const priced: Priced = {
        entry,
        from: Date.parse(`${entry.from}T00:00:00Z`),
        rates: toInt(entry.rates),
        long: entry.longContext && {
          threshold: entry.longContext.threshold,
          rates: toInt(entry.longContext.rates),
        },
        fast: entry.fast && toInt(entry.fast),
      };
      for (const name of [entry.model, ...entry.aliases]) {
        const list = this.byName.get(name) ?? [];
        // Newest first; on the same date the later entry (the config's, after the built-ins) wins.
        list.unshift(priced);
        list.sort((a, b) => b.from - a.from);
        this.byName.set(name, list);
      }
    }
  }

  /**
   * The entry in force at `at` for a model id or alias, or undefined. With a provider kind, that
   * provider's own row wins, then Anthropic's list price; rows of other providers never apply.
   */
  lookup(model: string, at: number = Date.now(), provider?: string): PriceEntry | undefined {
    return this.find(model, at, provider)?.entry;
  }

  has(model: string, at: number = Date.now(), provider?: string): boolean {
    return this.find(model, at, provider) !== undefined;
  }

  /** Every name (ids and aliases) the table prices. */
  models(): string[] {
    return [...this.byName.keys()].sort();
  }

  /** One entry per model (by canonical id), the one in force at `at`. */
  current(at: number = Date.now()): PriceEntry[] {
    const out = new Map<string, PriceEntry>();
    for (const list of this.byName.values()) {
      const p = list.find((x) => x.from <= at);
      if (p && !out.has(p.entry.model)) out.set(p.entry.model, p.entry);
    }
    return [...out.values()];
  }

  /** Every entry, past and future (effective-dated rows included), in table order. */
  entries(): PriceEntry[] {
    const seen = new Set<PriceEntry>();
    for (const list of this.byName.values()) for (const p of list) seen.add(p.entry);
    return [...seen];
  }

  /** Exact cost of a real usage in µ$. Throws UnknownPriceError for an unknown model. */
  cost(model: string, usage: Usage, at: number = Date.now(), opts: PriceOptions = {}): Micros {
    const p = this.require(model, at, opts.provider);
    const totalInput = usage.input + usage.cacheWrite5m + usage.cacheWrite1h + usage.cacheRead;
    let rates = p.long && totalInput > p.long.threshold ? p.long.rates : p.rates;
    if (opts.fast) {
      if (!p.fast) throw new UnknownPriceError(`${model} (fast mode)`);
      rates = p.fast;
    }
    let num = 1;
    let den = 1_000_000;
    if (opts.batch) den *= 2;
    if (opts.usOnly) {
      num *= 11;
      den *= 10;
    }
    if (opts.regional) {
      num *= 11;
      den *= 10;
    }
    return exactCost(usage, rates, num, den) + serverToolsCost(usage.serverTools, opts.provider);
  }

  /**
   * Worst case for admission: every input token at full price, plus all of maxOutput, plus each
   * server tool used as often as the request allows. A request with cache breakpoints may write
   * its whole prompt to the cache, which costs more than plain input (1.25x for 5m, 2x for 1h),
   * so `writes` prices the input at that rate instead.
   */
  worstCase(
    model: string,
    inputTokens: number,
    maxOutputTokens: number,
    at: number = Date.now(),
    writes: 'none' | '5m' | '1h' = 'none',
    opts: PriceOptions = {},
    serverTools?: ServerToolUses,
  ): Micros {
    const usage: Usage = {
      input: 0,
      cacheWrite5m: 0,
      cacheWrite1h: 0,
      cacheRead: 0,
      output: maxOutputTokens,
      ...(serverTools ? { serverTools } : {}),
    };
    if (writes === '1h') usage.cacheWrite1h = inputTokens;
    else if (writes === '5m') usage.cacheWrite5m = inputTokens;
    else usage.input = inputTokens;
    return this.cost(model, usage, at, opts);
  }

  private require(model: string, at: number, provider?: string): Priced {
    const p = this.find(model, at, provider);
    if (!p) throw new UnknownPriceError(provider ? `${model} on ${provider}` : model);
    return p;
  }

  private find(model: string, at: number, provider?: string): Priced | undefined {
    const list = this.byName.get(model);
    if (!list) return undefined;
    if (provider !== undefined) {
      const own = list.find((p) => p.from <= at && p.entry.provider === provider);
      if (own) return own;
    }
    return (
      list.find((p) => p.from <= at && p.entry.provider === undefined) ??
      // Without a provider, a model only one provider prices (an OpenAI model) is still found.
      (provider === undefined ? list.find((p) => p.from <= at) : undefined)
    );
  }
}

/**
 * µ$ for the server tools a call used: per-use list prices of the provider, exact integers. A
 * tool the provider's table does not price is an UnknownPriceError: never charged zero.
 */
export function serverToolsCost(uses: ServerToolUses | undefined, provider?: string): Micros {
  if (!uses) return 0;
  const table: Partial<Record<ServerTool, number>> =
    provider === 'openai' ? OPENAI_TOOL_PRICES : SERVER_TOOL_PRICES;
  let total = 0;
  for (const [tool, n] of Object.entries(uses) as Array<[ServerTool, number]>) {
    if (!(n > 0)) continue;
    const price = table[tool];
    if (price === undefined)
      throw new UnknownPriceError(`${tool} (a server tool) on ${provider ?? 'anthropic'}`);
    total += n * price;
  }
  return total;
}
