import { performance } from 'node:perf_hooks';
import { readBody, UpstreamError } from '../../adapters/upstream.ts';
import type { Identity, Scope } from '../identity.ts';
import type { Micros } from '../money.ts';
import type { CallTiming } from '../observability/metrics.ts';
import { observeCall } from '../observability/observe.ts';
import type { Runtime } from '../runtime.ts';
import {
  type BudgetSpec,
  EnforcementUnavailableError,
  type LedgerInput,
  NO_TOKENS,
  type Reservation,
  type TokenCounts,
} from '../store/port.ts';
import { actualCost, callCost, fitMaxTokens, worstCase } from './cost.ts';
import { inspect, type MessagesBody } from './messages.ts';
import { fingerprint } from './prefix.ts';
import { budgetExhausted, invalidRequest, killed, Refusal, unavailable, unknownModel } from './refusal.ts';
import { type ApiUsage, type Billed, billedOf, cacheHitRate, StreamUsage } from './usage.ts';

/**
 * THE call path. Every model call — a workflow run's or an outside app's through /v1/messages —
 * goes through `modelCall`, in this order: identify (done by the caller) → kill switch (inside the
 * atomic admission) → prompt prefix check → route → price → admit (reserve the worst case on every
 * budget) → call the provider with a timeout and an abort signal → settle the real usage → ledger
 * → observe. Nothing else in the code calls a provider. Any step that cannot decide refuses.
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
}

/** Where the answer goes: an HTTP response for the gateway, a collector for workflow runs. */
export interface Sink {
  head(status: number, headers: Record<string, string>): void;
  chunk(data: Buffer): void;
  end(): void;
  /** True once the receiver went away (client disconnected). */
  readonly gone: boolean;
}

export interface CallRecord {
  status: number;
  model: string;
  tokens: TokenCounts;
  cost: Micros;
  reserved: Micros;
  outcome: 'ok' | 'refused' | 'error';
  code?: string;
  ledgerId?: string;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'date',
  'server',
]);

export async function modelCall(rt: Runtime, call: ModelCall, sink: Sink): Promise<CallRecord> {
  const timing: CallTiming = { started: performance.now(), ended: 0 };
  const record = await callPath(rt, call, sink, timing);
  timing.ended = performance.now();
  observeCall(rt, call, record, timing);
  return record;
}

async function callPath(rt: Runtime, call: ModelCall, sink: Sink, timing: CallTiming): Promise<CallRecord> {
  const started = timing.started;
  const { identity, body } = call;
  const ledger = (partial: Partial<LedgerInput> & Pick<LedgerInput, 'outcome'>): LedgerInput => ({
    requestId: call.requestId,
    identity,
    kind: 'model',
    name: partial.name ?? body.model,
    tokens: partial.tokens ?? { ...NO_TOKENS },
    reserved: partial.reserved ?? 0,
    cost: partial.cost ?? 0,
    latencyMs: Math.round(performance.now() - started),
    ...partial,
  });

  let model = body.model;
  let maxTokens = body.max_tokens;
  let reservation: Reservation | undefined;
  const fp = fingerprint(body);
  try {
    // Prompt prefix: a changed frozen part is drift — reported, or refused where policy says so.
    const drift = rt.streams.drift(call.streamKey, fp);
    if (drift) {
      rt.events.prefixDrift(identity, call.streamKey, drift);
      if (call.driftPolicy === 'refuse') {
        throw new Refusal(
          'prefix_drift',
          `prefix_drift: the frozen prompt prefix changed: ${drift.description}`,
          {
            drift,
          },
        );
      }
    }

    if (call.gate) await call.gate();
    const route = await rt.router.route(body.model, identity, () => rt.utilisation(identity));
    model = route.model;
    const at = rt.now();
    const price = rt.prices.lookup(model, at);
    if (!price) throw unknownModel(model);
    if (body.max_tokens > price.maxOutputTokens) {
      throw invalidRequest(
        'max_tokens',
        `${body.max_tokens} is above ${model}'s limit of ${price.maxOutputTokens}`,
      );
    }

    const facts = inspect(body);
    const cost = callCost(rt.prices, body, model, price, facts, at, rt.config.gateway.inferenceGeo);
    const worst = (out: number) => worstCase(rt.prices, model, facts, cost, out, at);
    const admit = (amount: number) =>
      rt.store.admit({
        identity,
        amount,
        provision: call.provision,
        requestId: call.requestId,
        kind: 'model',
        name: model,
      });
    let amount = worst(maxTokens);
    let admission = await admit(amount);
    if (
      !admission.ok &&
      admission.refusal.code === 'budget_exhausted' &&
      rt.config.provider.countTokensNearCeiling
    ) {
      // Near the ceiling a precise count may show the call fits after all: ask the provider.
      const exact = await rt.countTokens({ ...body, model }, call.headers).catch(() => undefined);
      if (exact !== undefined && exact < facts.inputTokens) {
        facts.inputTokens = exact;
        const precise = worst(maxTokens);
        if (precise < amount) {
          amount = precise;
          admission = await admit(amount);
        }
      }
    }
    // `fit`: a call whose worst case does not fit asks for fewer output tokens instead of being
    // refused — as many as the fullest budget can still pay for, never below the floor. The store
    // admits the lowered worst case atomically, so the ceiling stays exact.
    for (let i = 0; i < 3 && call.maxTokens?.mode === 'fit'; i++) {
      if (admission.ok || admission.refusal.code !== 'budget_exhausted') break;
      const b = admission.refusal.budget;
      if (b.state === 'frozen') break;
      const fitted = fitMaxTokens(worst, b.ceiling - b.spent - b.reserved, maxTokens, call.maxTokens.floor);
      if (fitted === undefined) break;
      maxTokens = fitted;
      amount = worst(maxTokens);
      admission = await admit(amount);
    }
    if (!admission.ok) {
      throw admission.refusal.code === 'killed'
        ? killed(admission.refusal.kill)
        : budgetExhausted(admission.refusal.budget, admission.refusal.amount, rt.now());
    }
    reservation = admission.reservation;
    timing.admitted = performance.now();
  } catch (err) {
    const refusal = await asRefusal(rt, identity, err);
    // Unknown models are ledgered too (code unknown_model): `chokepoint prices` lists what
    // clients asked for that the table cannot price.
    const unpriced = refusal.details.prices_entry !== undefined;
    if (refusal.code !== 'invalid_request' || unpriced) {
      await rt
        .recordLedger(
          ledger({ name: model, outcome: 'refused', code: unpriced ? 'unknown_model' : refusal.code }),
        )
        .catch((e) =>
          rt.log.error('could not record a refusal in the ledger', { error: e, requestId: call.requestId }),
        );
    }
    respondRefusal(sink, refusal, call.requestId);
    return {
      status: refusal.status,
      model,
      tokens: { ...NO_TOKENS },
      cost: 0,
      reserved: 0,
      outcome: 'refused',
      code: refusal.code,
    };
  }

  // The call itself. From here on a reservation is held: every path ends in settle or release.
  const fitted = maxTokens !== body.max_tokens;
  const payload =
    model === body.model && !fitted && call.raw
      ? call.raw
      : Buffer.from(JSON.stringify({ ...body, model, max_tokens: maxTokens }));
  let upstream: Awaited<ReturnType<Runtime['upstream']['post']>>;
  try {
    upstream = await rt.upstream.post(
      `v1/messages${call.query ?? ''}`,
      payload,
      call.headers ?? {},
      call.signal,
      call.requestId,
    );
    timing.responded = performance.now();
  } catch (err) {
    timing.responded = performance.now();
    const e = err as UpstreamError;
    const kind = e instanceof UpstreamError ? e.kind : 'network';
    const entry = await rt.releaseSafely(
      reservation,
      ledger({ name: model, outcome: 'error', code: `upstream_${kind}`, reserved: reservation.amount }),
    );
    const status = kind === 'timeout' ? 504 : kind === 'aborted' ? 499 : 502;
    respondJson(
      sink,
      status,
      {
        type: 'error',
        error: {
          type: kind === 'timeout' ? 'timeout_error' : 'api_error',
          message: `provider call failed: ${e.message}`,
        },
        chokepoint: { code: `upstream_${kind}` },
      },
      call.requestId,
    );
    return {
      status,
      model,
      tokens: { ...NO_TOKENS },
      cost: 0,
      reserved: reservation.amount,
      outcome: 'error',
      code: `upstream_${kind}`,
      ledgerId: entry?.id,
    };
  }

  const headers: Record<string, string> = {
    'request-id': call.requestId,
    'x-chokepoint-request-id': call.requestId,
  };
  for (const [k, v] of Object.entries(upstream.headers)) {
    if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  // Both built from request data: only ever sent as plain printable ASCII (a header with a CR/LF
  // or a control character would make node throw mid-answer).
  if (model !== body.model) headers['x-chokepoint-model'] = headerSafe(`${model}; requested=${body.model}`);
  if (fitted) headers['x-chokepoint-max-tokens'] = `${maxTokens}; requested=${body.max_tokens}`;
  const streaming =
    upstream.status === 200 && String(upstream.headers['content-type'] ?? '').includes('text/event-stream');

  let billed: Billed = { tokens: { ...NO_TOKENS }, options: {} };
  let errorType: string | undefined;
  let aborted = false;
  // The rest of the answer, written only once the call is settled: settlement is durable before
  // the client can have the whole answer, so a crash in between cannot leave a call the client
  // received (and the provider billed) uncharged. A stream is forwarded as it comes up to its
  // `message_stop` event; a complete answer is held whole.
  let rest: () => void = () => {
    if (!sink.gone) sink.end();
  };
  const usage = streaming ? new StreamUsage() : undefined;
  try {
    if (usage) {
      sink.head(200, headers);
      const held: Buffer[] = [];
      for await (const c of upstream.body) {
        const chunk = c as Buffer;
        usage.feed(chunk);
        // A client that went away still gets billed what the provider generates: keep reading.
        if (held.length === 0) {
          const stop = chunk.indexOf(MESSAGE_STOP);
          if (stop === -1) {
            if (!sink.gone) sink.chunk(chunk);
            continue;
          }
          if (stop > 0 && !sink.gone) sink.chunk(chunk.subarray(0, stop));
          held.push(chunk.subarray(stop));
        } else held.push(chunk);
      }
      billed = usage.billed();
      errorType = usage.errorType;
      rest = () => {
        if (sink.gone) return;
        for (const h of held) sink.chunk(h);
        sink.end();
      };
    } else {
      const buf = await readBody(upstream.body);
      if (upstream.status === 200) {
        const parsed = JSON.parse(buf.toString('utf8')) as { usage?: ApiUsage };
        billed = billedOf(parsed.usage);
      } else {
        errorType = errorTypeOf(buf) ?? `http_${upstream.status}`;
      }
      rest = () => {
        sink.head(upstream.status, headers);
        sink.chunk(buf);
        sink.end();
      };
    }
  } catch (err) {
    // Aborted (kill, time box) or the provider connection broke mid-answer: what the stream
    // showed so far (input, and output at least the deltas seen) is billed.
    aborted = true;
    errorType = call.signal?.aborted ? 'aborted' : `upstream_${(err as Error).name}`;
    if (usage) billed = usage.billed();
  }
  try {
    return await account(reservation);
  } finally {
    rest();
  }

  async function account(reservation: Reservation): Promise<CallRecord> {
    const { tokens } = billed;
    const used =
      tokens.input + tokens.cacheRead + tokens.cacheWrite5m + tokens.cacheWrite1h + tokens.output > 0;
    if (!used) {
      const entry = await rt.releaseSafely(
        reservation,
        ledger({
          name: model,
          outcome: 'error',
          code: errorType ?? 'no_usage',
          reserved: reservation.amount,
        }),
      );
      return {
        status: upstream.status,
        model,
        tokens,
        cost: 0,
        reserved: reservation.amount,
        outcome: 'error',
        code: errorType,
        ledgerId: entry?.id,
      };
    }
    let cost: Micros;
    try {
      cost = actualCost(rt.prices, model, billed, rt.now());
    } catch (err) {
      // A usage the table cannot price (a sub-call on a model it does not know): never charge
      // zero — the reserved worst case stands until reconciliation corrects it.
      rt.log.error('could not price a call: charged its reservation', {
        error: err,
        requestId: call.requestId,
      });
      cost = reservation.amount;
      errorType ??= 'unpriced_usage';
    }
    const verdict = rt.streams.observe(call.streamKey, fp, tokens, rt.now(), identity.workflow);
    if (verdict.alarm) rt.events.cacheAlarm(identity, call.streamKey, verdict.alarm);
    const entry = await rt.settleSafely(
      reservation,
      ledger({
        name: model,
        outcome: errorType || aborted ? 'error' : 'ok',
        code: errorType,
        tokens,
        cost,
        reserved: reservation.amount,
        prefixHash: fp.prefixHash,
        cacheHitRate: cacheHitRate(tokens),
      }),
    );
    return {
      status: upstream.status,
      model,
      tokens,
      cost,
      reserved: reservation.amount,
      outcome: errorType || aborted ? 'error' : 'ok',
      code: errorType,
      ledgerId: entry?.id,
    };
  }
}

/** Turns whatever stopped a call before the provider into a Refusal; killed wins over the rest. */
async function asRefusal(rt: Runtime, identity: Identity, err: unknown): Promise<Refusal> {
  if (err instanceof EnforcementUnavailableError) return unavailable(err.message);
  if (!(err instanceof Refusal)) {
    rt.log.error('call path failed', { error: err });
    return unavailable('internal error while deciding');
  }
  if (err.code !== 'killed' && err.code !== 'enforcement_unavailable' && err.code !== 'budget_exhausted') {
    const kill = await rt.store.killedBy(identity).catch(() => undefined);
    if (kill) return killed(kill);
  }
  return err;
}

export function respondRefusal(sink: Sink, refusal: Refusal, requestId: string): void {
  sink.head(refusal.status, refusal.headers(requestId));
  sink.chunk(Buffer.from(JSON.stringify(refusal.envelope(requestId))));
  sink.end();
}

export function respondJson(sink: Sink, status: number, body: unknown, requestId: string): void {
  if (sink.gone) return;
  sink.head(status, { 'content-type': 'application/json', 'request-id': requestId });
  sink.chunk(Buffer.from(JSON.stringify(body)));
  sink.end();
}

const MESSAGE_STOP = Buffer.from('event: message_stop');

function headerSafe(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}

function errorTypeOf(buf: Buffer): string | undefined {
  try {
    return (JSON.parse(buf.toString('utf8')) as { error?: { type?: string } }).error?.type;
  } catch {
    return undefined;
  }
}
