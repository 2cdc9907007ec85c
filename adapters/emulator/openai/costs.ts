/**
 * `GET /openai/v1/organization/costs` (admin key): the `openai` part of the emulator's bill in
 * OpenAI's costs shape — a `page` of daily `bucket`s from `start_time`, each with
 * `organization.costs.result` rows whose `amount` is `{value (USD, a number), currency: "usd"}`.
 * `group_by[]=line_item` splits a day into `"<model>, <item>"` lines (`input_tokens`,
 * `cached_input_tokens`, `cache_write_tokens`, `output_tokens`, `web_search_calls`), and
 * `group_by[]=project_id` by project (the emulator's API-key label). `limit` (1–180, default 7)
 * buckets a page; `next_page` is the cursor for the rest. Line amounts are the bill's per-class
 * split, so the lines of a day sum exactly to the bill.
 */
import type { BillingEntry } from '../billing.ts';
import type { EmulatorState } from '../http.ts';
import { authenticateOpenAIAdmin, badParam, okHeaders, openaiError, requestIdOf } from './http.ts';

const DAY_S = 86_400;

interface Line {
  line_item: string | null;
  project_id: string | null;
  micros: number;
  quantity: number;
}

function linesOf(e: BillingEntry): Array<{ item: string; micros: number; quantity: number }> {
  const c = e.costByClass;
  const u = e.usage;
  return [
    { item: 'input_tokens', micros: c.input, quantity: u.input },
    { item: 'cached_input_tokens', micros: c.cacheRead, quantity: u.cacheRead },
    {
      item: 'cache_write_tokens',
      micros: c.cacheWrite5m + c.cacheWrite1h,
      quantity: u.cacheWrite5m + u.cacheWrite1h,
    },
    { item: 'output_tokens', micros: c.output, quantity: u.output },
    { item: 'web_search_calls', micros: e.webSearchMicros, quantity: e.webSearchRequests },
  ].filter((l) => l.quantity > 0 || l.micros > 0);
}

function intParam(params: URLSearchParams, name: string, fallback?: number): number | undefined {
  const v = params.get(name);
  if (v === null) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw badParam(name, `Invalid '${name}': expected an integer, got '${v}'.`);
  return n;
}

/** One bucket's result rows. */
function results(entries: readonly BillingEntry[], byItem: boolean, byProject: boolean) {
  const lines = new Map<string, Line>();
  const add = (item: string | null, project: string | null, micros: number, quantity: number) => {
    const k = `${item}|${project}`;
    const l = lines.get(k) ?? { line_item: item, project_id: project, micros: 0, quantity: 0 };
    l.micros += micros;
    l.quantity += quantity;
    lines.set(k, l);
  };
  for (const e of entries) {
    const project = byProject ? `proj_${e.apiKey}` : null;
    if (byItem) for (const l of linesOf(e)) add(`${e.model}, ${l.item}`, project, l.micros, l.quantity);
    else add(null, project, e.costMicros, 0);
  }
  return [...lines.values()].map((l) => ({
    object: 'organization.costs.result',
    amount: { value: l.micros / 1_000_000, currency: 'usd' },
    line_item: l.line_item,
    project_id: l.project_id,
    ...(byItem
      ? { quantity: l.quantity, quantity_unit: l.line_item?.endsWith('_calls') ? null : 'tokens' }
      : {}),
  }));
}

/** `GET /openai/v1/organization/costs`. */
export function organizationCosts(raw: Request, state: EmulatorState): Response {
  const requestId = requestIdOf();
  try {
    authenticateOpenAIAdmin(raw.headers, state);
    const params = new URL(raw.url).searchParams;
    const start = intParam(params, 'start_time');
    if (start === undefined)
      throw badParam('start_time', "Missing required parameter: 'start_time'.", 'missing_required_parameter');
    const end = intParam(params, 'end_time', Math.floor(state.now() / 1000) + 1)!;
    const width = params.get('bucket_width') ?? '1d';
    if (width !== '1d')
      throw badParam('bucket_width', "Invalid 'bucket_width': only '1d' is supported.", 'invalid_value');
    const limit = intParam(params, 'limit', 7)!;
    if (limit < 1 || limit > 180)
      throw badParam('limit', "Invalid 'limit': expected 1 to 180.", 'invalid_value');
    const groups = [...params.getAll('group_by'), ...params.getAll('group_by[]')];
    const page = params.get('page');
    const from = page === null ? start : Number(page.replace(/^page_/, ''));
    if (!Number.isInteger(from) || from < start) throw badParam('page', `Invalid 'page': ${page}`);
    const entries = state.billing.list().filter((e) => e.provider === 'openai');
    const data = [];
    let s = from;
    for (; s < end && data.length < limit; s += DAY_S) {
      const until = Math.min(s + DAY_S, end);
      const inBucket = entries.filter((e) => e.at >= s * 1000 && e.at < until * 1000);
      data.push({
        object: 'bucket',
        start_time: s,
        end_time: until,
        results: results(inBucket, groups.includes('line_item'), groups.includes('project_id')),
      });
    }
    const more = s < end;
    const payload = { object: 'page', data, has_more: more, next_page: more ? `page_${s}` : null };
    return new Response(JSON.stringify(payload), { headers: okHeaders(requestId, 'application/json') });
  } catch (e) {
    return openaiError(e, requestId);
  }
}
