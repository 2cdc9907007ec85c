import { createHash } from 'node:crypto';
import type { ContentBlock, MessagesBody } from './messages.ts';

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
  /** All linearised blocks, hashed as a chain, only kept for comparison with the next call. */
  blocks: string[];
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

export function fingerprint(body: MessagesBody): Fingerprint {
  const blocks: string[] = [`model:${body.model}`];
  let breakpointBlocks = 0;
  const add = (text: string, o?: { cache_control?: unknown }) => {
    blocks.push(text);
    if (o?.cache_control) breakpointBlocks = blocks.length;
  };
  const tools: string[] = [];
  for (const t of body.tools ?? []) {
    tools.push(strip(t));
    add(`tool:${tools.at(-1)}`, t as ContentBlock);
  }
  const system: string[] = [];
  if (typeof body.system === 'string') system.push(body.system);
  for (const b of Array.isArray(body.system) ? (body.system as ContentBlock[]) : []) {
    system.push(typeof b?.text === 'string' ? b.text : strip(b));
    add(`system:${system.at(-1)}`, b);
  }
  if (typeof body.system === 'string') blocks.push(`system:${body.system}`);
  const staticCount = blocks.length;
  // Messages of any role (mid-conversation `system` messages included) and any content shape.
  for (const m of body.messages) {
    const role = String(m.role);
    if (typeof m.content === 'string') blocks.push(`${role}:${m.content}`);
    else if (Array.isArray(m.content))
      for (const b of m.content as ContentBlock[]) add(`${role}:${strip(b)}`, b);
    else blocks.push(`${role}:${strip(m)}`);
  }
  const upTo = Math.max(breakpointBlocks, staticCount);
  const h = createHash('sha1');
  let staticHash = '';
  let prefixHash = '';
  for (let i = 0; i < upTo; i++) {
    h.update(blocks[i]!).update('\u0000');
    if (i + 1 === staticCount) staticHash = h.copy().digest('hex').slice(0, 16);
    if (i + 1 === upTo) prefixHash = h.copy().digest('hex').slice(0, 16);
  }
  return { prefixHash, staticHash, tools, system, prefixBlocks: upTo, blocks };
}

/** Hash of the first `n` linearised blocks of a fingerprint. */
export function chainHash(fp: Fingerprint, n: number): string {
  const h = createHash('sha1');
  for (let i = 0; i < n && i < fp.blocks.length; i++) h.update(fp.blocks[i]!).update('\u0000');
  return h.digest('hex').slice(0, 16);
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
