import { formatUsd, type Micros } from '../../money.ts';

/**
 * The two edge formats every view shares: times leave the services as ms since the epoch and
 * reach the wire as ISO 8601 (null when unset); money leaves them as integer µ$ and reaches the
 * wire as a dollar string next to its µ$, formatted here and nowhere further in.
 */

export type IsoTime = string;

export function iso(ms: number): IsoTime;
export function iso(ms: number | null | undefined): IsoTime | null;
export function iso(ms: number | null | undefined): IsoTime | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

/** An amount as `{usd: "1.500000", micros: 1500000}`. */
export interface UsdAmount {
  usd: string;
  micros: Micros;
}

export const usdAmount = (m: Micros): UsdAmount => ({ usd: formatUsd(m), micros: m });
