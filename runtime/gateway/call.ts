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
import { cacheTtlsRequested, estimateInputTokens, type MessagesBody } from './messages.ts';
import { fingerprint } from './prefix.ts';
import { budgetExhausted, invalidRequest, killed, Refusal, unavailable } from './refusal.ts';
import { cacheHitRate, StreamUsage, tokensOf } from './usage.ts';

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
  /** The caller's bytes, forwarded unchanged unless routing rewrote the model. */
  raw?: Buffer;
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
    const price = rt.prices.lookup(model, rt.now());
    if (!price)
      throw invalidRequest(
        'model',
        `unknown model ${JSON.stringify(model)}: no price is known for it, so it is refused`,
      );
    if (body.max_tokens > price.maxOutputTokens) {
      throw invalidRequest(
        'max_tokens',
        `${body.max_tokens} is above ${model}'s limit of ${price.maxOutputTokens}`,
      );
    }

    const ttl = cacheTtlsRequested(body);
    const writes = ttl.has1h ? '1h' : ttl.has5m ? '5m' : 'none';
    let amount = rt.prices.worstCase(model, estimateInputTokens(body), body.max_tokens, rt.now(), writes);
    let admission = await rt.store.admit({
      identity,
      amount,
      provision: call.provision,
      requestId: call.requestId,
      kind: 'model',
      name: model,
    });
    if (
      !admission.ok &&
      admission.refusal.code === 'budget_exhausted' &&
      rt.config.provider.countTokensNearCeiling
    ) {
      // Near the ceiling a precise count may show the call fits after all: ask the provider.
      const exact = await rt.countTokens({ ...body, model }, call.headers).catch(() => undefined);
      if (exact !== undefined) {
        const precise = rt.prices.worstCase(model, exact, body.max_tokens, rt.now(), writes);
        if (precise < amount) {
          amount = precise;
          admission = await rt.store.admit({
            identity,
            amount,
            provision: call.provision,
            requestId: call.requestId,
            kind: 'model',
            name: model,
          });
        }
      }
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
    if (refusal.code !== 'invalid_request') {
      await rt
        .recordLedger(ledger({ name: model, outcome: 'refused', code: refusal.code }))
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
  const payload =
    model === body.model && call.raw ? call.raw : Buffer.from(JSON.stringify({ ...body, model }));
  let upstream: Awaited<ReturnType<Runtime['upstream']['post']>>;
  try {
    upstream = await rt.upstream.post(
      'v1/messages',
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
  if (model !== body.model) headers['x-chokepoint-model'] = `${model}; requested=${body.model}`;
  const streaming =
    upstream.status === 200 && String(upstream.headers['content-type'] ?? '').includes('text/event-stream');

  let tokens: TokenCounts = { ...NO_TOKENS };
  let errorType: string | undefined;
  let aborted = false;
  try {
    if (streaming) {
      const usage = new StreamUsage();
      sink.head(200, headers);
      for await (const chunk of upstream.body) {
        usage.feed(chunk as Buffer);
        // A client that went away still gets billed what the provider generates: keep reading.
        if (!sink.gone) sink.chunk(chunk as Buffer);
      }
      sink.end();
      tokens = usage.tokens();
      errorType = usage.errorType;
    } else {
      const buf = await readBody(upstream.body);
      if (upstream.status === 200) {
        const parsed = JSON.parse(buf.toString('utf8')) as { usage?: Parameters<typeof tokensOf>[0] };
        tokens = tokensOf(parsed.usage);
      } else {
        errorType = errorTypeOf(buf) ?? `http_${upstream.status}`;
      }
      sink.head(upstream.status, headers);
      sink.chunk(buf);
      sink.end();
    }
  } catch (err) {
    // Aborted (kill, time box) or the provider connection broke mid-answer.
    aborted = true;
    errorType = call.signal?.aborted ? 'aborted' : `upstream_${(err as Error).name}`;
    if (!sink.gone) sink.end();
  }

  const billed =
    tokens.input + tokens.cacheRead + tokens.cacheWrite5m + tokens.cacheWrite1h + tokens.output > 0;
  if (!billed) {
    const entry = await rt.releaseSafely(
      reservation,
      ledger({ name: model, outcome: 'error', code: errorType ?? 'no_usage', reserved: reservation.amount }),
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
  const cost = rt.prices.cost(model, tokens, rt.now());
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

function respondJson(sink: Sink, status: number, body: unknown, requestId: string): void {
  if (sink.gone) return;
  sink.head(status, { 'content-type': 'application/json', 'request-id': requestId });
  sink.chunk(Buffer.from(JSON.stringify(body)));
  sink.end();
}

function errorTypeOf(buf: Buffer): string | undefined {
  try {
    return (JSON.parse(buf.toString('utf8')) as { error?: { type?: string } }).error?.type;
  } catch {
    return undefined;
  }
}
