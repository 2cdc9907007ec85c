import type { Identity } from '../identity.ts';
import type { Reservation } from './port.ts';

/**
 * Message Batches between their creation and their results: which reservation holds each batch's
 * worst case, and the model each request was admitted for. Kept in the backend (embedded: a table
 * in chokepoint.db; Redis: a hash under the prefix) so a restarted server, or another replica,
 * that reads a batch's results settles each request from its real usage instead of leaving the
 * batch to expire at its worst case.
 */
export interface OpenBatch {
  /** The provider's batch id (`msgbatch_…`). */
  id: string;
  identity: Identity;
  reservation: Reservation;
  /** custom_id → the model it was admitted for (after routing). */
  models: Record<string, string>;
}

export interface BatchStore {
  /** Records a batch the provider accepted (replaces one with the same id). */
  put(b: OpenBatch): Promise<void>;
  get(id: string): Promise<OpenBatch | undefined>;
  /** Every batch not yet settled, for the poller of a process that starts. */
  list(): Promise<OpenBatch[]>;
  /** Forgets a batch once its reservation is closed. */
  delete(id: string): Promise<void>;
  close(): Promise<void>;
}
