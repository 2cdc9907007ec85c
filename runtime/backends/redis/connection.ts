import { Redis } from 'ioredis';

/**
 * How the Redis backend connects, written once. Commands (keys, alarms, runs, sessions,
 * reconciliations, broadcasts) share one connection that gives up on a command after two retries,
 * so a caller fails closed instead of hanging; BullMQ opens (and closes) its own connections from
 * `bullConnection`, which must retry forever (`maxRetriesPerRequest: null`, BullMQ's requirement).
 * The money store keeps its own fail-fast connection (money/store.ts).
 */
export const COMMAND_OPTIONS = { maxRetriesPerRequest: 2, enableOfflineQueue: true, lazyConnect: false };

export function commandConnection(url: string): Redis {
  return new Redis(url, COMMAND_OPTIONS);
}

/** The BullMQ connection config: a spec, not a connection, since each queue and worker opens its own. */
export function bullConnection(url: string): { url: string; maxRetriesPerRequest: null } {
  return { url, maxRetriesPerRequest: null };
}

/** BullMQ's keys of this deployment: `${prefix}bull:<queue>:*`. */
export function bullPrefix(prefix: string): string {
  return `${prefix}bull`;
}
