import type { CacheTally } from '../../gateway/streams.ts';
import { cacheHitRate } from '../../gateway/usage.ts';
import { formatUsd } from '../../money.ts';
import type { SpendDimension, SpendRow } from '../../store/port.ts';
import type { IsoTime } from './format.ts';

/** One group of `/api/spend`: its cost in µ$ and dollars, calls, tokens and cache hit rate, and
 * how many expired charges reconciliation corrected in it and by how much (part of the cost). */
export type SpendRowView = SpendRow & {
  cost_usd: string;
  cost_micros: number;
  cache_hit_rate: number;
  corrected_usd: string;
};

export function spendRowView(r: SpendRow): SpendRowView {
  return {
    ...r,
    cost_usd: formatUsd(r.cost),
    cost_micros: r.cost,
    cache_hit_rate: cacheHitRate(r.tokens),
    corrected_usd: formatUsd(r.correctedCost),
  };
}

/** `GET /api/spend`. */
export interface SpendResponse {
  by: SpendDimension;
  since: IsoTime;
  until: IsoTime;
  rows: SpendRowView[];
}

/** One workflow of `/api/cache-health`: the cache reads its prefixes allow against those seen. */
export interface CacheHealthView {
  workflow: string;
  calls: number;
  input_tokens: number;
  expected_read_tokens: number;
  actual_read_tokens: number;
  expected_hit_rate: number | null;
  actual_hit_rate: number | null;
}

const rate = (n: number, d: number) => (d > 0 ? Math.round((1000 * n) / d) / 1000 : null);

export function cacheHealthView(t: CacheTally): CacheHealthView {
  return {
    workflow: t.workflow,
    calls: t.calls,
    input_tokens: t.inputTokens,
    expected_read_tokens: t.expectedRead,
    actual_read_tokens: t.actualRead,
    expected_hit_rate: rate(t.expectedRead, t.inputTokens),
    actual_hit_rate: rate(t.actualRead, t.inputTokens),
  };
}

/** `GET /api/cache-health`. */
export interface CacheHealthResponse {
  since: IsoTime;
  workflows: CacheHealthView[];
}
