import type { CallRecord, ModelCall } from '../gateway/call.ts';
import { formatUsd } from '../money.ts';
import type { Runtime } from '../runtime.ts';
import type { CallTiming } from './metrics.ts';

const ms = (from: number | undefined, to: number | undefined) =>
  from === undefined || to === undefined ? undefined : Math.round((to - from) * 10) / 10;

/**
 * The call path's last step: the counters, and one structured log line per call at `info`
 * (request id, identity, model, tokens, cost, outcome, timings). Nothing is built when the log
 * level is above info. The line holds ids, never a secret: the key's id, not the key.
 */
export function observeCall(rt: Runtime, call: ModelCall, r: CallRecord, t: CallTiming): void {
  rt.metrics?.call(call.identity, r, t);
  if (!infoEnabled(rt)) return;
  const id = call.identity;
  rt.log.info('model call', {
    requestId: call.requestId,
    outcome: r.outcome,
    status: r.status,
    ...(r.code ? { code: r.code } : {}),
    model: r.model,
    ...(r.model !== call.body.model ? { requestedModel: call.body.model } : {}),
    stream: call.body.stream === true,
    team: id.team,
    env: id.env,
    seat: id.seat,
    ...(id.workflow ? { workflow: id.workflow } : {}),
    ...(id.run ? { run: id.run } : {}),
    ...(id.session ? { session: id.session } : {}),
    ...(id.keyId ? { keyId: id.keyId } : {}),
    tokens: r.tokens,
    cost_usd: formatUsd(r.cost),
    cost_micros: r.cost,
    reserved_micros: r.reserved,
    ...(r.ledgerId ? { ledgerId: r.ledgerId } : {}),
    ms: ms(t.started, t.ended),
    ...(t.admitted !== undefined ? { admitMs: ms(t.started, t.admitted) } : {}),
    ...(t.responded !== undefined ? { providerMs: ms(t.admitted, t.responded) } : {}),
  });
}

/** A request refused at the gateway's door (no key, bad JSON, body too large): counted and logged. */
export function observeRejected(rt: Runtime, requestId: string, code: string, status: number): void {
  rt.metrics?.rejected(code);
  if (infoEnabled(rt)) rt.log.info('model call', { requestId, outcome: 'refused', status, code });
}

const INFO = new Set(['debug', 'info']);
function infoEnabled(rt: Runtime): boolean {
  return INFO.has(rt.log.level);
}
