import { Hono } from 'hono';
import { reloadPrices } from '../../../config/reload.ts';
import { Refusal, unknownModel } from '../../../gateway/refusal.ts';
import { formatUsd } from '../../../money.ts';
import { endOfLifeLine, lifecycleOf } from '../../../pricing/lifecycle.ts';
import { type PriceEntry, type Rates, SERVER_TOOL_PRICES } from '../../../pricing/prices.ts';
import type { Runtime } from '../../../runtime.ts';
import { type Env, iso, jsonBody, MAX_REASON_CHARS, requireRole, textField } from './common.ts';

const DAY_MS = 86_400_000;
/** Refusals read back to count the unknown models of the last day (the store's largest page). */
const MISSING_SCAN = 10_000;

function ratesJson(r: Rates) {
  return {
    input: r.input,
    cacheWrite5m: r.cacheWrite5m,
    cacheWrite1h: r.cacheWrite1h,
    cacheRead: r.cacheRead,
    output: r.output,
  };
}

/**
 * One price row. `effective` says which row of a model's effective-dated history it is: the one
 * in force now (`current`), an older one (`past`) or one from a later date (`future`).
 */
function priceJson(e: PriceEntry, effective: 'current' | 'past' | 'future', now: number) {
  return {
    model: e.model,
    aliases: e.aliases,
    from: e.from,
    effective,
    display_name: e.displayName ?? e.model,
    released: e.released ?? null,
    retires: e.retires ?? null,
    status: lifecycleOf(e, now),
    rates_usd_per_mtok: ratesJson(e.rates),
    ...(e.longContext
      ? {
          long_context: {
            above_prompt_tokens: e.longContext.threshold,
            rates_usd_per_mtok: ratesJson(e.longContext.rates),
          },
        }
      : {}),
    ...(e.fast ? { fast: { rates_usd_per_mtok: ratesJson(e.fast) } } : {}),
    max_output_tokens: e.maxOutputTokens,
    us_only: e.usOnly === true,
  };
}

/** The price table as the API shows it: every model's rows (the current one first), newest models first. */
export function pricesJson(rt: Runtime, now: number) {
  const current = new Set(rt.prices.current(now));
  const byModel = new Map<string, PriceEntry[]>();
  for (const e of rt.prices.entries()) byModel.set(e.model, [...(byModel.get(e.model) ?? []), e]);
  const released = (rows: PriceEntry[]) => {
    const e = rows.find((x) => current.has(x)) ?? rows[0]!;
    return Date.parse(`${e.released ?? e.from}T00:00:00Z`);
  };
  const from = (e: PriceEntry) => Date.parse(`${e.from}T00:00:00Z`);
  return [...byModel.entries()]
    .sort(([a, ra], [b, rb]) => released(rb) - released(ra) || a.localeCompare(b))
    .flatMap(([, rows]) =>
      rows
        .sort((a, b) => Number(current.has(b)) - Number(current.has(a)) || from(b) - from(a))
        .map((e) => priceJson(e, current.has(e) ? 'current' : from(e) > now ? 'future' : 'past', now)),
    );
}

/**
 * Models refused as unknown (no price) in the last 24 hours and still unpriced, by calls: what
 * clients ask for that the table cannot price, each with the `prices:` entry to add.
 */
export async function missingPrices(rt: Runtime, now: number) {
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
export function pricesApi(rt: Runtime): Hono<Env> {
  const api = new Hono<Env>();

  api.get('/prices', async (c) => {
    requireRole(c, 'viewer');
    const now = rt.now();
    return c.json({
      at: iso(now),
      prices: pricesJson(rt, now),
      missing: await missingPrices(rt, now),
      server_tools: Object.fromEntries(
        Object.entries(SERVER_TOOL_PRICES).map(([tool, micros]) => [
          tool,
          { usd_per_use: formatUsd(micros), micros_per_use: micros },
        ]),
      ),
    });
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
      end_of_life: result.endOfLife.map((e) => ({
        model: e.name,
        status: e.status,
        retires: e.retires,
        used_by: e.usedBy,
        move_to: e.successor ?? null,
        summary: endOfLifeLine(e),
      })),
    });
  });

  return api;
}
