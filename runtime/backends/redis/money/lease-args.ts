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
 * field ended by a NUL (see lease.lua). That argument is written straight into a Buffer (`Packed`):
 * a batch carries hundreds of kilobytes of ledger JSON, which a joined string would copy once more
 * and the client would then measure and encode again.
 */
export function leaseScriptArgs(
  prepared: PreparedLeaseOp[],
  specArgs: (scopes: Scope[]) => (string | number)[],
  timeZone: string,
): (string | number | Buffer)[] {
  const idents = new Map<string, number>();
  const identArgs: (string | number)[] = [];
  const steps = new Packed(Math.ceil(prepared.length * stepBytes * 1.125));
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
  const bytes = steps.bytes();
  // At most MAX_GUESS: one batch of a few huge entries must not size every next one (a bigger
  // batch grows its buffer instead).
  if (prepared.length) stepBytes = Math.min(bytes.length / prepared.length, MAX_GUESS);
  return [idents.size, ...identArgs, bytes];
}

/** Bytes a step took in the last batch: the next batch's buffer is sized from it, not grown. */
let stepBytes = 512;
const MAX_GUESS = 4096;

/** Fields 2–13 of a step without an entry, each ended by its NUL. */
const NO_ENTRY = `${[0, 0, 0, '', 0, '', '', 0, 0, 0, 0, 0].join('\0')}\0`;

/** The 18 fields of one lease step (see lease.lua), packed onto `out`. */
function stepFields(op: PreparedLeaseOp, ident: number, timeZone: string, out: Packed): void {
  const e = op.entry;
  const free = op.free ?? 0;
  const expiresAt = op.expiresAt ?? '';
  const close = op.close ? 1 : 0;
  const call = op.call ?? '';
  out.text(op.reservationId);
  if (!e) {
    out.raw(NO_ENTRY);
    out.number(free);
    out.text(String(expiresAt));
    out.number(close);
    out.text(call);
    out.number(0);
    return;
  }
  const t = e.tokens;
  const spends = countsAsSpend(e.outcome);
  // The entry as the ledger keeps it (JSON: never a raw NUL).
  const { entry: done, json: made } = stepEntry(op);
  out.number(1);
  out.number(e.cost);
  out.number(e.reserved);
  out.json(made ?? JSON.stringify(done));
  out.number(e.at);
  out.text(spends ? dayKey(e.at, timeZone) : '');
  out.text(spends ? rollupField(e) : '');
  out.number(t.input);
  out.number(t.cacheWrite5m);
  out.number(t.cacheWrite1h);
  out.number(t.cacheRead);
  out.number(t.output);
  out.number(free);
  out.text(String(expiresAt));
  out.number(close);
  out.text(call);
  out.number(ident);
}

/**
 * NUL-ended fields written into one growing Buffer: strings as UTF-8, numbers as their decimal
 * text (what `String(n)` gives; integers are written digit by digit, without a string).
 */
export class Packed {
  private buf: Buffer;
  private at = 0;

  constructor(guess: number) {
    this.buf = Buffer.allocUnsafe(Math.max(guess, 256));
  }

  /** A field; a NUL inside it would split it in two, so it is refused. */
  text(s: string): void {
    if (s.includes('\0')) {
      throw new StoreInputError('invalid', `a lease step's field holds a NUL byte: ${JSON.stringify(s)}`);
    }
    this.json(s);
  }

  /** A field known to hold no NUL (JSON escapes it). */
  json(s: string): void {
    this.room(s.length * 3 + 1);
    this.at += this.buf.write(s, this.at, 'utf8');
    this.buf[this.at++] = 0;
  }

  /** Fields already NUL-ended, in ASCII. */
  raw(s: string): void {
    this.room(s.length);
    this.at += this.buf.write(s, this.at, 'latin1');
  }

  number(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) {
      this.text(String(n));
      return;
    }
    this.room(17);
    const { buf } = this;
    let end = this.at;
    let v = n;
    do {
      end++;
      v = Math.floor(v / 10);
    } while (v > 0);
    let i = end;
    v = n;
    do {
      buf[--i] = 48 + (v % 10);
      v = Math.floor(v / 10);
    } while (v > 0);
    buf[end] = 0;
    this.at = end + 1;
  }

  /** The fields written so far (a view, not a copy). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.at);
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(grown, 0, 0, this.at);
    this.buf = grown;
  }
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
