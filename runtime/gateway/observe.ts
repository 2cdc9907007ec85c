import type { CallRecord, ModelCall } from './call.ts';

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

/**
 * The call path's last step, handed to it: whatever observes calls (the Prometheus metrics, the
 * structured log) implements this. Called once per call, after it is settled; must not throw.
 */
export interface CallObserver {
  /** One model call, whatever its outcome, with its timings. */
  call(
    call: Pick<ModelCall, 'identity' | 'requestId' | 'body'>,
    record: CallRecord,
    timing: CallTiming,
  ): void;
  /** A gateway request refused before it had an identity or a valid body (401, 400, 413). */
  rejected(requestId: string, code: string, status: number): void;
}
