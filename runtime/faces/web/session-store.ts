import type { Services } from '../../compose.ts';

// The port (and its records) is the backend's: runtime/backends/ports.ts; both kinds implement it
// in runtime/backends/{embedded,redis}/web-sessions.ts.
export type { LoginFailures, SessionRecord, WebSessionStore } from '../../backends/ports.ts';

/** The inbox's session store: the runtime's backend's. */
export function openWebSessionStore(rt: Services) {
  return rt.backend.webSessions;
}
