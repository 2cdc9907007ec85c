/**
 * The API's id-cursor pagination (`GET /v1/models`, `GET /v1/messages/batches`; SDK 1.13 `Page`):
 * `?limit=` (default 20, 1–1000), `?after_id=` / `?before_id=`; answers
 * `{ data, has_more, first_id, last_id }`. Items are in the endpoint's order (newest first).
 */
import { invalid } from './errors.ts';

export interface PageOf<T> {
  data: T[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
}

/** One page of `items` (each with an `id`) per the request's query. */
export function paginate<T extends { id: string }>(items: readonly T[], url: string): PageOf<T> {
  const q = new URL(url).searchParams;
  const rawLimit = q.get('limit');
  const limit = rawLimit === null ? 20 : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw invalid('limit: Input should be greater than or equal to 1 and less than or equal to 1000');
  }
  const after = q.get('after_id');
  const before = q.get('before_id');
  let data: T[];
  let hasMore: boolean;
  if (before) {
    const end = items.findIndex((i) => i.id === before);
    const stop = Math.max(end, 0);
    const start = Math.max(0, stop - limit);
    data = items.slice(start, stop);
    hasMore = start > 0;
  } else {
    const from = after ? items.findIndex((i) => i.id === after) + 1 : 0;
    const start = after && from === 0 ? items.length : from;
    data = items.slice(start, start + limit);
    hasMore = start + limit < items.length;
  }
  return { data, has_more: hasMore, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}
