/**
 * Prompt caching as the provider accounts for it (platform.claude.com, "Prompt caching"):
 *
 * - The prompt is read in order tools → system → messages; an entry's key is the hash of the whole
 *   prefix up to and including a block marked with `cache_control` (markers themselves excluded),
 *   chained from the model id, so a changed model or tool list misses everything, a changed system
 *   misses system and messages, and a changed `tool_choice`/`thinking` misses only messages.
 * - At most 4 breakpoints; TTL `5m` (default) or `1h`; a `1h` breakpoint may not follow a `5m` one.
 * - Entries are written only at breakpoints, and only when the prefix reaches the model's minimum
 *   cacheable length. A read is the longest live entry found at a breakpoint or at one of the 20
 *   block boundaries before it (the lookback), so a breakpoint moving along a growing conversation
 *   hits the entry written by the previous turn. A hit refreshes the entry's TTL.
 * - Billing positions with mixed TTLs: A = tokens up to the hit, B = tokens up to the last `1h`
 *   breakpoint written, C = tokens up to the last breakpoint written; reads are A, 1h writes B − A,
 *   5m writes C − B, and everything after C is uncached input.
 */
import { createHash } from 'node:crypto';
import { invalid } from './errors.ts';
import { canonicalJson, type Segment } from './tokens.ts';

/** How many block boundaries before a breakpoint are checked for an earlier entry. */
export const LOOKBACK_BLOCKS = 20;
export const MAX_BREAKPOINTS = 4;
export const TTL_MS = { '5m': 5 * 60_000, '1h': 60 * 60_000 } as const;

export interface CacheUsage {
  /** Uncached input tokens (the API's `input_tokens`). */
  readonly input: number;
  readonly cacheWrite5m: number;
  readonly cacheWrite1h: number;
  readonly cacheRead: number;
}

interface Breakpoint {
  readonly pos: number;
  readonly ttl: '5m' | '1h';
}

interface Entry {
  expiresAt: number;
  ttlMs: number;
}

const MAX_ENTRIES = 100_000;
const SWEEP_EVERY = 1024;

/**
 * The breakpoints of a linearised request, validated like the API validates them.
 * `auto` is the top-level `cache_control` (automatic caching): a breakpoint on the last block.
 */
export function breakpointsOf(
  segments: readonly Segment[],
  auto?: { ttl?: '5m' | '1h' } | null,
): Breakpoint[] {
  const bps: Breakpoint[] = [];
  segments.forEach((s, pos) => {
    if (s.marked) bps.push({ pos, ttl: s.ttl });
  });
  if (auto && segments.length > 0) {
    const last = segments.length - 1;
    const ttl = auto.ttl ?? '5m';
    if (bps.at(-1)?.pos !== last) bps.push({ pos: last, ttl });
  }
  if (bps.length > MAX_BREAKPOINTS) {
    throw invalid(
      `A maximum of ${MAX_BREAKPOINTS} blocks with cache_control may be provided. Found ${bps.length}.`,
    );
  }
  let seen5m = false;
  for (const b of bps) {
    if (b.ttl === '5m') seen5m = true;
    else if (seen5m) {
      throw invalid(
        "cache_control: a block with ttl='1h' cannot come after a block with ttl='5m'; longer TTLs must come first.",
      );
    }
  }
  return bps;
}

/** An in-memory prompt cache with an injectable clock. */
export class PromptCache {
  private readonly entries = new Map<string, Entry>();
  private touches = 0;

  constructor(private readonly now: () => number) {}

  /** Number of entries held (live or not yet swept). */
  get size(): number {
    return this.entries.size;
  }

  /** Forgets every entry. */
  clear(): void {
    this.entries.clear();
  }

  /**
   * Accounts one request: reads the longest live prefix, writes new entries at breakpoints, and
   * returns the token split. `framing` is the per-request overhead, always uncached; `salt`
   * (tool_choice/thinking) is mixed in where the messages section starts.
   */
  account(
    modelId: string,
    minCacheable: number,
    segments: readonly Segment[],
    bps: readonly Breakpoint[],
    framing: number,
    salt: string,
  ): CacheUsage {
    let total = framing;
    for (const s of segments) total += s.tokens;
    if (bps.length === 0) return { input: total, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0 };

    const last = bps[bps.length - 1]!.pos;
    const needed = new Uint8Array(last + 1);
    for (const b of bps) needed.fill(1, Math.max(0, b.pos - LOOKBACK_BLOCKS), b.pos + 1);
    const hashes: (string | undefined)[] = new Array(last + 1);
    const cum = new Array<number>(last + 1);
    const h = createHash('sha256').update(modelId);
    let run = 0;
    let section = '';
    for (let i = 0; i <= last; i++) {
      const s = segments[i]!;
      if (s.section !== section) {
        section = s.section;
        h.update(`\u0000${section}\u0000${section === 'messages' ? salt : ''}`);
      }
      h.update(`\u0001${s.role ?? ''}\u0001`);
      h.update(canonicalJson(s.value));
      run += s.tokens;
      cum[i] = run;
      if (needed[i]) hashes[i] = h.copy().digest('base64');
    }

    const now = this.now();
    let hit = -1;
    for (const b of bps) {
      for (let j = b.pos; j >= Math.max(0, b.pos - LOOKBACK_BLOCKS) && j > hit; j--) {
        const e = this.entries.get(hashes[j]!);
        if (e && e.expiresAt > now) {
          hit = j;
          break;
        }
      }
    }
    const read = hit >= 0 ? cum[hit]! : 0;
    if (hit >= 0) {
      const e = this.entries.get(hashes[hit]!)!;
      e.expiresAt = now + e.ttlMs;
    }

    let upTo1h = read;
    let upToLast = read;
    for (const b of bps) {
      const tokens = cum[b.pos]!;
      if (tokens < minCacheable) continue;
      if (b.pos <= hit) {
        // Already inside the hit prefix: kept warm at no charge.
        this.touch(hashes[b.pos]!, TTL_MS[b.ttl], now);
        continue;
      }
      this.touch(hashes[b.pos]!, TTL_MS[b.ttl], now);
      if (b.ttl === '1h') upTo1h = tokens;
      upToLast = tokens;
    }
    return {
      input: total - upToLast,
      cacheWrite5m: upToLast - upTo1h,
      cacheWrite1h: upTo1h - read,
      cacheRead: read,
    };
  }

  private touch(key: string, ttlMs: number, now: number): void {
    const e = this.entries.get(key);
    if (e) {
      e.ttlMs = Math.max(e.ttlMs, ttlMs);
      e.expiresAt = Math.max(e.expiresAt, now + ttlMs);
      return;
    }
    this.entries.set(key, { expiresAt: now + ttlMs, ttlMs });
    if (++this.touches % SWEEP_EVERY === 0 || this.entries.size > MAX_ENTRIES) this.sweep(now);
  }

  private sweep(now: number): void {
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
    // Still too many live entries: drop the oldest inserted (Map keeps insertion order).
    for (const k of this.entries.keys()) {
      if (this.entries.size <= MAX_ENTRIES) break;
      this.entries.delete(k);
    }
  }
}
