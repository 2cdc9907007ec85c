/**
 * The emulated provider's own billing record: what it would invoice. One entry per billed call —
 * successful calls, and streams the client abandoned (billed for the output generated so far);
 * errors are never billed. Costs come from the emulator's catalogue, never from the runtime.
 *
 * An entry carries everything a per-request reconciliation needs: the caller's request id
 * (`x-chokepoint-request-id`), the message id, the modifiers the call was served with (speed,
 * inference geo, service tier), server-tool counts and fees, and for batch results the batch id
 * and the request's `custom_id`. `costMicros` = Σ `costByClass` (tokens) + `webSearchMicros`.
 *
 * Memory stays bounded under benchmark load: the raw list keeps the most recent `maxEntries`
 * calls, while totals and the per-minute roll-ups behind the usage and cost reports cover every
 * call ever billed.
 */

import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import {
  type CallCost,
  LONG_CONTEXT_THRESHOLD,
  type PricedModel,
  type PriceMods,
  priceCall,
  type TokenClass,
  type TokenUsage,
  totalInput,
} from './catalog.ts';
import { WEB_SEARCH_MICROS } from './server-tools.ts';

/** Which of the emulated providers billed a call: the face it came in through. */
export type BilledBy = 'anthropic' | 'bedrock' | 'vertex' | 'openai';

export interface BillingEntry {
  /** The message id (`msg_…`). */
  readonly id: string;
  /** The provider whose bill this call is on (absent in records written before it existed: anthropic). */
  readonly provider?: BilledBy;
  /** Bedrock/Vertex: served on a regional endpoint (1.1×). */
  readonly regional?: boolean;
  readonly requestId: string;
  /** The caller's own request id (`x-chokepoint-request-id`), to match a call to its ledger entry. */
  readonly clientRequestId?: string;
  /** Epoch milliseconds, from the emulator's clock. */
  readonly at: number;
  /** Resolved model id. */
  readonly model: string;
  /** Label of the API key that made the call. */
  readonly apiKey: string;
  readonly usage: TokenUsage;
  /** What the call is invoiced: token cost (ceil(Σ tokens × rate × modifiers) µ$) + server-tool fees. */
  readonly costMicros: number;
  /** The token cost split by token class; the parts sum to `costMicros − webSearchMicros`. */
  readonly costByClass: Readonly<Record<TokenClass, number>>;
  /** True when the model's prompt-length band priced the call (long-context tier, Haiku 5.5 >100K). */
  readonly longContext: boolean;
  readonly speed: 'standard' | 'fast';
  readonly inferenceGeo: string | null;
  readonly serviceTier: 'standard' | 'batch';
  readonly webSearchRequests: number;
  readonly webFetchRequests: number;
  /** $10 per 1,000 web searches: 10,000 µ$ each. */
  readonly webSearchMicros: number;
  /** Message Batches: the batch (`msgbatch_…`) and the request's `custom_id`. */
  readonly batchId?: string;
  readonly customId?: string;
  readonly stream: boolean;
  /** True when the client disconnected before `message_stop`. */
  readonly aborted: boolean;
}

export interface BillingInput {
  id: string;
  /** Default `anthropic`. */
  provider?: BilledBy;
  regional?: boolean;
  requestId: string;
  clientRequestId?: string;
  at: number;
  /** A catalogue row: an Anthropic `ModelInfo` or an OpenAI model of `openai/models.ts`. */
  model: PricedModel;
  apiKey: string;
  usage: TokenUsage;
  stream: boolean;
  aborted: boolean;
  speed?: 'standard' | 'fast';
  inferenceGeo?: string | null;
  serviceTier?: 'standard' | 'batch';
  webSearchRequests?: number;
  webFetchRequests?: number;
  batchId?: string;
  customId?: string;
}

/** Calls of one minute, model, key and context window, summed: what the reports read. */
export interface Rollup {
  /** Start of the minute (epoch ms). */
  readonly at: number;
  readonly model: string;
  readonly apiKey: string;
  readonly window: '0-200k' | '200k-1M';
  readonly serviceTier: 'standard' | 'batch';
  calls: number;
  webSearchRequests: number;
  webSearchMicros: number;
  readonly usage: Record<TokenClass, number>;
  readonly costByClass: Record<TokenClass, number>;
}

const zero = (): Record<TokenClass, number> => ({
  input: 0,
  cacheWrite5m: 0,
  cacheWrite1h: 0,
  cacheRead: 0,
  output: 0,
});

/** The billed calls, with exact totals. */
export class BillingRecord {
  private entries: BillingEntry[] = [];
  private readonly rollupMap = new Map<string, Rollup>();
  private totalMicros = 0;
  private readonly byProvider = new Map<BilledBy, number>();
  private count = 0;
  /** Since when the record holds every billed call (its start, its last clear, or its oldest kept
   * entry once older ones were dropped): a per-request reconciliation trusts "not listed" only after it. */
  private since = Date.now();

  /**
   * @param maxEntries how many recent calls the raw list keeps (totals and reports keep all).
   * @param file where the record is kept across restarts (one JSON line per billed call, appended as
   *   it is billed and read back at construction): a provider's bill does not vanish when the
   *   process that emulates it restarts. Without it, the record lives in memory only.
   */
  constructor(
    private readonly maxEntries = 100_000,
    private readonly file?: string,
  ) {
    if (file && existsSync(file)) {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        if (line) this.keep(JSON.parse(line) as BillingEntry);
      }
      if (this.entries[0]) this.since = Math.min(this.since, this.entries[0].at);
    }
  }

  /** Prices and records one call; returns the entry. */
  add(input: BillingInput): BillingEntry {
    const mods: PriceMods = {
      speed: input.speed ?? 'standard',
      inferenceGeo: input.inferenceGeo ?? null,
      serviceTier: input.serviceTier ?? 'standard',
      regional: input.regional ?? false,
      at: input.at,
    };
    const cost: CallCost = priceCall(input.model, input.usage, mods);
    const searches = input.webSearchRequests ?? 0;
    const webSearchMicros = searches * WEB_SEARCH_MICROS;
    const entry: BillingEntry = {
      id: input.id,
      provider: input.provider ?? 'anthropic',
      ...(input.regional ? { regional: true } : {}),
      requestId: input.requestId,
      ...(input.clientRequestId ? { clientRequestId: input.clientRequestId } : {}),
      at: input.at,
      model: input.model.id,
      apiKey: input.apiKey,
      usage: input.usage,
      costMicros: cost.micros + webSearchMicros,
      costByClass: cost.byClass,
      longContext: cost.longContext,
      speed: mods.speed ?? 'standard',
      inferenceGeo: mods.inferenceGeo ?? null,
      serviceTier: mods.serviceTier ?? 'standard',
      webSearchRequests: searches,
      webFetchRequests: input.webFetchRequests ?? 0,
      webSearchMicros,
      ...(input.batchId ? { batchId: input.batchId } : {}),
      ...(input.customId ? { customId: input.customId } : {}),
      stream: input.stream,
      aborted: input.aborted,
    };
    if (this.file) appendFileSync(this.file, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
    this.keep(entry);
    return entry;
  }

  private keep(entry: BillingEntry): void {
    this.entries.push(entry);
    if (this.entries.length > this.maxEntries * 1.5) {
      this.entries = this.entries.slice(-this.maxEntries);
      this.since = Math.max(this.since, this.entries[0]!.at);
    }
    this.totalMicros += entry.costMicros;
    const by = entry.provider ?? 'anthropic';
    this.byProvider.set(by, (this.byProvider.get(by) ?? 0) + entry.costMicros);
    this.count++;
    // The Admin API's usage and cost reports are Anthropic's bill: Bedrock, Vertex and OpenAI
    // calls are on their own providers' bills (the CUR, the GCP export, OpenAI's costs).
    if (by === 'anthropic') this.roll(entry);
  }

  private roll(e: BillingEntry): void {
    const at = e.at - (e.at % 60_000);
    const window = totalInput(e.usage) > LONG_CONTEXT_THRESHOLD ? '200k-1M' : '0-200k';
    const key = `${at}|${e.model}|${e.apiKey}|${window}|${e.serviceTier}`;
    let r = this.rollupMap.get(key);
    if (!r) {
      r = {
        at,
        model: e.model,
        apiKey: e.apiKey,
        window,
        serviceTier: e.serviceTier,
        calls: 0,
        webSearchRequests: 0,
        webSearchMicros: 0,
        usage: zero(),
        costByClass: zero(),
      };
      this.rollupMap.set(key, r);
    }
    r.calls++;
    r.webSearchRequests += e.webSearchRequests;
    r.webSearchMicros += e.webSearchMicros;
    for (const k of ['input', 'cacheWrite5m', 'cacheWrite1h', 'cacheRead', 'output'] as const) {
      r.usage[k] += e.usage[k];
      r.costByClass[k] += e.costByClass[k];
    }
  }

  /** Recent billed calls, oldest first (optionally only those in `[from, to)` epoch ms). */
  list(range?: { from?: number; to?: number }): readonly BillingEntry[] {
    if (!range) return this.entries;
    const from = range.from ?? Number.NEGATIVE_INFINITY;
    const to = range.to ?? Number.POSITIVE_INFINITY;
    return this.entries.filter((e) => e.at >= from && e.at < to);
  }

  /** Per-minute sums of every call ever billed. */
  rollups(): Iterable<Rollup> {
    return this.rollupMap.values();
  }

  /** Total billed over every call, in µ$; with `provider`, that provider's bill only. */
  total(provider?: BilledBy): number {
    if (!provider) return this.totalMicros;
    return this.byProvider.get(provider) ?? 0;
  }

  /** How many calls were billed (including those no longer in the raw list). */
  get calls(): number {
    return this.count;
  }

  /** Forgets every call (the file too). */
  clear(): void {
    if (this.file && existsSync(this.file)) writeFileSync(this.file, '');
    this.entries = [];
    this.rollupMap.clear();
    this.byProvider.clear();
    this.totalMicros = 0;
    this.count = 0;
    this.since = Date.now();
  }

  /** The record as JSON-friendly data (what `GET /_emulator/billing` returns): `entries` lists
   * every call billed from `since` to `now` (epoch ms). */
  toJSON(): {
    total_micros: number;
    calls: number;
    since: number;
    now: number;
    entries: readonly BillingEntry[];
  } {
    return {
      total_micros: this.totalMicros,
      calls: this.count,
      since: this.since,
      now: Date.now(),
      entries: this.entries,
    };
  }
}
