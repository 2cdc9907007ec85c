/**
 * Messages every process sharing the Redis backend hears (Redis pub/sub under the store prefix):
 * how a change one process makes — a run changing state on a worker — reaches the live views
 * (`/api/events`, MCP subscriptions) of every other. Best effort by design: a message published
 * while a process is disconnected is not replayed; views that must be exact re-read the store.
 * The embedded backend is one process: its broadcast is an in-process one (runtime/backends).
 */
export interface Broadcast {
  /** Sends to every subscribed process, this one included; errors are logged, never thrown. */
  publish(topic: string, message: string): void;
  /** Calls `fn` for each message on `topic`; resolves once subscribed, with the unsubscribe. */
  subscribe(topic: string, fn: (message: string) => void): Promise<() => void>;
}
