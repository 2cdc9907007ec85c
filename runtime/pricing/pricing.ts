import type { Micros } from '../money.ts';
import type { TokenCounts } from '../store/port.ts';
import { DEFAULT_PRICES, type PriceEntry, type Rates } from './prices.ts';

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
type IntRates = Record<(typeof CLASSES)[number], bigint>;

interface Priced {
  entry: PriceEntry;
  from: number;
  rates: IntRates;
  long?: { threshold: number; rates: IntRates };
}

function toInt(rates: Rates): IntRates {
  const out = {} as IntRates;
  for (const c of CLASSES) out[c] = BigInt(Math.round(rates[c] * 1_000_000));
  return out;
}

const MILLION = 1_000_000n;

/**
 * The effective-dated price table. `cost()` turns a usage into µ$ exactly: the sum over token
 * classes of tokens × rate, rounded up once to the next whole µ$ (never down: we do not
 * under-charge). 1,000,000 cache-read tokens of Sonnet cost exactly 300,000 µ$.
 */
export class PriceTable {
  private readonly byName = new Map<string, Priced[]>();

  constructor(entries: PriceEntry[] = DEFAULT_PRICES) {
    for (const entry of entries) {
      const priced: Priced = {
        entry,
        from: Date.parse(`${entry.from}T00:00:00Z`),
        rates: toInt(entry.rates),
        long: entry.longContext && {
          threshold: entry.longContext.threshold,
          rates: toInt(entry.longContext.rates),
        },
      };
      for (const name of [entry.model, ...entry.aliases]) {
        const list = this.byName.get(name) ?? [];
        list.push(priced);
        list.sort((a, b) => b.from - a.from);
        this.byName.set(name, list);
      }
    }
  }

  /** The entry in force at `at` for a model id or alias, or undefined. */
  lookup(model: string, at: number = Date.now()): PriceEntry | undefined {
    return this.find(model, at)?.entry;
  }

  has(model: string, at: number = Date.now()): boolean {
    return this.find(model, at) !== undefined;
  }

  models(): string[] {
    return [...this.byName.keys()].sort();
  }

  /** Exact cost of a real usage in µ$. Throws UnknownPriceError for an unknown model. */
  cost(model: string, usage: TokenCounts, at: number = Date.now()): Micros {
    const p = this.require(model, at);
    const totalInput = usage.input + usage.cacheWrite5m + usage.cacheWrite1h + usage.cacheRead;
    const rates = p.long && totalInput > p.long.threshold ? p.long.rates : p.rates;
    let sum = 0n;
    for (const c of CLASSES) sum += BigInt(usage[c]) * rates[c];
    return Number((sum + MILLION - 1n) / MILLION);
  }

  /**
   * Worst case for admission: every input token at full price, plus all of maxOutput. A request
   * with cache breakpoints may write its whole prompt to the cache, which costs more than plain
   * input (1.25x for 5m, 2x for 1h), so `writes` prices the input at that rate instead.
   */
  worstCase(
    model: string,
    inputTokens: number,
    maxOutputTokens: number,
    at: number = Date.now(),
    writes: 'none' | '5m' | '1h' = 'none',
  ): Micros {
    const usage = { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: maxOutputTokens };
    if (writes === '1h') usage.cacheWrite1h = inputTokens;
    else if (writes === '5m') usage.cacheWrite5m = inputTokens;
    else usage.input = inputTokens;
    return this.cost(model, usage, at);
  }

  private require(model: string, at: number): Priced {
    const p = this.find(model, at);
    if (!p) throw new UnknownPriceError(model);
    return p;
  }

  private find(model: string, at: number): Priced | undefined {
    const list = this.byName.get(model);
    return list?.find((p) => p.from <= at);
  }
}
