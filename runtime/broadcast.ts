import type { Redis } from 'ioredis';
import type { Logger } from './log.ts';

/**
 * Messages every process sharing the Redis backend hears (Redis pub/sub under the store prefix):
 * how a change one process makes — a run changing state on a worker — reaches the live views
 * (`/api/events`, MCP subscriptions) of every other. Best effort by design: a message published
 * while a process is disconnected is not replayed; views that must be exact re-read the store.
 * The embedded backend is one process and has none.
 */
export interface Broadcast {
  /** Sends to every subscribed process, this one included; errors are logged, never thrown. */
  publish(topic: string, message: string): void;
  /** Calls `fn` for each message on `topic`; resolves once subscribed, with the unsubscribe. */
  subscribe(topic: string, fn: (message: string) => void): Promise<() => void>;
}

/** `cmd` publishes; `sub` is a connection in subscriber mode (it may carry other channels). */
export function redisBroadcast(cmd: Redis, sub: Redis, prefix: string, log: Logger): Broadcast {
  const channel = (topic: string) => `${prefix}:bc:${topic}`;
  // One Redis subscription per channel, however many listeners share it in this process.
  const listeners = new Map<string, Set<(message: string) => void>>();
  const subscribed = new Map<string, Promise<unknown>>();
  sub.on('message', (from: string, message: string) => {
    for (const fn of listeners.get(from) ?? []) fn(message);
  });
  return {
    publish(topic, message) {
      cmd
        .publish(channel(topic), message)
        .catch((err: Error) => log.warn('broadcast failed', { topic, error: err.message }));
    },
    async subscribe(topic, fn) {
      const ch = channel(topic);
      let set = listeners.get(ch);
      if (!set) {
        set = new Set();
        listeners.set(ch, set);
      }
      set.add(fn);
      if (!subscribed.has(ch)) subscribed.set(ch, sub.subscribe(ch));
      await subscribed.get(ch);
      return () => {
        set.delete(fn);
        if (set.size === 0 && listeners.get(ch) === set) {
          listeners.delete(ch);
          subscribed.delete(ch);
          void sub.unsubscribe(ch).catch(() => {});
        }
      };
    },
  };
}
