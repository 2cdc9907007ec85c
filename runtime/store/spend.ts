import type { Identity } from '../identity.ts';
import type { Micros } from '../money.ts';
import type { LedgerEntry, SpendDimension, SpendRow, TokenCounts } from './port.ts';
import { modelKey, NO_WORKFLOW, providerKey } from './records.ts';
import { dayKey } from './windows.ts';

/** The group an entry falls in for a spend query (`day` is the local date in the store's zone). */
export function spendKey(
  e: Pick<LedgerEntry, 'identity' | 'kind' | 'name' | 'at' | 'provider'>,
  by: SpendDimension,
  timeZone: string,
): string {
  switch (by) {
    case 'team':
    case 'env':
    case 'seat':
      return e.identity[by];
    case 'workflow':
      return workflowKey(e.identity);
    case 'model':
      return modelKey(e);
    case 'provider':
      return providerKey(e);
    case 'day':
      return dayKey(e.at, timeZone);
  }
}

export function workflowKey(identity: Identity): string {
  return identity.workflow ?? NO_WORKFLOW;
}

/** Sums spend rows by key; rows come out most expensive first, then by key. */
export class SpendTally {
  private readonly rows = new Map<string, SpendRow>();

  /** `corrected`: how many corrections of expired charges `cost` holds, and their sum. */
  add(
    key: string,
    cost: Micros,
    calls: number,
    tokens: TokenCounts,
    corrected: { count: number; cost: Micros } = { count: 0, cost: 0 },
  ): void {
    let row = this.rows.get(key);
    if (!row) {
      row = {
        key,
        cost: 0,
        calls: 0,
        tokens: { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 },
        corrections: 0,
        correctedCost: 0,
      };
      this.rows.set(key, row);
    }
    row.cost += cost;
    row.corrections += corrected.count;
    row.correctedCost += corrected.cost;
    row.calls += calls;
    row.tokens.input += tokens.input;
    row.tokens.cacheWrite5m += tokens.cacheWrite5m;
    row.tokens.cacheWrite1h += tokens.cacheWrite1h;
    row.tokens.cacheRead += tokens.cacheRead;
    row.tokens.output += tokens.output;
  }

  result(): SpendRow[] {
    return [...this.rows.values()].sort((a, b) => b.cost - a.cost || (a.key < b.key ? -1 : 1));
  }
}
