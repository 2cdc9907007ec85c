import { performance } from 'node:perf_hooks';
import type { ProviderError } from '../../adapters/provider.ts';
import type { Identity, Scope } from '../identity.ts';
import type { Logger } from '../log.ts';
import type { Micros } from '../money.ts';
import type { PriceTable } from '../pricing/pricing.ts';
import type {
  BudgetSpec,
  LedgerEntry,
  LedgerInput,
  MoneyStore,
  Reservation,
  TokenCounts,
} from '../store/port.ts';
import { account, providerFailed } from './account.ts';
import { decide } from './decide.ts';
import { type Answer, forward } from './forward.ts';
import type { MessagesBody } from './messages.ts';
import { type Metered, type MeteredCall, type MeteredWork, metered } from './metered.ts';
import type { CallObserver, CallTiming } from './observe.ts';
import type { OpenAIEndpoint, OpenAIFacts } from './openai-body.ts';
import type { Drift, Fingerprint } from './prefix.ts';
import type { ProviderSet } from './providers.ts';
import type { RateLimit } from './rate-limits.ts';
import type { Refusal } from './refusal.ts';
import type { Router } from './routing.ts';
import { CollectingSink, respondRefusal, type Sink } from './sink.ts';
import type { CacheVerdict, StreamTracker } from './streams.ts';

/**
 * THE call path. Every model call — a workflow run's or an outside app's through /v1/messages —
 * and every priced tool call goes through here, in this order: identify (done by the caller) →
 * decide (kill switch, gate, prefix check, route, price, admit: the worst case reserved on every
 * budget, or a typed refusal; decide.ts) → forward to the provider with a timeout and an abort
 * signal (forward.ts) → account: settle the real usage, ledger, observe (account.ts). Nothing
 * else in the code calls a provider. Any step that cannot decide refuses.
 */
export interface ModelCall {
  identity: Identity;
  requestId: string;
  body: MessagesBody;
  /** The caller's bytes, forwarded unchanged unless routing rewrote the model or max_tokens was fitted. */
  raw?: Buffer;
  /** The caller's query string (`?beta=true`), forwarded as it came. */
  query?: string;
  /** When the worst case does not fit: lower max_tokens (down to `floor`) or refuse. Default refuse. */
  maxTokens?: { mode: 'fit' | 'refuse'; floor: number };
  /** Caller headers to pass on (anthropic-version, anthropic-beta). */
  headers?: Record<string, string | string[] | undefined>;
  /** Prompt stream for drift and cache health: key + workflow/session, or the run id. */
  streamKey: string;
  /** `refuse`: a changed frozen prefix is a 409 prefix_drift instead of a reported event. */
  driftPolicy?: 'report' | 'refuse';
  /** Aborts the provider call (kill, time box). */
  signal?: AbortSignal;
  /** Budgets to create with these specs if missing (a run's spend box). */
  provision?: Record<Scope, BudgetSpec>;
  /** A check before admission that may refuse (an outside agent's session time box). */
  gate?: () => Promise<void>;
  /** The provider (config name) this call must go to; no routing or failover across providers. */
  provider?: string;
  /**
   * The provider kind the caller's wire format belongs to (the Bedrock face: `bedrock`): used
   * when routing names no providers and one of that kind is configured, else the default.
   */
  prefer?: string;
  /** Where the caller asked the call to run (a Bedrock profile prefix, a Vertex location). */
  geo?: string;
  /**
   * An OpenAI-format call (a GPT model through the OpenAI face): `body` is the OpenAI body, sent
   * as is to an OpenAI-family provider at `endpoint`; admission reads `facts` instead of a
   * Messages body's fields.
   */
  openai?: { endpoint: OpenAIEndpoint; facts: OpenAIFacts };
}

export interface CallRecord {
  status: number;
  model: string;
  /** The provider (config name) that served the call, or was to. */
  provider?: string;
  tokens: TokenCounts;
  cost: Micros;
  reserved: Micros;
  outcome: 'ok' | 'refused' | 'error';
  code?: string;
  ledgerId?: string;
  /** Why the call was refused (outcome `refused`), as a value: no JSON to parse back. */
  refusal?: Refusal;
}

/** A model call's result for callers inside the runtime (workflow runs): typed, never HTTP JSON. */
export type CallResult =
  | { ok: true; record: CallRecord; answer: Record<string, unknown> }
  | { ok: false; record: CallRecord; refusal: Refusal }
  | { ok: false; record: CallRecord; error: { code: string; status: number; message: string } };

/** The alarms the call path raises (the runtime's event log). */
export interface CallEvents {
  prefixDrift(identity: Identity, stream: string, drift: Drift): unknown;
  cacheAlarm(identity: Identity, stream: string, alarm: NonNullable<CacheVerdict['alarm']>): unknown;
}

/**
 * What the call path is handed instead of the whole runtime. `prices` and `router` are read on
 * every call (a config reload swaps them).
 */
export interface CallDeps {
  readonly store: MoneyStore;
  readonly prices: PriceTable;
  readonly router: Router;
  readonly streams: StreamTracker;
  readonly events: CallEvents;
  readonly providers: ProviderSet;
  readonly log: Logger;
  readonly observer: CallObserver;
  readonly policy: { inferenceGeo: 'global' | 'us'; countTokensNearCeiling: boolean };
  /** The configured rate limits (config `rateLimits:`), admitted with the money. */
  readonly rateLimits?: readonly RateLimit[];
  now(): number;
  /** The fullest budget of the identity, as a share of its ceiling (0..1): routing reads it. */
  utilisation(identity: Identity): Promise<number>;
  /** Settles, retrying; a settlement the store cannot take is kept on disk and replayed: never lost. */
  settleSafely(r: Reservation, entry: LedgerInput): Promise<LedgerEntry | undefined>;
  releaseSafely(r: Reservation, entry: LedgerInput): Promise<LedgerEntry | undefined>;
}

export class CallPath {
  constructor(readonly deps: CallDeps) {}

  /** One model call, its answer written to `sink` (the HTTP faces). */
  async model(call: ModelCall, sink: Sink): Promise<CallRecord> {
    const timing: CallTiming = { started: performance.now(), ended: 0 };
    const fp = this.deps.streams.fingerprint(call.streamKey, call.openai ? promptOf(call.body) : call.body);
    const record = await this.run(call, sink, timing, fp);
    timing.ended = performance.now();
    this.deps.observer.call(call, record, timing, fp.prefixHash);
    return record;
  }

  /** One model call whose answer the caller reads as a value (workflow runs). */
  async collect(call: ModelCall): Promise<CallResult> {
    const sink = new CollectingSink();
    const record = await this.model(call, sink);
    if (record.refusal) return { ok: false, record, refusal: record.refusal };
    const answer = sink.json();
    if (record.outcome === 'ok') return { ok: true, record, answer };
    const message = (answer.error as { message?: unknown } | undefined)?.message;
    return {
      ok: false,
      record,
      error: {
        code: record.code ?? `http_${record.status}`,
        status: record.status,
        message: typeof message === 'string' ? message : '',
      },
    };
  }

  /** A priced (or merely ledgered) non-model call: an MCP tool. See metered.ts. */
  metered<T>(call: MeteredCall, work: () => Promise<MeteredWork<T>>): Promise<Metered<T>> {
    return metered(this.deps, call, work);
  }

  /** A request a face refused at its door (no key, bad JSON, too large): observed like a call. */
  rejected(requestId: string, code: string, status: number): void {
    this.deps.observer.rejected(requestId, code, status);
  }

  private async run(call: ModelCall, sink: Sink, timing: CallTiming, fp: Fingerprint): Promise<CallRecord> {
    let decision = await decide(this.deps, call, fp, timing);
    for (;;) {
      if (!decision.ok) {
        respondRefusal(sink, decision.refusal, call.requestId);
        return decision.record;
      }
      // From here on a reservation is held: every path ends in settle or release.
      const answer = await forward(this.deps, call, decision, sink, timing);
      const next = decision.failover[0];
      if (next !== undefined && failedOver(answer)) {
        // The provider failed before any byte reached the client: its attempt is ledgered and
        // released, and the next provider is a new admission (priced for it), never a fail-open.
        if ('failure' in answer)
          await providerFailed(this.deps, call, decision, answer.failure, undefined, timing);
        else await account(this.deps, call, decision, answer, fp, timing);
        this.deps.log.warn('provider failed over', {
          requestId: call.requestId,
          from: decision.provider,
          to: next,
          status: 'failure' in answer ? answer.failure.kind : answer.status,
        });
        decision = await decide(this.deps, call, fp, timing, {
          model: decision.model,
          provider: next,
          failover: decision.failover.slice(1),
        });
        continue;
      }
      if ('failure' in answer) return providerFailed(this.deps, call, decision, answer.failure, sink, timing);
      try {
        return await account(this.deps, call, decision, answer, fp, timing);
      } finally {
        answer.rest();
      }
    }
  }
}

/**
 * An OpenAI-format body seen as a prompt (for drift and cache health): chat's messages, or
 * responses' `instructions` and `input` (a string is one user turn); embeddings' input as a turn.
 */
function promptOf(body: MessagesBody): MessagesBody {
  const b = body as Record<string, unknown>;
  const items = Array.isArray(b.messages)
    ? b.messages
    : Array.isArray(b.input)
      ? b.input
      : [{ role: 'user', content: b.input }];
  return {
    model: body.model,
    max_tokens: 1,
    messages: (items as unknown[]).map((m) =>
      m !== null && typeof m === 'object' ? m : { role: 'user', content: m },
    ) as MessagesBody['messages'],
    ...(typeof b.instructions === 'string' ? { system: b.instructions } : {}),
    ...(Array.isArray(b.tools) ? { tools: b.tools } : {}),
  };
}

/** A provider failure the next provider may answer instead: no connection, a timeout, 5xx, 529. */
function failedOver(answer: Answer | { failure: ProviderError }): boolean {
  if ('failure' in answer) return answer.failure.kind !== 'aborted';
  // A streamed answer is a 200 whose bytes may have reached the client: never failed over.
  return !answer.aborted && answer.status >= 500;
}
