import type { Reconciliation } from './compare.ts';

/** Stored reconciliation results, newest first; in the money store's backend (runtime/backends). */
export interface ReconStore {
  save(r: Reconciliation): Promise<void>;
  get(id: string): Promise<Reconciliation | undefined>;
  list(filter: {
    day?: string;
    trigger?: Reconciliation['trigger'];
    limit: number;
  }): Promise<Reconciliation[]>;
  close(): Promise<void>;
}
