import type { Broadcast } from '../../broadcast.ts';

/**
 * One process hears itself: `publish` calls this process's listeners at once (in order, before it
 * returns), as the Redis broadcast would call them a moment later. A listener that throws does not
 * keep the message from the others.
 */
export function localBroadcast(): Broadcast {
  const listeners = new Map<string, Set<(message: string) => void>>();
  return {
    publish(topic, message) {
      for (const fn of [...(listeners.get(topic) ?? [])]) {
        try {
          fn(message);
        } catch {
          // A failing listener must not fail the publisher, nor the other listeners.
        }
      }
    },
    async subscribe(topic, fn) {
      let set = listeners.get(topic);
      if (!set) {
        set = new Set();
        listeners.set(topic, set);
      }
      set.add(fn);
      return () => {
        set.delete(fn);
        if (set.size === 0 && listeners.get(topic) === set) listeners.delete(topic);
      };
    },
  };
}
