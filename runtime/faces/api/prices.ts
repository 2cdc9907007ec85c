import { Hono } from 'hono';
import type { Services } from '../../compose.ts';
import { Refusal, unknownModel } from '../../gateway/refusal.ts';
import { reloadPrices } from '../../reload.ts';
import { iso } from '../views/format.ts';
import {
  endOfLifeView,
  type MissingPriceView,
  type PricesReloadResponse,
  type PricesResponse,
  priceTableView,
  serverToolPricesView,
} from '../views/prices.ts';
import { type Env, jsonBody, MAX_REASON_CHARS, requireRole, textField } from './common.ts';

const DAY_MS = 86_400_000;
/** Refusals read back to count the unknown models of the last day (the store's largest page). */
const MISSING_SCAN = 10_000;

/**
 * Models refused as unknown (no price) in the last 24 hours and still unpriced, by calls: what
 * clients ask for that the table cannot price, each with the `prices:` entry to add.
 */
export async function missingPrices(rt: Services, now: number): Promise<MissingPriceView[]> {
  const refused = await rt.store.listLedger({
    kind: 'model',
    outcome: 'refused',
    since: now - DAY_MS,
    limit: MISSING_SCAN,
  });
  const seen = new Map<string, { calls: number; last: number }>();
  for (const e of refused) {
    if (e.code !== 'unknown_model' || rt.prices.has(e.name, now)) continue;
    const s = seen.get(e.name) ?? { calls: 0, last: 0 };
    s.calls++;
    s.last = Math.max(s.last, e.at);
    seen.set(e.name, s);
  }
  const today = new Date(now).toISOString().slice(0, 10);
  return [...seen.entries()]
    .sort(([a, x], [b, y]) => y.calls - x.calls || a.localeCompare(b))
    .map(([model, s]) => ({
      model,
      calls: s.calls,
      last_seen: iso(s.last),
      // The very text the refusal carried: one source for the entry to add.
      prices_entry: unknownModel(model, today).details.prices_entry as string,
    }));
}

/** The price table, the unknown models seen lately, end-of-life dates; reload from the config. */
export function pricesApi(rt: Services): Hono<Env> {
  const api = new Hono<Env>();

  api.get('/prices', async (c) => {
    requireRole(c, 'viewer');
    const now = rt.now();
    return c.json({
      at: iso(now),
      prices: priceTableView(rt.prices, now),
      missing: await missingPrices(rt, now),
      server_tools: serverToolPricesView(),
    } satisfies PricesResponse);
  });

  // Re-reads the config file this process loaded and swaps in its prices and routing (only
  // those): what the file watcher and SIGHUP do, on demand (useful on every replica).
  api.post('/prices/reload', async (c) => {
    const op = requireRole(c, 'admin');
    // The body is optional: `{reason}` goes to the audit entry.
    const body: Record<string, unknown> = (await c.req.text()).trim() ? await jsonBody(c) : {};
    textField(body, 'reason', MAX_REASON_CHARS);
    const before = rt.prices.current(rt.now()).length;
    const result = reloadPrices(rt);
    if (!result.ok) {
      throw new Refusal(
        'invalid_request',
        `${result.file}: invalid configuration, nothing reloaded (the old prices and routing stay): ${result.problems.join('; ')}`,
        { ...(result.field ? { field: result.field } : {}), file: result.file, problems: result.problems },
      );
    }
    const reason = textField(body, 'reason', MAX_REASON_CHARS)?.trim() || 'prices reload';
    await rt.store.appendAudit({
      actor: op.name,
      action: 'prices.reload',
      target: 'prices',
      before: { models: before },
      after: { models: result.models, entries: result.entries, file: result.file },
      reason,
    });
    return c.json({
      reloaded: 'prices and routing',
      file: result.file,
      models: result.models,
      entries: result.entries,
      restart_needed: result.restartNeeded,
      end_of_life: result.endOfLife.map(endOfLifeView),
    } satisfies PricesReloadResponse);
  });

  return api;
}
