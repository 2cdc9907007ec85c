import type { Usage } from '../../adapters/provider.ts';
import type { TokenCounts } from '../store/port.ts';

/** Everything a call is billed for, as its provider's adapter read it off the answer. */
export type Billed = Usage;

export function cacheHitRate(t: TokenCounts): number {
  const all = t.input + t.cacheWrite5m + t.cacheWrite1h + t.cacheRead;
  return all === 0 ? 0 : t.cacheRead / all;
}
