/**
 * The calls charged from one lease, as ranges of call numbers: `1-4050,4052,4054-4100`.
 *
 * A leased process numbers its calls 1, 2, 3… and settles them about in that order, so the calls
 * charged are a few runs with holes only where a call is still in flight (or never came): the text
 * grows with the calls in flight, not with the calls charged. It lives in the lease's reservation
 * row (`reservations.calls`), read and written once per batch with the row itself, so charging a
 * call once costs no row of its own (lease-steps.ts; a call named otherwise than by a number goes
 * to the `lease_calls` table as before).
 */
export class CallSet {
  /** Sorted, disjoint and not adjacent: [lo, hi] pairs, flattened. */
  private readonly runs: number[];

  private constructor(runs: number[]) {
    this.runs = runs;
  }

  /** The set a row holds ('' is empty). Throws on text no CallSet wrote. */
  static parse(text: string): CallSet {
    const runs: number[] = [];
    if (text !== '') {
      for (const part of text.split(',')) {
        const dash = part.indexOf('-');
        const lo = callNumber(dash < 0 ? part : part.slice(0, dash));
        const hi = dash < 0 ? lo : callNumber(part.slice(dash + 1));
        if (
          lo === undefined ||
          hi === undefined ||
          hi < lo ||
          (runs.length && lo <= runs[runs.length - 1]! + 1)
        ) {
          throw new Error(`unreadable lease call set: ${JSON.stringify(text.slice(0, 80))}`);
        }
        runs.push(lo, hi);
      }
    }
    return new CallSet(runs);
  }

  /** Adds call `n`; false when it was there already. */
  add(n: number): boolean {
    const r = this.runs;
    // The first run whose hi >= n - 1 (the run n extends or falls in), by binary search.
    let a = 0;
    let b = r.length / 2;
    while (a < b) {
      const m = (a + b) >> 1;
      if (r[2 * m + 1]! < n - 1) a = m + 1;
      else b = m;
    }
    const i = 2 * a;
    if (i === r.length || r[i]! > n + 1) {
      r.splice(i, 0, n, n);
      return true;
    }
    const lo = r[i]!;
    const hi = r[i + 1]!;
    if (n >= lo && n <= hi) return false;
    if (n === hi + 1) {
      // Extends this run up; joins the next one when it closes the gap.
      if (i + 2 < r.length && r[i + 2] === n + 1) r.splice(i + 1, 2);
      else r[i + 1] = n;
    } else r[i] = n; // n === lo - 1
    return true;
  }

  get size(): number {
    let n = 0;
    for (let i = 0; i < this.runs.length; i += 2) n += this.runs[i + 1]! - this.runs[i]! + 1;
    return n;
  }

  toString(): string {
    const out: string[] = [];
    for (let i = 0; i < this.runs.length; i += 2) {
      const lo = this.runs[i]!;
      const hi = this.runs[i + 1]!;
      out.push(lo === hi ? String(lo) : `${lo}-${hi}`);
    }
    return out.join(',');
  }
}

/** A call's number when it is written as one (`0`, `17`; no sign, no leading zero); else undefined. */
export function callNumber(call: string): number | undefined {
  if (call.length === 0 || call.length > 15) return undefined;
  if (call.length > 1 && call.charCodeAt(0) === 48) return undefined;
  for (let i = 0; i < call.length; i++) {
    const c = call.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  return Number(call);
}
