import { formatUsd } from '../../money.ts';
import type { LedgerEntry } from '../../store/port.ts';
import { type IsoTime, iso } from './format.ts';

/** A ledger entry as `/api/ledger` serves it: the record (µ$) with its amounts also in dollars. */
export type LedgerView = Omit<LedgerEntry, 'at' | 'correctedAt'> & {
  at: IsoTime;
  /** `corrected` entries: when reconciliation wrote the correction (`at` is the charge's time). */
  correctedAt?: IsoTime;
  reserved_usd: string;
  cost_usd: string;
  overrun_usd: string;
};

export function ledgerView(entry: LedgerEntry): LedgerView {
  const { correctedAt: _c, ...e } = entry;
  return {
    ...e,
    at: iso(e.at),
    ...(entry.correctedAt !== undefined ? { correctedAt: iso(entry.correctedAt) } : {}),
    reserved_usd: formatUsd(e.reserved),
    cost_usd: formatUsd(e.cost),
    overrun_usd: formatUsd(e.overrun),
  };
}

/** `GET /api/ledger`. */
export interface LedgerResponse {
  entries: LedgerView[];
}
