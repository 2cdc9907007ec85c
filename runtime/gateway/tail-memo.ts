/**
 * Parsing a body whose tail did not change. Claude Code sends ~49 kB a call, in this order:
 * `model`, `messages`, then `system`, `tools`, `metadata`, `max_tokens`, `stream` — the same bytes
 * call after call, the conversation growing in front of them. A stream's previous body leaves its
 * tail (the members after `messages`) serialised; a body that ends with exactly those bytes is
 * parsed up to them, and the tail's values (parsed once, deep-frozen) are added to it.
 *
 * Exact: `H + T` (T the tail: `,"system":…}` as JSON.stringify writes it) parses to H's members
 * followed by T's whenever `H + "}"` parses to an object with at least one member and none of T's
 * keys — the split is then at the top level of the object, and T, self-delimiting, closes it.
 * Anything else (a body that does not end with a known tail, another serialisation, a duplicate
 * key) is parsed whole, as before. Bounded by streams and bytes.
 */

/** Objects frozen with everything under them: a value here never changes (identity is enough). */
export const sealedValues = new WeakSet<object>();

/** Freezes `v` and everything under it, and records each object as sealed. */
export function seal(v: unknown): void {
  const stack: unknown[] = [v];
  while (stack.length) {
    const x = stack.pop();
    if (x === null || typeof x !== 'object' || sealedValues.has(x)) continue;
    Object.freeze(x);
    sealedValues.add(x);
    if (Array.isArray(x)) for (const y of x) stack.push(y);
    else for (const k in x) stack.push((x as Record<string, unknown>)[k]);
  }
}

interface Tail {
  /** `,"k":v,…}` as UTF-8. */
  bytes: Buffer;
  keys: string[];
  values: unknown[];
}

/** Streams whose bodies never end with their own tail (another serialisation): not tried again. */
const GIVE_UP_AFTER = 3;

export class TailMemo {
  /** Per stream, its last few tails, the latest first; `misses` counts bodies that left none. */
  private readonly streams = new Map<string, { tails: Tail[]; misses: number }>();
  private bytes = 0;

  constructor(
    private readonly maxStreams = 1_000,
    private readonly maxBytes = 32 * 2 ** 20,
    /** Tails kept per stream: an agent and its subagents (other tools) take turns in one session. */
    private readonly perStream = 4,
  ) {}

  /**
   * The body `raw` parses to. `full` parses it whole (and throws what a bad body throws): called
   * when no tail of the stream fits.
   */
  parse(key: string, raw: Buffer, full: (raw: Buffer) => unknown): unknown {
    const s = this.streams.get(key);
    if (s) {
      for (let i = 0; i < s.tails.length; i++) {
        const body = withTail(raw, s.tails[i]!);
        if (body === undefined) continue;
        if (i > 0) s.tails.unshift(...s.tails.splice(i, 1));
        return body;
      }
      if (s.misses >= GIVE_UP_AFTER) return full(raw);
    }
    const body = full(raw);
    this.remember(key, raw, body);
    return body;
  }

  private remember(key: string, raw: Buffer, body: unknown): void {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return;
    const o = body as Record<string, unknown>;
    const keys = Object.keys(o);
    const from = keys.indexOf('messages') + 1;
    let s = this.streams.get(key);
    const tail = from > 0 && from < keys.length ? tailOf(o, keys.slice(from)) : undefined;
    if (!tail || !endsWith(raw, tail.bytes) || raw.length <= tail.bytes.length + 1) {
      if (s) s.misses++;
      else this.add(key, { tails: [], misses: 1 });
      return;
    }
    for (const v of tail.values) seal(v);
    // The body keeps the sealed values: what the next body shares is what this one has.
    if (!s) {
      s = { tails: [], misses: 0 };
      this.add(key, s);
    }
    s.misses = 0;
    s.tails.unshift(tail);
    this.bytes += tail.bytes.length;
    for (const t of s.tails.splice(this.perStream)) this.bytes -= t.bytes.length;
    while (this.streams.size > this.maxStreams || this.bytes > this.maxBytes) {
      const [oldest, gone] = this.streams.entries().next().value!;
      this.streams.delete(oldest);
      for (const t of gone.tails) this.bytes -= t.bytes.length;
    }
  }

  private add(key: string, s: { tails: Tail[]; misses: number }): void {
    this.streams.set(key, s);
    if (this.streams.size > this.maxStreams) {
      const [oldest, gone] = this.streams.entries().next().value!;
      this.streams.delete(oldest);
      for (const t of gone.tails) this.bytes -= t.bytes.length;
    }
  }
}

function tailOf(o: Record<string, unknown>, keys: string[]): Tail | undefined {
  // `__proto__` would be set as the prototype by an assignment, not as a member: never shared.
  if (keys.includes('__proto__')) return undefined;
  const values = keys.map((k) => o[k]);
  let text: string;
  try {
    text = `,${keys.map((k, i) => `${JSON.stringify(k)}:${JSON.stringify(values[i])}`).join(',')}}`;
  } catch {
    return undefined;
  }
  return { bytes: Buffer.from(text), keys, values };
}

function endsWith(raw: Buffer, tail: Buffer): boolean {
  return raw.length > tail.length && raw.compare(tail, 0, tail.length, raw.length - tail.length) === 0;
}

/** `raw` parsed as its head plus `t`, or undefined when it does not end with `t` at the top level. */
function withTail(raw: Buffer, t: Tail): Record<string, unknown> | undefined {
  if (!endsWith(raw, t.bytes)) return undefined;
  let head: unknown;
  try {
    head = JSON.parse(`${raw.toString('utf8', 0, raw.length - t.bytes.length)}}`);
  } catch {
    return undefined;
  }
  if (head === null || typeof head !== 'object' || Array.isArray(head)) return undefined;
  const o = head as Record<string, unknown>;
  let members = 0;
  for (const k in o) {
    if (t.keys.includes(k)) return undefined;
    members++;
  }
  if (members === 0) return undefined;
  for (let i = 0; i < t.keys.length; i++) o[t.keys[i]!] = t.values[i];
  return o;
}
