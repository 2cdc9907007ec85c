import { performance } from 'node:perf_hooks';
import type { ProviderError } from '../../adapters/provider.ts';
import type { Micros } from '../money.ts';
import type { LedgerInput } from '../store/port.ts';
import type { CallDeps, CallRecord, ModelCall } from './call.ts';
import { actualCost } from './cost.ts';
import type { Admitted } from './decide.ts';
import type { Answer } from './forward.ts';
import type { CallTiming } from './observe.ts';
import type { Fingerprint } from './prefix.ts';
import { respondJson, type Sink } from './sink.ts';
import { cacheHitRate } from './usage.ts';

/** A model call's ledger entry; what is not given is zero. */
export function ledgerEntry(
  call: ModelCall,
  timing: CallTiming,
  partial: Partial<LedgerInput> & Pick<LedgerInput, 'outcome'>,
): LedgerInput {
  return {
    requestId: call.requestId,
    identity: call.identity,
    kind: 'model',
    name: partial.name ?? call.body.model,
    tokens: partial.tokens ?? { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 },
    reserved: partial.reserved ?? 0,
    cost: partial.cost ?? 0,
    latencyMs: Math.round(performance.now() - timing.started),
    ...partial,
  };
}

/**
 * Account: price the usage the provider reported, replace the reservation by it and write one
 * ledger entry (or release it when nothing was used), and feed the prompt stream's cache health.
 */
export async function account(
  d: CallDeps,
  call: ModelCall,
  admitted: Admitted,
  answer: Answer,
  fp: Fingerprint,
  timing: CallTiming,
): Promise<CallRecord> {
  const { model, reservation, provider } = admitted;
  const { billed } = answer;
  const { tokens } = billed;
  let { errorType } = answer;
  const used =
    tokens.input + tokens.cacheRead + tokens.cacheWrite5m + tokens.cacheWrite1h + tokens.output > 0;
  if (!used) {
    const entry = await d.releaseSafely(
      reservation,
      ledgerEntry(call, timing, {
        identity: admitted.identity,
        name: model,
        provider,
        outcome: 'error',
        code: errorType ?? 'no_usage',
        reserved: reservation.amount,
      }),
    );
    return {
      status: answer.status,
      model,
      provider,
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
    cost = actualCost(d.prices, model, billed, d.now(), admitted.pricing);
  } catch (err) {
    // A usage the table cannot price (a sub-call on a model it does not know): never charge
    // zero — the reserved worst case stands until reconciliation corrects it.
    d.log.error('could not price a call: charged its reservation', { error: err, requestId: call.requestId });
    cost = reservation.amount;
    errorType ??= 'unpriced_usage';
  }
  const verdict = d.streams.observe(call.streamKey, fp, tokens, d.now(), call.identity.workflow);
  if (verdict.alarm) d.events.cacheAlarm(call.identity, call.streamKey, verdict.alarm);
  const outcome = errorType || answer.aborted ? 'error' : 'ok';
  // ledgerEntry's fields in its order, written out: every answered call comes here, and a literal
  // is one allocation where ledgerEntry's trailing spread copies key by key.
  const entry = await d.settleSafely(reservation, {
    requestId: call.requestId,
    identity: admitted.identity,
    kind: 'model',
    name: model,
    tokens,
    reserved: reservation.amount,
    cost,
    latencyMs: Math.round(performance.now() - timing.started),
    provider,
    outcome,
    code: errorType,
    prefixHash: fp.prefixHash,
    cacheHitRate: cacheHitRate(tokens),
  });
  return {
    status: answer.status,
    model,
    provider,
    tokens,
    cost,
    reserved: reservation.amount,
    outcome,
    code: errorType,
    ledgerId: entry?.id,
  };
}

/**
 * The provider brought no answer (timeout, abort, no connection): released, and a 5xx/499 —
 * written to `sink` unless the call fails over to the next provider (no sink).
 */
export async function providerFailed(
  d: CallDeps,
  call: ModelCall,
  admitted: Admitted,
  failure: ProviderError,
  sink: Sink | undefined,
  timing: CallTiming,
): Promise<CallRecord> {
  const { model, reservation, provider } = admitted;
  const code = `upstream_${failure.kind}`;
  const entry = await d.releaseSafely(
    reservation,
    ledgerEntry(call, timing, {
      identity: admitted.identity,
      name: model,
      provider,
      outcome: 'error',
      code,
      reserved: reservation.amount,
    }),
  );
  const status = failure.kind === 'timeout' ? 504 : failure.kind === 'aborted' ? 499 : 502;
  const type = failure.kind === 'timeout' ? 'timeout_error' : 'api_error';
  const record: CallRecord = {
    status,
    model,
    provider,
    tokens: { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 },
    cost: 0,
    reserved: reservation.amount,
    outcome: 'error',
    code,
    ledgerId: entry?.id,
  };
  if (!sink) return record;
  respondJson(
    sink,
    status,
    {
      type: 'error',
      error: { type, message: `provider call failed: ${failure.message}` },
      chokepoint: { code },
    },
    call.requestId,
  );
  return record;
}
