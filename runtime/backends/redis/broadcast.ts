import type { Broadcast } from '../../broadcast.ts';
import type { Logger } from '../../log.ts';
import type { RedisClient } from './connection.ts';

/** `cmd` publishes; `sub` is a connection in subscriber mode (it may carry other channels). */
export function redisBroadcast(cmd: RedisClient, sub: RedisClient, prefix: string, log: Logger): Broadcast {
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
