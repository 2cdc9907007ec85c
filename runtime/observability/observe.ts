import type { CallRecord, ModelCall } from '../gateway/call.ts';
import type { CallObserver, CallTiming } from '../gateway/observe.ts';
import type { Identity } from '../identity.ts';
import type { Logger } from '../log.ts';
import { formatUsd } from '../money.ts';
import type { Tracer } from './tracing.ts';

const ms = (from: number | undefined, to: number | undefined) =>
  from === undefined || to === undefined ? undefined : Math.round((to - from) * 10) / 10;

const INFO = new Set(['debug', 'info']);

/**
 * The call path's observation sink: the counters (`metrics`, read on each call: the Prometheus
 * metrics, when this process keeps them; `log` likewise, a test may swap it), the traces (a span per
 * model and tool call, when tracing is on), and one structured log line per call at `info`
 * (request id, identity, model, tokens, cost, outcome, timings). Nothing is built when the log
 * level is above info. The line holds ids, never a secret: the key's id, not the key.
 */
export function callObserver(
  log: () => Logger,
  metrics: () => CallObserver | undefined,
  /** Budget alerts: the budgets a settled call touched are checked later, off the call's path. */
  alerts: () => { settled(identity: Identity, record: CallRecord): void } | undefined = () => undefined,
  tracer?: Tracer,
): CallObserver {
  return {
    call(call, r, t, prefixHash) {
      metrics()?.call(call, r, t);
      if (tracer) tracer.call(call, r, t, prefixHash);
      alerts()?.settled(call.identity, r);
      const l = log();
      if (INFO.has(l.level)) logCall(l, call, r, t);
    },
    rejected(requestId, code, status) {
      metrics()?.rejected(requestId, code, status);
      const l = log();
      if (INFO.has(l.level)) l.info('model call', { requestId, outcome: 'refused', status, code });
    },
    ...(tracer ? { tool: (call, seen, t) => tracer.tool(call, seen, t) } : {}),
  };
}

function logCall(
  log: Logger,
  call: Pick<ModelCall, 'identity' | 'requestId' | 'body'>,
  r: CallRecord,
  t: CallTiming,
): void {
  const id = call.identity;
  log.info('model call', {
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
