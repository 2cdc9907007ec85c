import type { Config } from '../config/load.ts';
import type { Logger } from '../log.ts';
import { openEmbeddedBackend } from './embedded/open.ts';
import type { Backend } from './ports.ts';

interface Kind {
  open(config: Config, opts: { now: () => number; log: Logger }): Backend | Promise<Backend>;
  /** Throws a one-line error saying what to do when the backend cannot be reached (CLI start-up). */
  reach?(store: Pick<Config['store'], 'redisUrl'>, timeoutMs: number): Promise<void>;
}

/**
 * The kinds of backend, one line each. Redis is loaded only when chosen, so the embedded default
 * never loads ioredis or BullMQ. A third kind is one folder beside these two and one line here.
 */
const KINDS: Record<Config['store']['backend'], Kind> = {
  embedded: { open: openEmbeddedBackend },
  redis: {
    open: async (config, opts) => (await import('./redis/open.ts')).openRedisBackend(config, opts),
    reach: async (store, ms) => (await import('./redis/reach.ts')).reachRedis(store.redisUrl!, ms),
  },
};

/**
 * Opens the configured backend (`store.backend`): the one place that chooses. Embedded (the
 * default) is one SQLite file in the data folder; Redis scales out over processes.
 *
 * @example const backend = await openBackend(config, { log }); // … await backend.close();
 */
export async function openBackend(
  config: Config,
  opts: { now?: () => number; log: Logger },
): Promise<Backend> {
  return KINDS[config.store.backend].open(config, { now: opts.now ?? Date.now, log: opts.log });
}

/** Checks that the backend answers before anything is opened on it (embedded: nothing to reach). */
export async function reachBackend(
  store: Pick<Config['store'], 'backend' | 'redisUrl'>,
  timeoutMs = 5_000,
): Promise<void> {
  await KINDS[store.backend].reach?.(store, timeoutMs);
}
