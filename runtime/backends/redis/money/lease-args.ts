import type { Scope } from '../../../identity.ts';
import { leaseResult, type PreparedLeaseOp, stepEntry } from '../../../store/lease-ops.ts';
import { type LeaseOpResult, type LedgerEntry, StoreInputError } from '../../../store/port.ts';
import {
  CorruptRecordError,
  countsAsSpend,
  finishedFor,
  identityScopes,
  storedJson,
  storedMicros,
} from '../../../store/records.ts';
import { dayKey } from '../../../store/windows.ts';
import { rollupField } from './replies.ts';

/**
 * lease.lua's arguments for a batch of prepared steps, after the shared context: the batch's
 * identities once each (their scope specs), then every step's 18 fields as one argument, each
 * field ended by a NUL (see lease.lua).
 */
export function leaseScriptArgs(
  prepared: PreparedLeaseOp[],
  specArgs: (scopes: Scope[]) => (string | number)[],
  timeZone: string,
): (string | number)[] {
  const idents = new Map<string, number>();
  const identArgs: (string | number)[] = [];
  const steps: (string | number)[] = [];
  for (const op of prepared) {
    let ident = 0;
    if (op.entry) {
      const scopes = identityScopes(op.entry.identity);
      const key = scopes.join(' ');
      ident = idents.get(key) ?? 0;
      if (!ident) {
        ident = idents.size + 1;
        idents.set(key, ident);
        identArgs.push(scopes.length, ...specArgs(scopes));
      }
    }
    stepFields(op, ident, timeZone, steps);
  }
  for (const f of steps) {
    if (typeof f === 'string' && f.includes('\0')) {
      throw new StoreInputError('invalid', `a lease step's field holds a NUL byte: ${JSON.stringify(f)}`);
    }
  }
  return [idents.size, ...identArgs, `${steps.join('\0')}\0`];
}

/** The 18 fields of one lease step (see lease.lua), pushed onto `out`. */
function stepFields(op: PreparedLeaseOp, ident: number, timeZone: string, out: (string | number)[]): void {
  const e = op.entry;
  const free = op.free ?? 0;
  const expiresAt = op.expiresAt ?? '';
  const close = op.close ? 1 : 0;
  const call = op.call ?? '';
  if (!e) {
    out.push(op.reservationId, 0, 0, 0, '', 0, '', '', 0, 0, 0, 0, 0, free, expiresAt, close, call, 0);
    return;
  }
  const t = e.tokens;
  const spends = countsAsSpend(e.outcome);
  // The entry as the ledger keeps it.
  const { entry: done, json: made } = stepEntry(op);
  const json = made ?? JSON.stringify(done);
  out.push(
    op.reservationId,
    1,
    e.cost,
    e.reserved,
    json,
    e.at,
    spends ? dayKey(e.at, timeZone) : '',
    spends ? rollupField(e) : '',
    t.input,
    t.cacheWrite5m,
    t.cacheWrite1h,
    t.cacheRead,
    t.output,
    free,
    expiresAt,
    close,
    call,
    ident,
  );
}

/** lease.lua's replies, one per step: what each step did. */
export function leaseResults(prepared: PreparedLeaseOp[], replies: unknown): LeaseOpResult[] {
  if (!Array.isArray(replies) || replies.length !== prepared.length) {
    throw new CorruptRecordError('lease reply', replies);
  }
  return (replies as unknown[][]).map((r, i): LeaseOpResult => {
    const entry = prepared[i]!.entry;
    const held = storedMicros(r[1], 'lease held');
    const written = r[2] ? storedJson<LedgerEntry>(r[2], 'lease entry') : undefined;
    if (r[0] === 'expired') return leaseResult(written, 0, false, false);
    if (r[0] !== 'open' && r[0] !== 'closed') throw new CorruptRecordError('lease reply', r);
    // The script writes the entry as given plus reserved/overrun: the same as finishEntry.
    const id = prepared[i]!.reservationId;
    const out = entry ? finishedFor(entry, id) : undefined;
    return leaseResult(out, held, r[0] === 'open', r[3] === '1');
  });
}
