import { type Stats, unwatchFile, watchFile } from 'node:fs';
import { resolve } from 'node:path';
import type { Services } from './compose.ts';
import { ConfigError } from './config/error.ts';
import { type Config, DEFAULT_CONFIG_FILE, loadConfig } from './config/load.ts';
import { Router } from './gateway/routing.ts';
import { type EndOfLife, endOfLife, endOfLifeLine } from './pricing/lifecycle.ts';
import { PriceTable } from './pricing/pricing.ts';

/**
 * Prices and routing reload without a restart: the config file is read and validated whole, and
 * if it is valid a new PriceTable and Router replace the old ones on the Services (the call path
 * reads `rt.prices` and `rt.router` on every call, so the next call uses them). Nothing else is
 * reloaded: budgets, store, provider, operators and the rest need a restart. An invalid file
 * changes nothing; the error is logged with the field. `serve` watches the file and reloads on
 * SIGHUP (`watchConfig`); `POST /api/prices/reload` does the same on demand (`reloadPrices`).
 */

export type ReloadResult =
  | {
      ok: true;
      file: string;
      /** Models priced now (one per canonical id). */
      models: number;
      /** Price entries in the table (built in + config, every effective date). */
      entries: number;
      /** Config sections that changed but are not reloaded: they take effect at the next start. */
      restartNeeded: string[];
      endOfLife: EndOfLife[];
    }
  | { ok: false; file: string; field?: string; problems: string[] };

/** Sections compared to say what a reload left for the next start (prices and routing reload). */
const NOT_RELOADED: (keyof Config)[] = [
  'dataDir',
  'store',
  'provider',
  'budgets',
  'gateway',
  'workflowsDir',
  'workflows',
  'approvals',
  'workers',
  'mcp',
  'operators',
  'metrics',
  'reconcile',
  'logLevel',
  'rateLimits',
];

/** A section as far as it matters: a Redis URL is not a difference while the store is embedded. */
function inUse(c: Config, k: keyof Config): unknown {
  if (k === 'store' && c.store.backend === 'embedded') return { ...c.store, redisUrl: undefined };
  return c[k];
}

/** The file a reload reads: the one loaded at start, else the default in the working folder. */
export function configFileOf(rt: Services): string {
  return rt.config.file ?? resolve(DEFAULT_CONFIG_FILE);
}

/** Re-reads the config file; if valid, swaps in its prices and routing. Never throws. */
export function reloadPrices(
  rt: Services,
  opts: { path?: string; env?: NodeJS.ProcessEnv } = {},
): ReloadResult {
  const file = opts.path ?? configFileOf(rt);
  let next: Config;
  try {
    next = loadConfig({ path: file, env: opts.env });
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    const field = /^([\w.[\]-]+): /.exec(problems[0] ?? '')?.[1];
    rt.log.error('prices not reloaded: the config is invalid; the old prices and routing stay', {
      file,
      ...(field ? { field } : {}),
      problems,
    });
    return { ok: false, file, ...(field ? { field } : {}), problems };
  }
  const prices = new PriceTable(next.prices);
  const router = new Router(next.routing, prices);
  const restartNeeded = NOT_RELOADED.filter(
    (k) => JSON.stringify(inUse(rt.config, k)) !== JSON.stringify(inUse(next, k)),
  );
  rt.swapPrices(prices, router);
  rt.config.prices = next.prices;
  rt.config.routing = next.routing;
  const models = prices.current(rt.now()).length;
  const entries = prices.entries().length;
  rt.log.info('prices reloaded', {
    file,
    models,
    entries,
    reloaded: 'prices and routing only; other settings take effect at the next start',
  });
  if (restartNeeded.length) {
    rt.log.warn('config changes not applied until the next start (only prices and routing reload)', {
      file,
      sections: restartNeeded,
    });
  }
  return { ok: true, file, models, entries, restartNeeded, endOfLife: flagEndOfLife(rt) };
}

/**
 * Models the routing classes or the loaded workflows name that are retired or retire within 60
 * days: one warning each in the log; returns them (serve prints them in its start banner).
 */
export function flagEndOfLife(rt: Services, now: number = rt.now()): EndOfLife[] {
  const flagged = endOfLife(
    { classes: rt.config.routing.classes, workflows: rt.runs?.workflows().workflows },
    rt.prices,
    now,
  );
  for (const e of flagged) {
    rt.log.warn(
      e.status === 'retired'
        ? 'a configured model is past its end of life'
        : 'a configured model retires soon',
      {
        model: e.name,
        status: e.status,
        retires: e.retires,
        used_by: e.usedBy,
        ...(e.successor ? { move_to: e.successor } : {}),
        detail: endOfLifeLine(e),
      },
    );
  }
  return flagged;
}

/**
 * `serve`: reloads prices and routing when the config file changes (polled, so editors that
 * replace the file are seen too) and on SIGHUP. `close()` stops both.
 */
export function watchConfig(
  rt: Services,
  opts: { path?: string; intervalMs?: number } = {},
): { file: string; close(): void } {
  const file = opts.path ?? configFileOf(rt);
  const onChange = (curr: Stats, prev: Stats) => {
    if (curr.mtimeMs === prev.mtimeMs && curr.size === prev.size) return;
    reloadPrices(rt, { path: file });
  };
  const onHup = () => {
    rt.log.info('SIGHUP: reloading prices and routing', { file });
    reloadPrices(rt, { path: file });
  };
  watchFile(file, { interval: opts.intervalMs ?? 1000, persistent: false }, onChange);
  process.on('SIGHUP', onHup);
  return {
    file,
    close() {
      unwatchFile(file, onChange);
      process.off('SIGHUP', onHup);
    },
  };
}
