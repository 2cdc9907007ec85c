/**
 * The provider's figures per request id, and which `expired` ledger entries they correct.
 *
 * An `expired` entry is a call whose outcome was unknown (its process died, its settlement never
 * came), charged its reserved worst case. With the provider's bill per request it is corrected:
 * to what the provider billed for its request id, or — when the bill does not list it — to 0, but
 * only when the bill certainly covers the whole time the call could have been billed in:
 *
 * - the call was made after the bill's first moment (`covers.from`), and
 * - its reservation expired before the bill's last moment (`covers.to`): a call ends, billed or
 *   not, before its reservation expires (the reservation outlives the provider timeout; a process
 *   that dies closes its connections, which ends its calls at once),
 *
 * each with a margin for the two clocks (`skewMs`). A bill without a known span corrects only the
 * requests it lists: missing data never corrects a charge down.
 */
import type { Micros } from '../money.ts';
import type { LedgerEntry } from '../store/port.ts';
import { ReportError } from './report.ts';

export interface RequestBill {
  /** Where it came from: the emulator's billing record, or a CSV handed in. */
  source: 'emulator' | 'csv';
  /** Request id → µ$ billed (summed when the bill lists a request more than once: a batch). */
  billed: Map<string, Micros>;
  /** The span the bill lists every billed request of, when known: [from, to] epoch ms. */
  covers?: { from: number; to: number };
  /** How far the provider's clock may be from ours. */
  skewMs: number;
}

/** The margin for a provider on another machine (a CSV, an emulator elsewhere). */
export const REMOTE_SKEW_MS = 5 * 60_000;

export interface PlannedCorrection {
  expired: LedgerEntry;
  billed: Micros;
}

export interface CorrectionPlan {
  corrections: PlannedCorrection[];
  /** Expired entries left as charged: not listed, and the bill does not cover their time. */
  uncovered: number;
  /** Expired entries left as charged: their request id has more than one expired entry. */
  ambiguous: number;
  /** Expired budget leases (request id `lease:…`), left as charged: a lease is no one request, and
   * the calls it admitted that never settled are not in the ledger to match against the bill. */
  leases: number;
}

/** Which expired entries the bill corrects, and to what. */
export function planCorrections(expired: LedgerEntry[], bill: RequestBill): CorrectionPlan {
  const perRequest = new Map<string, number>();
  for (const e of expired) perRequest.set(e.requestId, (perRequest.get(e.requestId) ?? 0) + 1);
  const plan: CorrectionPlan = { corrections: [], uncovered: 0, ambiguous: 0, leases: 0 };
  for (const e of expired) {
    if (e.requestId.startsWith('lease:')) {
      plan.leases++;
      continue;
    }
    if (perRequest.get(e.requestId)! > 1) {
      plan.ambiguous++;
      continue;
    }
    const billed = bill.billed.get(e.requestId);
    if (billed !== undefined) plan.corrections.push({ expired: e, billed });
    else if (covered(e, bill)) plan.corrections.push({ expired: e, billed: 0 });
    else plan.uncovered++;
  }
  return plan;
}

function covered(e: LedgerEntry, bill: RequestBill): boolean {
  if (!bill.covers) return false;
  const made = e.at - e.latencyMs;
  return bill.covers.from <= made - bill.skewMs && e.at + bill.skewMs <= bill.covers.to;
}

/** The emulator's `GET /_emulator/billing` answer: entries with `clientRequestId` and `costMicros`. */
export function emulatorBill(json: unknown, skewMs: number): RequestBill {
  const j = json as {
    entries?: { clientRequestId?: unknown; costMicros?: unknown }[];
    since?: unknown;
    now?: unknown;
  };
  if (!j || !Array.isArray(j.entries)) {
    throw new ReportError('requests', "the emulator's billing record has no entries array");
  }
  const billed = new Map<string, Micros>();
  j.entries.forEach((e, i) => {
    if (typeof e.costMicros !== 'number' || !Number.isSafeInteger(e.costMicros) || e.costMicros < 0) {
      throw new ReportError(
        `entries[${i}].costMicros`,
        `expected µ$ >= 0, got ${JSON.stringify(e.costMicros)}`,
      );
    }
    if (typeof e.clientRequestId !== 'string') return; // not a call of ours (no request id of ours)
    billed.set(e.clientRequestId, (billed.get(e.clientRequestId) ?? 0) + e.costMicros);
  });
  const since = typeof j.since === 'number' ? j.since : undefined;
  const now = typeof j.now === 'number' ? j.now : undefined;
  return {
    source: 'emulator',
    billed,
    ...(since !== undefined && now !== undefined ? { covers: { from: since, to: now } } : {}),
    skewMs,
  };
}

const PICO = 1_000_000_000_000n;

/**
 * `request_id,cost_usd` lines (a header first), with an optional `at` column (RFC 3339 or epoch
 * ms): with it, the bill covers its first to its last `at`; without it, only listed requests are
 * corrected. Throws ReportError naming the line.
 */
export function parseRequestCsv(text: string): RequestBill {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let cols: { id: number; cost: number; at: number } | undefined;
  const billed = new Map<string, Micros>();
  const pico = new Map<string, bigint>();
  let from = Number.POSITIVE_INFINITY;
  let to = Number.NEGATIVE_INFINITY;
  let timed = 0;
  let rows = 0;
  lines.forEach((line, idx) => {
    const n = idx + 1;
    if (!line.trim()) return;
    const fields = line.split(',').map((f) => f.trim().replace(/^"(.*)"$/, '$1'));
    if (!cols) {
      const h = fields.map((f) => f.toLowerCase());
      cols = { id: h.indexOf('request_id'), cost: h.indexOf('cost_usd'), at: h.indexOf('at') };
      if (cols.id === -1 || cols.cost === -1) {
        throw new ReportError(
          `line ${n}`,
          'the header must name the columns request_id,cost_usd (and optionally at)',
        );
      }
      return;
    }
    rows++;
    const id = fields[cols.id];
    if (!id) throw new ReportError(`line ${n}`, 'request_id: required');
    const m = /^\$?(\d+)(?:\.(\d{1,12}))?$/.exec(fields[cols.cost] ?? '');
    if (!m) {
      throw new ReportError(
        `line ${n}`,
        `cost_usd: expected a dollar amount like 0.012345, got ${JSON.stringify(fields[cols.cost])}`,
      );
    }
    const frac = (m[2] ?? '').padEnd(12, '0');
    pico.set(id, (pico.get(id) ?? 0n) + BigInt(m[1]!) * PICO + BigInt(frac));
    if (cols.at !== -1) {
      const raw = fields[cols.at] ?? '';
      const at = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
      if (!Number.isFinite(at)) {
        throw new ReportError(
          `line ${n}`,
          `at: expected an RFC 3339 time or epoch ms, got ${JSON.stringify(raw)}`,
        );
      }
      from = Math.min(from, at);
      to = Math.max(to, at);
      timed++;
    }
  });
  if (!cols)
    throw new ReportError(
      'line 1',
      'empty: expected the header request_id,cost_usd and one line per request',
    );
  for (const [id, p] of pico) billed.set(id, Number((p + 500_000n) / 1_000_000n));
  return {
    source: 'csv',
    billed,
    ...(rows > 0 && timed === rows ? { covers: { from, to } } : {}),
    skewMs: REMOTE_SKEW_MS,
  };
}
