import { emulatorOf } from '../../adapters/providers.ts';
import type { CorrectionSummary } from '../reconcile/compare.ts';
import { dayRange } from '../reconcile/report.ts';
import {
  emulatorBill,
  parseRequestCsv,
  planCorrections,
  REMOTE_SKEW_MS,
  type RequestBill,
} from '../reconcile/requests.ts';
import type { Runtime } from '../runtime.ts';
import type { LedgerEntry, MoneyStore } from '../store/port.ts';

/** Thrown when the emulator's per-request record cannot be read. */
export class RequestBillError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestBillError';
  }
}

/**
 * The per-request figures: the CSV handed in, else the emulator's billing record when the provider
 * is the emulator, else none (the day's expired charges stand).
 */
export async function requestBill(rt: Runtime, csv: string | undefined): Promise<RequestBill | undefined> {
  if (csv !== undefined) return parseRequestCsv(csv);
  const emulator = emulatorOf(rt.provider);
  if (!emulator) return undefined;
  const url = rt.emulatorUrl ?? emulator.url;
  let res: Response;
  try {
    res = await fetch(new URL('/_emulator/billing', url), {
      headers: { 'x-api-key': emulator.reportsKey },
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new RequestBillError(`the emulator's billing record is unreachable: ${(err as Error).message}`);
  }
  if (!res.ok) throw new RequestBillError(`the emulator's billing record answered ${res.status}`);
  // The emulator in this process, or on this machine, shares our clock.
  const host = new URL(url).hostname;
  const local = emulator.instance !== undefined || ['127.0.0.1', 'localhost', '[::1]'].includes(host);
  return emulatorBill(await res.json(), local ? 0 : REMOTE_SKEW_MS);
}

/** Every `expired` entry of the UTC day (pages of 10,000, newest first). */
async function expiredOf(store: MoneyStore, day: string): Promise<LedgerEntry[]> {
  const range = dayRange(day)!;
  const seen = new Map<string, LedgerEntry>();
  let until = range.until;
  for (;;) {
    const page = await store.listLedger({ outcome: 'expired', since: range.since, until, limit: 10_000 });
    for (const e of page) seen.set(e.id, e);
    if (page.length < 10_000) break;
    // Entries of the page's oldest ms are read again on the next page; the map keeps one of each.
    const oldest = page.at(-1)!.at;
    if (oldest + 1 >= until) break;
    until = oldest + 1;
  }
  return [...seen.values()];
}

/** Corrects the day's expired charges with the bill; each request id once, across reconciliations. */
export async function correctDay(
  store: MoneyStore,
  day: string,
  bill: RequestBill,
  source: string,
): Promise<CorrectionSummary> {
  const expired = await expiredOf(store, day);
  const plan = planCorrections(expired, bill);
  const summary: CorrectionSummary = {
    source: bill.source,
    expired: expired.length,
    corrected: 0,
    amount: 0,
    already: 0,
    // An expired lease is never one request the bill can settle: left at its worst case, like
    // a call the bill does not certainly cover.
    uncovered: plan.uncovered + plan.leases,
    ambiguous: plan.ambiguous,
  };
  for (const c of plan.corrections) {
    const r = await store.correctExpired({ expired: c.expired, billed: c.billed, source });
    if (r.created) {
      summary.corrected++;
      summary.amount += r.entry.cost;
    } else summary.already++;
  }
  return summary;
}
