/**
 * The billing record in the shapes of Anthropic's Admin API (Usage and Cost API):
 *
 * - `GET /v1/organizations/cost_report` — daily buckets; `amount` is in cents as a decimal
 *   string ("123.45" USD = $1.23); with `group_by[]=description` one row per model, token type
 *   and context window, `token_type` ∈ uncached_input_tokens, output_tokens,
 *   cache_read_input_tokens, cache_creation.ephemeral_5m_input_tokens,
 *   cache_creation.ephemeral_1h_input_tokens.
 * - `GET /v1/organizations/usage_report/messages` — `1d`/`1h`/`1m` buckets of
 *   uncached_input_tokens, cache_creation {ephemeral_1h_input_tokens, ephemeral_5m_input_tokens},
 *   cache_read_input_tokens, output_tokens, optionally grouped by model, api_key_id, context_window.
 *
 * Web search fees appear in the cost report as rows with `cost_type: "web_search"` (the cost
 * report's documented cost types are tokens, web_search and code_execution); batch calls carry
 * `service_tier: "batch"`. The web-search row's `description` wording is the emulator's own.
 *
 * Both answer `{ data: [{ starting_at, ending_at, results }], has_more, next_page }`.
 */
import type { Rollup } from './billing.ts';
import { MODELS, type TokenClass } from './catalog.ts';
import { invalid } from './errors.ts';

type Query = (name: string) => string[];

const WIDTH_MS = { '1d': 86_400_000, '1h': 3_600_000, '1m': 60_000 } as const;
type Width = keyof typeof WIDTH_MS;
const LIMITS: Record<Width, { def: number; max: number }> = {
  '1d': { def: 7, max: 31 },
  '1h': { def: 24, max: 168 },
  '1m': { def: 60, max: 1440 },
};

const TOKEN_TYPES: Record<TokenClass, { key: string; label: string }> = {
  input: { key: 'uncached_input_tokens', label: 'Input Tokens' },
  cacheWrite5m: { key: 'cache_creation.ephemeral_5m_input_tokens', label: '5m Cache Write Input Tokens' },
  cacheWrite1h: { key: 'cache_creation.ephemeral_1h_input_tokens', label: '1h Cache Write Input Tokens' },
  cacheRead: { key: 'cache_read_input_tokens', label: 'Cache Read Input Tokens' },
  output: { key: 'output_tokens', label: 'Output Tokens' },
};
const DISPLAY = new Map(MODELS.map((m) => [m.id, m.displayName]));

/** µ$ as cents in a decimal string, exact: 300_000 µ$ → "30.00", 3 µ$ → "0.0003". */
export function microsToCents(micros: number): string {
  const whole = Math.floor(micros / 10_000);
  let frac = String(micros % 10_000).padStart(4, '0');
  while (frac.length > 2 && frac.endsWith('0')) frac = frac.slice(0, -1);
  return `${whole}.${frac}`;
}

interface Buckets {
  starts: number[];
  width: number;
  hasMore: boolean;
  nextPage: string | null;
}

function parseTime(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw invalid(`${name}: Input should be a valid datetime (RFC 3339)`);
  return t;
}

function buckets(q: Query, widths: readonly Width[], now: number): Buckets {
  const width = (q('bucket_width')[0] ?? '1d') as Width;
  if (!widths.includes(width))
    throw invalid(`bucket_width: Input should be ${widths.map((w) => `'${w}'`).join(' or ')}`);
  const page = q('page')[0];
  const fromPage = page
    ? Date.parse(Buffer.from(page.replace(/^page_/, ''), 'base64url').toString())
    : undefined;
  const start = fromPage ?? parseTime('starting_at', q('starting_at')[0]);
  if (start === undefined || Number.isNaN(start)) throw invalid('starting_at: Field required');
  const w = WIDTH_MS[width];
  const end = parseTime('ending_at', q('ending_at')[0]) ?? Math.ceil((now + 1) / w) * w;
  const { def, max } = LIMITS[width];
  const limit = q('limit')[0] === undefined ? def : Number(q('limit')[0]);
  if (!Number.isInteger(limit) || limit < 1 || limit > max) {
    throw invalid(`limit: Input should be an integer between 1 and ${max}`);
  }
  const starts: number[] = [];
  let s = Math.floor(start / w) * w;
  while (s < end && starts.length < limit) {
    starts.push(s);
    s += w;
  }
  const hasMore = s < end;
  return {
    starts,
    width: w,
    hasMore,
    nextPage: hasMore ? `page_${Buffer.from(new Date(s).toISOString()).toString('base64url')}` : null,
  };
}

const iso = (t: number) => new Date(t).toISOString().replace('.000Z', 'Z');
const groupsOf = (q: Query) => [...q('group_by[]'), ...q('group_by')];

function bucketed<T>(b: Buckets, entries: readonly Rollup[], rows: (inBucket: Rollup[]) => T[]) {
  const data = b.starts.map((s) => {
    const inBucket = entries.filter((e) => e.at >= s && e.at < s + b.width);
    return {
      starting_at: iso(s),
      ending_at: iso(s + b.width),
      results: inBucket.length ? rows(inBucket) : [],
    };
  });
  return { data, has_more: b.hasMore, next_page: b.nextPage };
}

/** `GET /v1/organizations/cost_report`. `q(name)` returns every value of a query parameter. */
export function costReport(entries: readonly Rollup[], q: Query, now: number) {
  const groups = groupsOf(q);
  for (const g of groups) {
    if (g !== 'description' && g !== 'workspace_id')
      throw invalid(`group_by: Input should be 'workspace_id' or 'description'`);
  }
  const byDescription = groups.includes('description');
  return bucketed(buckets(q, ['1d'], now), entries, (inBucket) => {
    interface Sum {
      micros: number;
      model: string | null;
      tokenType: TokenClass | null;
      window: string | null;
      tier: string | null;
      webSearch: boolean;
    }
    const sums = new Map<string, Sum>();
    const add = (key: string, fresh: Omit<Sum, 'micros'>, micros: number) => {
      const row = sums.get(key) ?? { ...fresh, micros: 0 };
      row.micros += micros;
      sums.set(key, row);
    };
    for (const e of inBucket) {
      const tier = byDescription ? e.serviceTier : null;
      for (const k of Object.keys(TOKEN_TYPES) as TokenClass[]) {
        const micros = e.costByClass[k];
        if (byDescription && e.usage[k] === 0 && micros === 0) continue;
        const window = byDescription ? e.window : null;
        const key = byDescription ? `${e.model}|${k}|${window}|${tier}` : '';
        const model = byDescription ? e.model : null;
        add(key, { model, tokenType: byDescription ? k : null, window, tier, webSearch: false }, micros);
      }
      // Web search fees ($10 / 1,000 searches) are a cost of their own (cost_type "web_search").
      if (e.webSearchMicros > 0) {
        const key = byDescription ? `${e.model}|web_search` : '';
        const model = byDescription ? e.model : null;
        add(
          key,
          { model, tokenType: null, window: null, tier: null, webSearch: byDescription },
          e.webSearchMicros,
        );
      }
    }
    return [...sums.values()].map((r) => ({
      currency: 'USD',
      amount: microsToCents(r.micros),
      workspace_id: null,
      description: r.webSearch
        ? `${DISPLAY.get(r.model ?? '') ?? r.model} Usage - Web Search`
        : r.model && r.tokenType
          ? `${DISPLAY.get(r.model) ?? r.model} Usage - ${TOKEN_TYPES[r.tokenType].label}`
          : null,
      cost_type: r.webSearch ? 'web_search' : byDescription ? 'tokens' : null,
      context_window: r.window,
      model: r.model,
      service_tier: r.tier,
      token_type: r.tokenType ? TOKEN_TYPES[r.tokenType].key : null,
    }));
  });
}

const USAGE_GROUPS = ['model', 'api_key_id', 'context_window', 'service_tier', 'workspace_id'] as const;

/** `GET /v1/organizations/usage_report/messages`. */
export function usageReport(entries: readonly Rollup[], q: Query, now: number) {
  const groups = groupsOf(q);
  for (const g of groups) {
    if (!(USAGE_GROUPS as readonly string[]).includes(g)) {
      throw invalid(`group_by: Input should be ${USAGE_GROUPS.map((u) => `'${u}'`).join(', ')}`);
    }
  }
  const models = new Set([...q('models[]'), ...q('models')]);
  const keys = new Set([...q('api_key_ids[]'), ...q('api_key_ids')]);
  const filtered = entries.filter(
    (e) => (!models.size || models.has(e.model)) && (!keys.size || keys.has(e.apiKey)),
  );
  const has = (g: (typeof USAGE_GROUPS)[number]) => groups.includes(g);
  return bucketed(buckets(q, ['1d', '1h', '1m'], now), filtered, (inBucket) => {
    const rows = new Map<string, ReturnType<typeof emptyRow>>();
    for (const e of inBucket) {
      const model = has('model') ? e.model : null;
      const apiKey = has('api_key_id') ? e.apiKey : null;
      const window = has('context_window') ? e.window : null;
      const tier = has('service_tier') ? e.serviceTier : null;
      const key = `${model}|${apiKey}|${window}|${tier}`;
      const row = rows.get(key) ?? emptyRow(model, apiKey, window, tier);
      row.server_tool_use.web_search_requests += e.webSearchRequests;
      row.uncached_input_tokens += e.usage.input;
      row.cache_creation.ephemeral_5m_input_tokens += e.usage.cacheWrite5m;
      row.cache_creation.ephemeral_1h_input_tokens += e.usage.cacheWrite1h;
      row.cache_read_input_tokens += e.usage.cacheRead;
      row.output_tokens += e.usage.output;
      rows.set(key, row);
    }
    return [...rows.values()];
  });
}

function emptyRow(model: string | null, apiKey: string | null, window: string | null, tier: string | null) {
  return {
    uncached_input_tokens: 0,
    cache_creation: { ephemeral_1h_input_tokens: 0, ephemeral_5m_input_tokens: 0 },
    cache_read_input_tokens: 0,
    output_tokens: 0,
    server_tool_use: { web_search_requests: 0 },
    api_key_id: apiKey,
    workspace_id: null,
    model,
    service_tier: tier,
    context_window: window,
  };
}
