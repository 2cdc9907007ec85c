import type { Micros } from '../money.ts';
import type { CallRecord, ModelCall } from './call.ts';
import type { MeteredCall } from './metered.ts';

/** When each step of one call ended (performance.now()). */
export interface CallTiming {
  /** The start of the call path. */
  started: number;
  /** When admission (route, price, reserve) finished. */
  admitted?: number;
  /** When the provider's response head arrived (or the request failed). */
  responded?: number;
  /** When the call path finished. */
  ended: number;
}

/** How a metered (tool) call ended, for observers: what its ledger entry says. */
export interface ToolObservation {
  outcome: 'ok' | 'error' | 'refused';
  code?: string;
  cost: Micros;
  reserved: Micros;
  ledgerId?: string;
}

/**
 * The call path's last step, handed to it: whatever observes calls (the Prometheus metrics, the
 * structured log, the traces) implements this. Called once per call, after it is settled; must
 * not throw.
 */
export interface CallObserver {
  /** One model call, whatever its outcome, with its timings and the fingerprint of its prefix. */
  call(
    call: Pick<ModelCall, 'identity' | 'requestId' | 'body' | 'headers' | 'openai'>,
    record: CallRecord,
    timing: CallTiming,
    prefixHash?: string,
  ): void;
  /** A gateway request refused before it had an identity or a valid body (401, 400, 413). */
  rejected(requestId: string, code: string, status: number): void;
  /** One metered call that is not a model call (an MCP tool), whatever its outcome. */
  tool?(call: MeteredCall, seen: ToolObservation, timing: CallTiming): void;
}
