/**
 * OpenAI's prompt caching as the emulator bills it (research §2, OpenAI's prompt caching guide):
 *
 * - Before GPT-5.6: automatic and free. Any prefix of at least 1,024 tokens that an earlier
 *   request sent is reused; hits grow in 128-token steps past the first 1,024
 *   (`cached_tokens` = 1024 + 128·k). Writing costs nothing (no write is reported).
 * - GPT-5.6 and later: exact matching at breakpoints. By default one implicit breakpoint sits at
 *   the end of the prompt; a request reads the longest live entry that an earlier request wrote
 *   at one of its unit boundaries, and writes its own breakpoint (at least 1,024 tokens) at 1.25×
 *   input, reported in `cache_write_tokens` (split by TTL: `30m`, or `12h` when
 *   `prompt_cache_options.ttl` asks for it). Boundaries are not rounded to a block.
 *
 * Prefixes are hashed unit by unit, chained from the model id, so a changed model or tool list
 * misses everything after it. The per-request framing tokens are never cached.
 */
import { createHash } from 'node:crypto';
import { CACHE_STEP, MIN_CACHEABLE, type OpenAIModel } from './models.ts';
import type { Unit } from './prompt.ts';

export interface OpenAICacheUsage {
  /** Uncached input tokens. */
  input: number;
  cacheRead: number;
  cacheWrite30m: number;
  cacheWrite12h: number;
}

const TTL_MS = { '30m': 30 * 60_000, '12h': 12 * 3_600_000 } as const;
/** Automatic caching (before GPT-5.6) keeps prefixes for up to an hour of inactivity here. */
const AUTO_TTL_MS = 3_600_000;
const MAX_ENTRIES = 100_000;

export class OpenAIPromptCache {
  private readonly entries = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  clear(): void {
    this.entries.clear();
  }

  /** Accounts one request's prompt; `framing` tokens are always uncached input. */
  account(
    model: OpenAIModel,
    units: readonly Unit[],
    framing: number,
    ttl: '30m' | '12h' = '30m',
  ): OpenAICacheUsage {
    const hashes: string[] = [];
    const cum: number[] = [];
    const h = createHash('sha256').update(model.id);
    let run = 0;
    for (const u of units) {
      h.update('\u0001').update(u.key);
      run += u.tokens;
      cum.push(run);
      hashes.push(h.copy().digest('base64'));
    }
    const total = run + framing;
    const now = this.now();
    let hit = -1;
    for (let i = units.length - 1; i >= 0; i--) {
      if (cum[i]! < MIN_CACHEABLE) break;
      const exp = this.entries.get(hashes[i]!);
      if (exp !== undefined && exp > now) {
        hit = i;
        break;
      }
    }
    const none = { input: total, cacheRead: 0, cacheWrite30m: 0, cacheWrite12h: 0 };
    if (units.length === 0) return none;
    if (!model.cacheWrites) {
      for (let i = 0; i < units.length; i++)
        if (cum[i]! >= MIN_CACHEABLE) this.set(hashes[i]!, now + AUTO_TTL_MS);
      if (hit < 0) return none;
      const read = MIN_CACHEABLE + Math.floor((cum[hit]! - MIN_CACHEABLE) / CACHE_STEP) * CACHE_STEP;
      return { ...none, input: total - read, cacheRead: read };
    }
    const read = hit >= 0 ? cum[hit]! : 0;
    if (hit >= 0) this.set(hashes[hit]!, now + TTL_MS[ttl]);
    const last = units.length - 1;
    const write = cum[last]! >= MIN_CACHEABLE ? cum[last]! - read : 0;
    if (write > 0) this.set(hashes[last]!, now + TTL_MS[ttl]);
    return {
      input: total - read - write,
      cacheRead: read,
      cacheWrite30m: ttl === '30m' ? write : 0,
      cacheWrite12h: ttl === '12h' ? write : 0,
    };
  }

  private set(key: string, expiresAt: number): void {
    this.entries.set(key, Math.max(expiresAt, this.entries.get(key) ?? 0));
    if (this.entries.size > MAX_ENTRIES) {
      const now = this.now();
      for (const [k, e] of this.entries)
        if (e <= now || this.entries.size > MAX_ENTRIES) this.entries.delete(k);
    }
  }
}
