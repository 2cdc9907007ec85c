import { randomBytes } from 'node:crypto';

let last = 0;
let seq = 0;

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
  }
  const time = now.toString(36).padStart(9, '0');
  const counter = (seq % 46656).toString(36).padStart(3, '0');
  return `${prefix}_${time}${counter}${randomBytes(5).toString('hex').slice(0, 8)}`;
}
