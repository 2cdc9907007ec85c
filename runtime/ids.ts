import { randomBytes } from 'node:crypto';

let last = 0;
let seq = 0;
// One syscall for 1,024 ids instead of one per id: ids are minted on the hot path of every call.
let pool = Buffer.alloc(0);
let at = 0;

function random4(): string {
  if (at + 4 > pool.length) {
    pool = randomBytes(4096);
    at = 0;
  }
  at += 4;
  return pool.toString('hex', at - 4, at);
}

/** The current millisecond in base 36 (a time past 2^31 ms is a double, which V8 converts to
 * base 36 in its runtime, ~2,000 instructions): made once per millisecond, not per id. */
let time = '';
/** The same-millisecond counters in base 36, made once each (a millisecond rarely sees many). */
const COUNTERS: string[] = [];

/**
 * Sortable unique ids: `led_` + 9 base36 chars of time + 3 of a same-millisecond counter + 8 random.
 * Sorting ids sorts by creation time within one process, which keeps ledger pages stable.
 */
export function newId(prefix: string): string {
  const now = Date.now();
  if (now === last) seq++;
  else {
    last = now;
    seq = 0;
    time = now.toString(36).padStart(9, '0');
  }
  const n = seq % 46656;
  let counter = n < 1024 ? COUNTERS[n] : undefined;
  if (counter === undefined) {
    counter = n.toString(36).padStart(3, '0');
    if (n < 1024) COUNTERS[n] = counter;
  }
  return `${prefix}_${time}${counter}${random4()}`;
}
