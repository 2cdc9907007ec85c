import { createHash, type Hash } from 'node:crypto';
import type { ContentBlock, MessagesBody } from './messages.ts';
import { RecentMap } from './recent.ts';
import { sealedValues } from './tail-memo.ts';

/**
 * Prompt-prefix fingerprints. The part of a prompt that should never change between calls of one
 * stream (tools + system) is hashed block by block; when it changes we can say exactly where —
 * "system[0] at character 1043: '10:42:07' was '10:41:55'" — which is how a timestamp pasted into
 * a system prompt is caught before it silently turns every cached token into a full-price one.
 * The cacheable prefix (up to the last cache_control breakpoint) is hashed as a chain so the next
 * call can tell whether the previous call's cache entry is still a prefix of it.
 */
export interface Fingerprint {
  /** Hash of tools + system + messages up to the last breakpoint (the cacheable prefix). */
  prefixHash: string;
  /** Hash of tools + system only: the frozen part. */
  staticHash: string;
  tools: string[];
  system: string[];
  /** Number of linearised blocks in the cacheable prefix (at least tools + system). */
  prefixBlocks: number;
  /** Hash of the first `n` linearised blocks (of all of them when there are fewer). */
  chain(n: number): string;
  /** Leading blocks found unchanged since the stream's previous call (not serialised again). */
  reused: number;
}

export interface Drift {
  block: string;
  offset: number;
  was: string;
  now: string;
  description: string;
}

function strip(o: unknown): string {
  if (o === null || typeof o !== 'object' || !('cache_control' in o)) return JSON.stringify(o);
  const { cache_control: _, ...rest } = o;
  return JSON.stringify(rest);
}

/**
 * One linearised block, not yet rendered: its text is `tag` + the value (`json`: the value
 * serialised without its own cache_control). `bp`: it carries a cache_control breakpoint.
 */
interface Block {
  tag: string;
  value: unknown;
  json: boolean;
  bp: boolean;
}

/** A block's text after its tag: the string, or the value serialised without its cache_control. */
const partOf = (b: Block): string => (b.json ? strip(b.value) : (b.value as string));

/** The prompt as a list of blocks: model, tools, system (the frozen part), then the messages. */
function linearise(body: MessagesBody): { blocks: Block[]; staticCount: number; upTo: number } {
  const blocks: Block[] = [{ tag: 'model:', value: String(body.model), json: false, bp: false }];
  let breakpointBlocks = 0;
  const add = (tag: string, value: unknown, json: boolean, o?: unknown) => {
    const bp = Boolean((o as ContentBlock | null | undefined)?.cache_control);
    blocks.push({ tag, value, json, bp });
    if (bp) breakpointBlocks = blocks.length;
  };
  for (const t of body.tools ?? []) add('tool:', t, true, t);
  for (const b of Array.isArray(body.system) ? (body.system as ContentBlock[]) : []) {
    if (typeof b?.text === 'string') add('system:', b.text, false, b);
    else add('system:', b, true, b);
  }
  if (typeof body.system === 'string') add('system:', body.system, false);
  const staticCount = blocks.length;
  // Messages of any role (mid-conversation `system` messages included) and any content shape.
  for (const m of body.messages) {
    const role = `${String(m.role)}:`;
    if (typeof m.content === 'string') add(role, m.content, false);
    else if (Array.isArray(m.content)) for (const b of m.content as ContentBlock[]) add(role, b, true, b);
    else add(role, m, true);
  }
  return { blocks, staticCount, upTo: Math.max(breakpointBlocks, staticCount) };
}

const hex = (h: Hash) => h.digest('hex').slice(0, 16);

/** Fingerprints a prompt from scratch (no memory of earlier calls). */
export function fingerprint(body: MessagesBody): Fingerprint {
  return computed(linearise(body), undefined, false).fp;
}

/** A block as a stream's memory keeps it: its tag and kind, and a copy of its value as rendered. */
interface Kept {
  tag: string;
  json: boolean;
  copy: unknown;
  /** The value itself when it is sealed (frozen all the way down): the same object renders the same. */
  sealed?: object;
  /** Roughly what the copy holds, in characters. */
  size: number;
}

/** What a stream's previous fingerprint leaves for the next: see {@link PrefixMemo}. */
interface Remembered {
  blocks: Kept[];
  staticCount: number;
  staticHash: string;
  /** The hash state after the frozen part, and after the cacheable prefix: continued from, never updated. */
  staticState: Hash;
  upTo: number;
  prefixHash: string;
  prefixState: Hash;
  tools: string[];
  system: string[];
  size: number;
}

/** Never equal to any value: the copy of a block whose value does not serialise. */
const UNCOPIABLE = Symbol('uncopiable');

/**
 * The fingerprint of `lin`, continuing from `prev` (the same stream's previous call) past the
 * leading blocks that are unchanged: those are neither rendered nor hashed again, the hash state
 * after them is copied instead. With `remember`, also what the next call may continue from.
 */
function computed(
  lin: ReturnType<typeof linearise>,
  prev: Remembered | undefined,
  remember: boolean,
  same = prev ? unchanged(lin.blocks, prev) : 0,
): { fp: Fingerprint; memo?: Remembered } {
  const { blocks, staticCount, upTo } = lin;
  const staticKept = prev !== undefined && same >= staticCount && prev.staticCount === staticCount;
  const prefixKept = staticKept && same >= prev.upTo && upTo >= prev.upTo;
  const parts: Array<string | undefined> = new Array(blocks.length);
  const part = (i: number) => (parts[i] ??= partOf(blocks[i]!));
  const text = (i: number) => blocks[i]!.tag + part(i);
  let start = 0;
  let staticHash = '';
  let staticState: Hash | undefined;
  let prefixHash = '';
  let prefixState: Hash | undefined;
  /** Where hashing continues from (made only if there is something to hash: a call whose prefix
   * is the previous call's hashes nothing, and a Hash object is not free). */
  let from: Hash | undefined;
  if (staticKept) {
    ({ staticHash, staticState } = prev);
    start = staticCount;
    from = staticState;
    if (prefixKept) {
      start = prev.upTo;
      from = prev.prefixState;
    }
    if (start === upTo) {
      prefixHash = prefixKept ? prev.prefixHash : staticHash;
      prefixState = prefixKept ? prev.prefixState : staticState;
    }
  }
  const h = start < upTo ? (from ? from.copy() : createHash('sha1')) : undefined;
  for (let i = start; h && i < upTo; i++) {
    h.update(text(i)).update('\u0000');
    if (i + 1 === staticCount) {
      staticState = h.copy();
      staticHash = hex(staticState.copy());
    }
    if (i + 1 === upTo) {
      prefixState = h.copy();
      prefixHash = hex(h);
    }
  }
  const tools: string[] = staticKept ? prev.tools : [];
  const system: string[] = staticKept ? prev.system : [];
  if (!staticKept) {
    for (let i = 1; i < staticCount; i++) (blocks[i]!.tag === 'tool:' ? tools : system).push(part(i));
  }
  // Hashes already known for a chain length: comparing with the previous call costs nothing.
  const known = new Map<number, string>([
    [staticCount, staticHash],
    [upTo, prefixHash],
  ]);
  if (prev && same >= prev.upTo) known.set(prev.upTo, prev.prefixHash);
  const fp: Fingerprint = {
    prefixHash,
    staticHash,
    tools,
    system,
    prefixBlocks: upTo,
    reused: same,
    chain(n) {
      const m = Math.min(n, blocks.length);
      const hit = known.get(m);
      if (hit !== undefined) return hit;
      // Continued from the state after the cacheable prefix or the frozen part when the chain
      // covers it (the same hash: blocks are hashed in order); the tools are not rendered again.
      const [c, from] =
        prefixState && m >= upTo
          ? [prefixState.copy(), upTo]
          : staticState && m >= staticCount
            ? [staticState.copy(), staticCount]
            : [createHash('sha1'), 0];
      for (let i = from; i < m; i++) c.update(text(i)).update('\u0000');
      return hex(c);
    },
  };
  if (!remember) return { fp };
  let size = 0;
  const kept = blocks.map((b, i): Kept => {
    const k: Kept =
      i < same
        ? prev!.blocks[i]!
        : b.json
          ? // What was rendered, parsed back: a caller that changes its own objects later (a
            // workflow reusing them) cannot change the copy.
            {
              tag: b.tag,
              json: true,
              copy: copyOf(part(i)),
              ...(isSealed(b.value) ? { sealed: b.value } : {}),
              size: 2 * (part(i)?.length ?? 0),
            }
          : { tag: b.tag, json: false, copy: b.value, size: (b.value as string).length };
    size += k.size + 64;
    return k;
  });
  const memo: Remembered = {
    blocks: kept,
    staticCount,
    staticHash,
    staticState: staticState!,
    upTo,
    prefixHash,
    prefixState: prefixState!,
    tools,
    system,
    size,
  };
  return { fp, memo };
}

const isSealed = (v: unknown): v is object => v !== null && typeof v === 'object' && sealedValues.has(v);

const copyOf = (json: string | undefined): unknown => (json === undefined ? UNCOPIABLE : JSON.parse(json));

/** How many leading blocks render to the same text as `prev`'s. */
function unchanged(blocks: Block[], prev: Remembered): number {
  const n = Math.min(blocks.length, prev.blocks.length);
  let same = 0;
  while (same < n && sameBlock(blocks[same]!, prev.blocks[same]!)) same++;
  return same;
}

/** Whether `b` renders to the same text as the block `was` copied. */
function sameBlock(b: Block, was: Kept): boolean {
  if (b.tag !== was.tag || b.json !== was.json) return false;
  if (was.sealed !== undefined && b.value === was.sealed) return true;
  return b.json ? sameJson(b.value, was.copy, true) : b.value === was.copy;
}

/**
 * Whether `v` serialises (JSON.stringify, a top-level cache_control left out when `top`) exactly as
 * `copy` does, where `copy` is the parse of such a serialisation. Exact, and conservative: any value
 * JSON.stringify would transform (undefined, a function, a Date, a class instance, toJSON) is
 * "different", and the caller renders it.
 */
function sameJson(v: unknown, copy: unknown, top = false): boolean {
  if (v === null || typeof v !== 'object') {
    return (
      (typeof v === 'string' ||
        typeof v === 'boolean' ||
        (typeof v === 'number' && Number.isFinite(v)) ||
        v === null) &&
      v === copy
    );
  }
  if (copy === null || typeof copy !== 'object') return false;
  if (Array.isArray(v)) {
    if (!Array.isArray(copy) || v.length !== copy.length) return false;
    for (let i = 0; i < v.length; i++) if (!sameJson(v[i], copy[i])) return false;
    return true;
  }
  if (Array.isArray(copy)) return false;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  const c = copy as Record<string, unknown>;
  const o = v as Record<string, unknown>;
  const want = Object.keys(c);
  let i = 0;
  for (const k in o) {
    if (top && k === 'cache_control') continue;
    if (want[i] !== k || !sameJson(o[k], c[k])) return false;
    i++;
  }
  return i === want.length;
}

/**
 * Remembers each stream's last prompt, so that a call whose prefix is the previous call's (Claude
 * Code sends ~49 kB a call, mostly the same tools and system prompt) is fingerprinted by comparing
 * values with a copy instead of serialising and hashing it all again. Exact: a block is taken as
 * unchanged only when it would serialise to the very same text (compared value by value, strings
 * in full); the hashes are those {@link fingerprint} computes. Bounded by streams and by size;
 * a stream it has forgotten is fingerprinted from scratch.
 */
export class PrefixMemo {
  /** Per stream, its last few prompts, the latest first. */
  private readonly streams = new RecentMap<string, Remembered[]>();
  private size = 0;

  constructor(
    private readonly maxStreams = 1_000,
    private readonly maxChars = 64 * 2 ** 20,
    /** Prompts kept per stream: an agent and its subagents take turns in one session. */
    private readonly perStream = 4,
  ) {}

  fingerprint(key: string, body: MessagesBody): Fingerprint {
    const lin = linearise(body);
    const kept = this.streams.get(key) ?? [];
    // The remembered prompt this one continues furthest.
    let best = -1;
    let same = 0;
    for (const [i, m] of kept.entries()) {
      const n = unchanged(lin.blocks, m);
      if (n > same) [best, same] = [i, n];
    }
    const prev = kept[best];
    const { fp, memo } = computed(lin, prev, true, same);
    // The same prompt moved on replaces its earlier self; another one is kept beside it.
    const continued = prev !== undefined && same >= lin.staticCount && prev.staticCount === lin.staticCount;
    const rest = continued ? kept.filter((_, i) => i !== best) : kept;
    for (const m of [...(continued ? [prev] : []), ...rest.slice(this.perStream - 1)]) this.size -= m.size;
    const next = rest.slice(0, this.perStream - 1);
    // One prompt larger than an eighth of the whole is not kept: it would push out the rest.
    if (memo && memo.size <= this.maxChars / 8) {
      next.unshift(memo);
      this.size += memo.size;
    }
    if (next.length > 0) this.streams.set(key, next);
    else this.streams.delete(key);
    // Past either bound, the least recently used streams go, down to 90% of both.
    this.streams.evict(
      () => this.streams.size > this.maxStreams || this.size > this.maxChars,
      () => this.streams.size <= this.maxStreams * 0.9 && this.size <= this.maxChars * 0.9,
      (_, ms) => {
        for (const m of ms) this.size -= m.size;
      },
    );
    return fp;
  }
}

/** Hash of the first `n` linearised blocks of a fingerprint. */
export function chainHash(fp: Fingerprint, n: number): string {
  return fp.chain(n);
}

/** Where the frozen part (tools, system) of `next` differs from `prev`, or undefined. */
export function diffStatic(prev: Fingerprint, next: Fingerprint): Drift | undefined {
  if (prev.staticHash === next.staticHash) return undefined;
  const lists: Array<[string, string[], string[]]> = [
    ['tools', prev.tools, next.tools],
    ['system', prev.system, next.system],
  ];
  for (const [name, a, b] of lists) {
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const x = a[i] ?? '';
      const y = b[i] ?? '';
      if (x === y) continue;
      let off = 0;
      while (off < x.length && off < y.length && x[off] === y[off]) off++;
      const snip = (s: string) => s.slice(off, off + 40);
      const block = `${name}[${i}]`;
      const description =
        a[i] === undefined
          ? `${block} was added`
          : b[i] === undefined
            ? `${block} was removed`
            : `${block} changed at character ${off}: ${JSON.stringify(snip(y))} was ${JSON.stringify(snip(x))}`;
      return { block, offset: off, was: snip(x), now: snip(y), description };
    }
  }
  return { block: 'model', offset: 0, was: '', now: '', description: 'the model changed' };
}
