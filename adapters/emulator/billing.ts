/**
 * The emulated provider's own billing record: what it would invoice. One entry per billed call —
 * successful calls, and streams the client abandoned (billed for the output generated so far);
 * errors are never billed. Costs come from the emulator's catalogue, never from the runtime.
 */
import { type CallCost, type ModelInfo, priceCall, type TokenClass, type TokenUsage } from './catalog.ts';

export interface BillingEntry {
  /** The message id (`msg_…`). */
  readonly id: string;
  readonly requestId: string;
  /** Epoch milliseconds, from the emulator's clock. */
  readonly at: number;
  /** Resolved model id. */
  readonly model: string;
  /** Label of the API key that made the call. */
  readonly apiKey: string;
  readonly usage: TokenUsage;
  /** ceil(Σ tokens × USD/MTok) µ$, exact. */
  readonly costMicros: number;
  /** The same cost split by token class; the parts sum to `costMicros`. */
  readonly costByClass: Readonly<Record<TokenClass, number>>;
  readonly longContext: boolean;
  readonly stream: boolean;
  /** True when the client disconnected before `message_stop`. */
  readonly aborted: boolean;
}

export interface BillingInput {
  id: string;
  requestId: string;
  at: number;
  model: ModelInfo;
  apiKey: string;
  usage: TokenUsage;
  stream: boolean;
  aborted: boolean;
}

/** An append-only list of billed calls with exact totals. */
export class BillingRecord {
  private readonly entries: BillingEntry[] = [];
  private totalMicros = 0;

  /** Prices and records one call; returns the entry. */
  add(input: BillingInput): BillingEntry {
    const cost: CallCost = priceCall(input.model, input.usage);
    const entry: BillingEntry = {
      id: input.id,
      requestId: input.requestId,
      at: input.at,
      model: input.model.id,
      apiKey: input.apiKey,
      usage: input.usage,
      costMicros: cost.micros,
      costByClass: cost.byClass,
      longContext: cost.longContext,
      stream: input.stream,
      aborted: input.aborted,
    };
    this.entries.push(entry);
    this.totalMicros += cost.micros;
    return entry;
  }

  /** Every billed call, oldest first (optionally only those in `[from, to)` epoch ms). */
  list(range?: { from?: number; to?: number }): readonly BillingEntry[] {
    if (!range) return this.entries;
    const from = range.from ?? Number.NEGATIVE_INFINITY;
    const to = range.to ?? Number.POSITIVE_INFINITY;
    return this.entries.filter((e) => e.at >= from && e.at < to);
  }

  /** Total billed, in µ$. */
  total(): number {
    return this.totalMicros;
  }

  /** Billed tokens and µ$ per model. */
  byModel(): Record<string, { calls: number; usage: TokenUsage; costMicros: number }> {
    const out: Record<string, { calls: number; usage: TokenUsage; costMicros: number }> = {};
    for (const e of this.entries) {
      const row = out[e.model] ?? {
        calls: 0,
        usage: { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 },
        costMicros: 0,
      };
      out[e.model] = row;
      row.calls++;
      row.costMicros += e.costMicros;
      const u = row.usage as { -readonly [K in keyof TokenUsage]: number };
      u.input += e.usage.input;
      u.cacheWrite5m += e.usage.cacheWrite5m;
      u.cacheWrite1h += e.usage.cacheWrite1h;
      u.cacheRead += e.usage.cacheRead;
      u.output += e.usage.output;
    }
    return out;
  }

  /** Forgets every entry. */
  clear(): void {
    this.entries.length = 0;
    this.totalMicros = 0;
  }

  /** The record as JSON-friendly data (what `GET /_emulator/billing` returns). */
  toJSON(): { total_micros: number; entries: readonly BillingEntry[] } {
    return { total_micros: this.totalMicros, entries: this.entries };
  }
}
