import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function base62(n: number, width: number): string {
  let s = '';
  for (let i = 0; i < width; i++) {
    s = ALPHABET[n % 62] + s;
    n = Math.floor(n / 62);
  }
  return s;
}

// One random stem per process plus a counter: ids look like the provider's
// (`msg_01…`, `toolu_01…`, `req_011C…` followed by 22 base62 characters), are unique
// across emulator processes, and cost no crypto call per request.
const STEM = Array.from(randomBytes(12), (b) => ALPHABET[b % 62]).join('');
let counter = 0;

/** A fresh provider-style id: `newId('msg_01')`, `newId('toolu_01')`, `newId('req_011C')`. */
export function newId(prefix: string): string {
  counter = (counter + 1) % 62 ** 8;
  return `${prefix}${STEM}${base62(counter, 10)}`;
}
