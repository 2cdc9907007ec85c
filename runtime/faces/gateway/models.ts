import type { Services } from '../../compose.ts';
import { Refusal } from '../../gateway/refusal.ts';
import type { Identity } from '../../identity.ts';
import type { PriceEntry } from '../../pricing/prices.ts';

/**
 * `GET /v1/models` and `GET /v1/models/{id}` in the Anthropic shape: the models this identity
 * may call — priced, not past their end of life, and inside the classes its routing rule allows
 * (every priced model when no rule matches). Newest first, paged with `limit`, `after_id`,
 * `before_id` like the API.
 */
export function listModels(rt: Services, identity: Identity, path: string, url = ''): unknown {
  const now = rt.now();
  const models = rt.prices
    .current(now)
    // Anthropic's list only: OpenAI's models are the OpenAI face's.
    .filter((e) => e.provider === undefined && !retired(e, now) && rt.router.allows(e.model, identity))
    .sort((a, b) => released(b) - released(a) || a.model.localeCompare(b.model));
  if (path.startsWith('/v1/models/')) {
    const id = decodeURIComponent(path.slice('/v1/models/'.length));
    const entry = rt.prices.lookup(id, now);
    if (!entry || !models.includes(entry)) {
      throw new Refusal('not_found', `not_found: model ${JSON.stringify(id)} is not available to this key`, {
        model: id,
      });
    }
    return view(entry);
  }
  const q = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
  const limit = Math.min(1000, Math.max(1, Number(q.get('limit') ?? 20) || 20));
  let page = models;
  const after = q.get('after_id');
  const before = q.get('before_id');
  if (after) page = page.slice(page.findIndex((e) => e.model === after) + 1);
  if (before) {
    const i = page.findIndex((e) => e.model === before);
    page = i === -1 ? page : page.slice(Math.max(0, i - limit), i);
  }
  const data = page.slice(0, limit).map(view);
  return {
    data,
    has_more: page.length > limit,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
  };
}

function view(e: PriceEntry) {
  return {
    type: 'model' as const,
    id: e.model,
    display_name: e.displayName ?? e.model,
    created_at: `${e.released ?? e.from}T00:00:00Z`,
    max_tokens: e.maxOutputTokens,
  };
}

function released(e: PriceEntry): number {
  return Date.parse(`${e.released ?? e.from}T00:00:00Z`);
}

export function retired(e: PriceEntry, now: number): boolean {
  return e.retires !== undefined && Date.parse(`${e.retires}T00:00:00Z`) <= now;
}

/**
 * `GET /v1/models` for the OpenAI SDK (`{object:'list', data:[{id, object:'model', created,
 * owned_by}]}`): every model the key may call, OpenAI's and Anthropic's (a Claude model through
 * the OpenAI format is translated), and `/v1/models/{id}` for one.
 */
export function listOpenAIModels(rt: Services, identity: Identity, path: string): unknown {
  const now = rt.now();
  const models = rt.prices
    .current(now)
    .filter((e) => !retired(e, now) && rt.router.allows(e.model, identity))
    .sort((a, b) => released(b) - released(a) || a.model.localeCompare(b.model));
  const one = (e: PriceEntry) => ({
    id: e.model,
    object: 'model' as const,
    created: Math.floor(released(e) / 1000),
    owned_by: e.provider === 'openai' ? 'openai' : 'anthropic',
  });
  if (path.startsWith('/v1/models/')) {
    const id = decodeURIComponent(path.slice('/v1/models/'.length));
    const entry = models.find((e) => e.model === id || e.aliases.includes(id));
    if (!entry) {
      throw new Refusal('not_found', `not_found: model ${JSON.stringify(id)} is not available to this key`, {
        model: id,
      });
    }
    return one(entry);
  }
  return { object: 'list', data: models.map(one) };
}
