import { formatUsd } from '../../money.ts';
import type { LedgerEntry } from '../../store/port.ts';
import { type IsoTime, iso } from './format.ts';

/** A ledger entry as `/api/ledger` serves it: the record (µ$) with its amounts also in dollars. */
export type LedgerView = Omit<LedgerEntry, 'at'> & {
  at: IsoTime;
  reserved_usd: string;
  cost_usd: string;
  overrun_usd: string;
};

export function ledgerView(e: LedgerEntry): LedgerView {
  return {
    ...e,
    at: iso(e.at),
    reserved_usd: formatUsd(e.reserved),
    cost_usd: formatUsd(e.cost),
    overrun_usd: formatUsd(e.overrun),
  };
}

/** `GET /api/ledger`. */
export interface LedgerResponse {
  entries: LedgerView[];
}
