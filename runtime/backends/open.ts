import type { Config } from '../config/load.ts';
import type { Logger } from '../log.ts';
import { openEmbeddedBackend } from './embedded/open.ts';
import type { Backend } from './ports.ts';

type Opener = (config: Config, opts: { now: () => number; log: Logger }) => Backend | Promise<Backend>;

/**
 * The kinds of backend, one line each. Redis is loaded only when chosen, so the embedded default
 * never loads ioredis or BullMQ. A third kind is one folder beside these two and one line here.
 */
const KINDS: Record<Config['store']['backend'], Opener> = {
  embedded: openEmbeddedBackend,
  redis: async (config, opts) => (await import('./redis/open.ts')).openRedisBackend(config, opts),
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
  return KINDS[config.store.backend](config, { now: opts.now ?? Date.now, log: opts.log });
}
