import type { Micros } from '../money.ts';
import type { PriceEntry } from '../pricing/prices.ts';
import type { PriceOptions, PriceTable, ServerToolUses } from '../pricing/pricing.ts';
import type { BodyFacts, MessagesBody } from './messages.ts';
import { invalidRequest, unknownModel } from './refusal.ts';
import type { Billed } from './usage.ts';

/**
 * What one Messages request can cost, read off the fields that change the price — everything
 * else is forwarded untouched. A field that changes the price in a way the gateway cannot bound
 * (a server tool with no `max_uses`, a tool type it does not know, a speed the model does not
 * offer) is refused with the field named: never silently underpriced.
 */
export interface CallCost {
  options: PriceOptions;
  /** Server-tool uses the request allows at most (each priced per use). */
  serverTools: ServerToolUses;
  /** Tokens the server tools can add to the call beyond the prompt (fetched pages, search results). */
  toolInputTokens: number;
  /** µ$ outside the request's own model: advisor sub-calls at their model's price. */
  extra: Micros;
}

/** Search results a search adds to the context, at most (the API returns up to ~10 results). */
const SEARCH_RESULT_TOKENS = 32_000;
/** A fetch with no `max_content_tokens` is counted at this many input tokens. */
const FETCH_DEFAULT_TOKENS = 100_000;

/** Tool types that are billed as tokens only (client tools, and server tools without a fee). */
const TOKENS_ONLY =
  /^(custom|bash_|text_editor_|computer_|memory_|tool_search_tool_|mcp_toolset|browser_toolset_|computer_toolset_)/;

export function callCost(
  prices: PriceTable,
  body: MessagesBody,
  model: string,
  entry: PriceEntry,
  facts: BodyFacts,
  at: number,
  orgGeo: 'global' | 'us',
): CallCost {
  const options: PriceOptions = {};
  const speed = body.speed;
  if (speed !== undefined && speed !== 'standard') {
    if (speed !== 'fast')
      throw invalidRequest('speed', `expected "standard" or "fast", got ${JSON.stringify(speed)}`);
    if (!entry.fast) {
      throw invalidRequest(
        'speed',
        `${model} has no fast mode price; the call is refused rather than underpriced`,
      );
    }
    options.fast = true;
  }
  const geo = body.inference_geo ?? (entry.usOnly ? orgGeo : undefined);
  if (geo !== undefined && geo !== 'global') {
    if (geo !== 'us') {
      throw invalidRequest(
        'inference_geo',
        `expected "global" or "us", got ${JSON.stringify(geo)}: no price is known for it`,
      );
    }
    options.usOnly = true;
  }
  const serverTools: ServerToolUses = {};
  let toolInputTokens = 0;
  let extra = 0;
  const tools = (body.tools ?? []) as Array<Record<string, unknown> | null>;
  const modernSearch = tools.some((t) => /^(web_search|web_fetch)_2026/.test(String(t?.type ?? '')));
  tools.forEach((t, i) => {
    const type = t?.type;
    if (type === undefined || type === null || typeof type !== 'string' || TOKENS_ONLY.test(type)) return;
    const field = `tools.${i}`;
    const uses = boundedUses(t!, field, type);
    if (type.startsWith('web_search_')) {
      serverTools.webSearch = (serverTools.webSearch ?? 0) + uses;
      toolInputTokens += uses * SEARCH_RESULT_TOKENS;
    } else if (type.startsWith('web_fetch_')) {
      const per = t!.max_content_tokens;
      toolInputTokens += uses * (typeof per === 'number' && per > 0 ? per : FETCH_DEFAULT_TOKENS);
    } else if (type.startsWith('code_execution_')) {
      if (!modernSearch) serverTools.codeExecution = (serverTools.codeExecution ?? 0) + uses;
    } else if (type.startsWith('advisor_')) {
      const advisor = t!.model;
      if (typeof advisor !== 'string') throw invalidRequest(`${field}.model`, 'required: the advisor model');
      const a = prices.lookup(advisor, at);
      if (!a) throw unknownModel(advisor);
      const out = typeof t!.max_tokens === 'number' ? t!.max_tokens : a.maxOutputTokens;
      extra += uses * prices.worstCase(advisor, facts.inputTokens, out, at, 'none', options);
    } else {
      throw invalidRequest(
        `${field}.type`,
        `server tool ${JSON.stringify(type)} is not known to the gateway, so its cost cannot be bounded and the call is refused`,
      );
    }
  });
  return { options, serverTools, toolInputTokens, extra };
}

function boundedUses(t: Record<string, unknown>, field: string, type: string): number {
  const n = t.max_uses;
  if (typeof n === 'number' && Number.isInteger(n) && n > 0) return n;
  throw invalidRequest(
    `${field}.max_uses`,
    `required by the gateway for ${type}: it is billed per use, and without max_uses its cost has no bound`,
  );
}

/** The call's worst case with at most `maxTokens` output tokens. */
export function worstCase(
  prices: PriceTable,
  model: string,
  facts: BodyFacts,
  cost: CallCost,
  maxTokens: number,
  at: number,
): Micros {
  return (
    prices.worstCase(
      model,
      facts.inputTokens + cost.toolInputTokens,
      maxTokens,
      at,
      facts.writes,
      cost.options,
      cost.serverTools,
    ) + cost.extra
  );
}

/**
 * The largest max_tokens (at least `floor`, below `requested`) whose worst case fits in `room`
 * µ$, or undefined when not even the floor fits. Binary search: the worst case grows with it.
 */
export function fitMaxTokens(
  worst: (maxTokens: number) => Micros,
  room: Micros,
  requested: number,
  floor: number,
): number | undefined {
  if (floor >= requested || worst(floor) > room) return undefined;
  let lo = floor;
  let hi = requested - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (worst(mid) <= room) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The real cost of a call from what the provider reported, each part at its own model's price. */
export function actualCost(
  prices: PriceTable,
  model: string,
  billed: Billed,
  at: number,
  pricing: Pick<PriceOptions, 'provider' | 'regional'> = {},
): Micros {
  const options = Object.assign({}, billed.options, pricing);
  const serverTools = billed.serverTools;
  if (!billed.parts)
    return prices.cost(model, { ...billed.tokens, ...(serverTools ? { serverTools } : {}) }, at, options);
  let total = prices.cost(
    model,
    {
      input: 0,
      cacheWrite5m: 0,
      cacheWrite1h: 0,
      cacheRead: 0,
      output: 0,
      ...(serverTools ? { serverTools } : {}),
    },
    at,
    options,
  );
  for (const p of billed.parts) total += prices.cost(p.model ?? model, p.tokens, at, options);
  return total;
}
