import {
  closeSync,
  futimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Identity } from '../identity.ts';
import type { Logger } from '../log.ts';
import type { Micros } from '../money.ts';
import {
  type AdmitRequest,
  EnforcementUnavailableError,
  type LeaseOp,
  type LedgerInput,
  type MoneyStore,
  NO_TOKENS,
} from './port.ts';

/**
 * The journal of budget leases (runtime/store/leases.ts): what this process admitted from its
 * slices and what each call cost, on local disk before the store has it.
 *
 * A call admitted from a slice is written here before it is forwarded, and its cost before its
 * answer completes: the journal is what makes a settlement durable, so settlements reach the store
 * in batches every few hundred milliseconds (`shipMs`) rather than one per call — store load grows
 * with slices, not with calls. A process killed with calls in flight leaves them here: the next
 * process on the same data directory charges each its reserved worst case (an `expired` entry per
 * call, which reconciliation corrects like any other), charges the settled ones not yet shipped,
 * and returns the dead process's slices. Lease steps charge a call once (LeaseOp `call`), so
 * replaying a journal twice, or a batch already applied, charges nothing twice.
 *
 * Durable means written to the file (the OS has it): it survives the process, not the machine. A
 * machine lost with its disk leaves its slices to expire in the store, charged what they held —
 * never less than their calls cost, never zero.
 *
 * One file per process, `<replica>.<pid>.<n>.journal`, one JSON record per line; rewritten with only
 * what is still live once it passes `COMPACT_BYTES` and everything before was shipped.
 */
export type JournalRecord =
  /** A slice was granted. */
  | { t: 'l'; l: string }
  /** Call `c` of lease `l` was admitted, reserving `r`: enough to charge it if it never settles. */
  | {
      t: 'a';
      l: string;
      c: string;
      r: Micros;
      at: number;
      i: Identity;
      q?: string;
      k?: 'model' | 'tool';
      n?: string;
      p?: string;
    }
  /** Call `c` of lease `l` settled: its entry, with its id and time, as the store will write it. */
  | { t: 's'; l: string; c: string; e: LedgerInput };

/** The record of call `c` of lease (or reservation) `l`, admitted at `at`. */
export function admitRecord(
  l: string,
  c: string,
  req: AdmitRequest,
  at: number,
): Extract<JournalRecord, { t: 'a' }> {
  const rec: Extract<JournalRecord, { t: 'a' }> = { t: 'a', l, c, r: req.amount, at, i: req.identity };
  if (req.requestId !== undefined) rec.q = req.requestId;
  if (req.kind !== undefined) rec.k = req.kind;
  if (req.name !== undefined) rec.n = req.name;
  if (req.provider !== undefined) rec.p = req.provider;
  return rec;
}

export interface LeaseJournal {
  /** Appends a record; `entryJson` is a settlement's entry as JSON when the caller made it already.
   * Resolves once it is durable (one write per turn of the event loop). */
  append(rec: JournalRecord, entryJson?: string): Promise<void>;
  /** Called after a batch shipped: rewrites the journal as `live()` once it has grown large. */
  shipped(live: () => JournalRecord[]): void;
  /** Marks this process alive (upkeep). */
  heartbeat(): void;
  /** Closes the journal; `clean` (nothing left unshipped or open) removes it. */
  close(clean: boolean): void;
}

/** No file: durable as soon as written to memory (tests and the simulation). */
export const MEMORY_JOURNAL: LeaseJournal = {
  append: () => Promise.resolve(),
  shipped: () => {},
  heartbeat: () => {},
  close: () => {},
};

const COMPACT_BYTES = 8 * 1024 * 1024;
const SUFFIX = '.journal';
/** A journal whose process is alive but that has not been touched for this long is taken as dead. */
const STALE_MS = 60_000;

/** The journals this process has open (several lease layers in one process: tests). */
const OPEN = new Set<string>();

/** The id of a leased call's ledger entry: the same whoever writes it (live, or from a journal). */
export function callEntryId(leaseId: string, call: string): string {
  return `led_${leaseId.replace(/^res_/, '')}_${call}`;
}

/** A record's line; `entryJson`, a settlement's entry already serialised (the string the store's
 * ledger row will hold), is written as it is. */
export function lineOf(rec: JournalRecord, entryJson?: string): string {
  if (rec.t === 'a') return admitLine(rec);
  if (rec.t !== 's' || entryJson === undefined) return `${JSON.stringify(rec)}\n`;
  return `{"t":"s","l":${jsonString(rec.l)},"c":${jsonString(rec.c)},"e":${entryJson}}\n`;
}

/** Frozen identities' JSON (the gateway's identities are frozen and shared by their calls). */
const IDENTITY_JSON = new WeakMap<Identity, string>();

function identityJson(i: Identity): string {
  let json = IDENTITY_JSON.get(i);
  if (json === undefined) {
    json = JSON.stringify(i);
    if (Object.isFrozen(i)) IDENTITY_JSON.set(i, json);
  }
  return json;
}

/** `s` as a JSON string: as JSON.stringify writes it, without its call (~1,000 instructions, most
 * of them setting up) when nothing in it needs escaping — the ids and names of an admission. */
function jsonString(s: string): string {
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return JSON.stringify(s);
  }
  return `"${s}"`;
}

/** A number as JSON.stringify writes it. */
const jsonNumber = (n: number): string => (Number.isFinite(n) ? `${n}` : 'null');

/** An admission's line, as JSON.stringify writes it (the same keys in the same order), put together
 * from its parts: the identity's JSON is made once per identity, not per call. */
function admitLine(rec: Extract<JournalRecord, { t: 'a' }>): string {
  let line = `{"t":"a","l":${jsonString(rec.l)},"c":${jsonString(rec.c)},"r":${jsonNumber(rec.r)},"at":${jsonNumber(rec.at)},"i":${identityJson(rec.i)}`;
  if (rec.q !== undefined) line += `,"q":${jsonString(rec.q)}`;
  if (rec.k !== undefined) line += `,"k":${jsonString(rec.k)}`;
  if (rec.n !== undefined) line += `,"n":${jsonString(rec.n)}`;
  if (rec.p !== undefined) line += `,"p":${jsonString(rec.p)}`;
  return `${line}}\n`;
}

export class FileJournal implements LeaseJournal {
  private fd: number;
  private n = 0;
  private bytes = 0;
  private buffer: string[] = [];
  /** The next write's promise, shared by every record it carries. */
  private next: { written: Promise<void>; resolve: () => void; reject: (err: unknown) => void } | undefined;

  constructor(
    private readonly dir: string,
    private readonly replica: string,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.fd = openSync(this.path(0), 'a', 0o600);
    OPEN.add(this.path(0));
  }

  private path(n: number): string {
    return join(this.dir, `${this.replica}.${process.pid}.${n}${SUFFIX}`);
  }

  append(rec: JournalRecord, entryJson?: string): Promise<void> {
    this.buffer.push(lineOf(rec, entryJson));
    if (!this.next) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const written = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.next = { written, resolve, reject };
      setImmediate(this.flush);
    }
    return this.next.written;
  }

  private readonly flush = (): void => {
    const next = this.next;
    if (!next) return;
    const text = this.buffer.join('');
    this.buffer = [];
    this.next = undefined;
    try {
      writeSync(this.fd, text);
      this.bytes += text.length;
    } catch (err) {
      next.reject(
        new EnforcementUnavailableError(`cannot write the lease journal in ${this.dir}`, { cause: err }),
      );
      return;
    }
    next.resolve();
  };

  shipped(live: () => JournalRecord[]): void {
    if (this.bytes < COMPACT_BYTES || this.buffer.length) return;
    // The live records go to a new file first; the old one goes only once they are written.
    const old = { fd: this.fd, path: this.path(this.n) };
    const text = live()
      .map((r) => lineOf(r))
      .join('');
    const fd = openSync(this.path(this.n + 1), 'a', 0o600);
    writeSync(fd, text);
    OPEN.add(this.path(this.n + 1));
    OPEN.delete(old.path);
    this.n++;
    this.fd = fd;
    this.bytes = text.length;
    closeSync(old.fd);
    unlinkSync(old.path);
  }

  heartbeat(): void {
    try {
      const now = new Date();
      futimesSync(this.fd, now, now);
    } catch {
      // A journal that cannot be touched is written to on the next call, which reports it.
    }
  }

  close(clean: boolean): void {
    if (this.buffer.length) this.flush();
    closeSync(this.fd);
    OPEN.delete(this.path(this.n));
    if (clean) unlinkSync(this.path(this.n));
  }
}

function alive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reads a journal's records; a torn last line (the process died mid-write) is skipped. */
function readRecords(path: string): JournalRecord[] {
  const out: JournalRecord[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as JournalRecord);
    } catch {
      // Only a last line can be torn; anything unreadable is skipped, never guessed.
    }
  }
  return out;
}

/** The lease steps that settle a dead process's journal: its calls charged, its slices returned. */
export function recoverySteps(records: JournalRecord[], now: number): LeaseOp[] {
  const leases = new Set<string>();
  const admitted = new Map<string, Extract<JournalRecord, { t: 'a' }>>();
  const settled = new Map<string, Extract<JournalRecord, { t: 's' }>>();
  for (const r of records) {
    leases.add(r.l);
    if (r.t === 'a') admitted.set(`${r.l}:${r.c}`, r);
    else if (r.t === 's') settled.set(`${r.l}:${r.c}`, r);
  }
  const ops: LeaseOp[] = [];
  for (const s of settled.values()) ops.push({ reservationId: s.l, call: s.c, entry: s.e });
  for (const [key, a] of admitted) {
    if (settled.has(key)) continue;
    // In flight when the process died: its outcome is unknown, so it costs its worst case.
    ops.push({
      reservationId: a.l,
      call: a.c,
      entry: {
        id: callEntryId(a.l, a.c),
        at: now,
        requestId: a.q ?? `${a.l}:${a.c}`,
        identity: a.i,
        kind: a.k ?? 'model',
        name: a.n ?? '',
        ...(a.p ? { provider: a.p } : {}),
        tokens: { ...NO_TOKENS },
        reserved: a.r,
        cost: a.r,
        outcome: 'expired',
        code: 'reservation_expired',
        latencyMs: Math.max(0, now - a.at),
      },
    });
  }
  for (const l of leases) ops.push({ reservationId: l, close: true });
  return ops;
}

const STEPS_PER_BATCH = 256;

/**
 * Settles the journals that dead processes left in `dir` (none of a process still alive): each is
 * claimed (renamed), its steps applied, then removed. A journal whose steps fail (store down) is
 * put back for the next attempt. Returns how many calls were charged.
 */
export async function recoverJournals(
  store: Pick<MoneyStore, 'leaseOps'>,
  dir: string,
  deps: { now: () => number; log: Logger },
): Promise<number> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  // A journal another recovery claimed and did not finish (that process died too) is taken back.
  for (const n of names) {
    const m = /^(.*\.journal)\.recovering-(\d+)$/.exec(n);
    if (m && Number(m[2]) !== process.pid && !alive(Number(m[2]))) {
      try {
        renameSync(join(dir, n), join(dir, m[1]!));
      } catch {
        // claimed by another process meanwhile
      }
    }
  }
  names = readdirSync(dir).filter((n) => n.endsWith(SUFFIX));
  let charged = 0;
  for (const name of names) {
    const pid = Number(name.split('.')[1]);
    const path = join(dir, name);
    if (OPEN.has(path)) continue;
    let fresh = false;
    try {
      fresh = Date.now() - statSync(path).mtimeMs < STALE_MS;
    } catch {
      continue;
    }
    if (alive(pid) && fresh) continue;
    const claimed = `${path}.recovering-${process.pid}`;
    try {
      renameSync(path, claimed);
    } catch {
      continue; // another process claimed it first
    }
    try {
      const ops = recoverySteps(readRecords(claimed), deps.now());
      for (let i = 0; i < ops.length; i += STEPS_PER_BATCH) {
        const results = await store.leaseOps(ops.slice(i, i + STEPS_PER_BATCH));
        charged += results.filter((r, j) => ops[i + j]!.entry !== undefined && !r.repeated).length;
      }
      unlinkSync(claimed);
      if (ops.length) {
        deps.log.info('settled the lease journal of a process that stopped', {
          journal: name,
          steps: ops.length,
        });
      }
    } catch (err) {
      renameSync(claimed, path);
      throw err;
    }
  }
  return charged;
}
