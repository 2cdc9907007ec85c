import type { TokenCounts } from '../store/port.ts';
import type { MessagesBody } from './messages.ts';
import { chainHash, type Drift, diffStatic, type Fingerprint, PrefixMemo } from './prefix.ts';
import { RecentMap } from './recent.ts';

/**
 * Per-stream memory of the last call's prompt prefix (a stream is one key + workflow/session):
 * catches drift in the frozen part, and computes what the cache *should* have read so that a
 * hit rate well below it raises an alarm. In memory and bounded (LRU); on several replicas each
 * sees the streams it serves, which is enough to catch a drifting prompt within a few calls.
 */
interface StreamState {
  last: Pick<Fingerprint, 'prefixHash' | 'staticHash' | 'tools' | 'system' | 'prefixBlocks'>;
  /** Tokens the last call's cache entry covers (its cache reads + writes). */
  cached: number;
  at: number;
  window: Array<{ expected: number; actual: number }>;
  alarmed: boolean;
}

export interface CacheVerdict {
  /** Cache-read tokens the stable prefix should have produced for this call. */
  expected: number;
  actual: number;
  /** Set when the rolling hit rate stays well below expectation (once per episode). */
  alarm?: { expectedRead: number; actualRead: number; calls: number };
}

const MAX_STREAMS = 5_000;
const WINDOW = 20;
const MIN_CALLS = 5;
/** Below this share of the expected cache reads the stream is unhealthy. */
const RATIO = 0.8;
const TTL_MS = 5 * 60_000;

/** Cache health of one workflow (or `(none)`): input tokens, and cache reads expected and seen. */
export interface CacheTally {
  workflow: string;
  calls: number;
  inputTokens: number;
  expectedRead: number;
  actualRead: number;
}

const MAX_TALLIES = 1_000;

export class StreamTracker {
  private readonly streams = new RecentMap<string, StreamState>();
  private readonly tallies = new Map<string, CacheTally>();
  private readonly prompts = new PrefixMemo();
  readonly since = Date.now();

  /** A call's prompt fingerprint; the stream's unchanged prefix is not serialised or hashed again. */
  fingerprint(key: string, body: MessagesBody): Fingerprint {
    return this.prompts.fingerprint(key, body);
  }

  /**
   * Per workflow, since this process started: how much of the input the cache should have read
   * (what each call's stable prefix allowed) against what it read. The expected hit rate is
   * expectedRead / inputTokens; the observed one actualRead / inputTokens.
   */
  cacheHealth(): CacheTally[] {
    return [...this.tallies.values()].map((t) => ({ ...t }));
  }

  /** Compares a call's prefix with the stream's previous one; undefined if nothing drifted. */
  drift(key: string, fp: Fingerprint): Drift | undefined {
    const s = this.streams.get(key);
    return s ? diffStatic(s.last as Fingerprint, fp) : undefined;
  }

  /** Records a completed call and judges the cache against what its prefix allows. */
  observe(key: string, fp: Fingerprint, tokens: TokenCounts, now: number, workflow?: string): CacheVerdict {
    const s = this.streams.get(key);
    let expected = 0;
    if (s && now - s.at < TTL_MS && chainHash(fp, s.last.prefixBlocks) === s.last.prefixHash)
      expected = s.cached;
    const actual = tokens.cacheRead;
    const state: StreamState = s ?? { last: fp, cached: 0, at: now, window: [], alarmed: false };
    state.last = {
      prefixHash: fp.prefixHash,
      staticHash: fp.staticHash,
      tools: fp.tools,
      system: fp.system.map((x) => (x.length > 65_536 ? x.slice(0, 65_536) : x)),
      prefixBlocks: fp.prefixBlocks,
    };
    state.cached = tokens.cacheRead + tokens.cacheWrite5m + tokens.cacheWrite1h;
    state.at = now;
    if (expected > 0) {
      state.window.push({ expected, actual: Math.min(actual, expected) });
      if (state.window.length > WINDOW) state.window.shift();
    }
    if (!s) {
      this.streams.set(key, state);
      this.streams.evict(
        () => this.streams.size > MAX_STREAMS,
        () => this.streams.size <= MAX_STREAMS * 0.9,
      );
    }

    const wf = workflow ?? '(none)';
    let tally = this.tallies.get(wf);
    if (!tally && this.tallies.size < MAX_TALLIES) {
      tally = { workflow: wf, calls: 0, inputTokens: 0, expectedRead: 0, actualRead: 0 };
      this.tallies.set(wf, tally);
    }
    if (tally) {
      tally.calls++;
      tally.inputTokens += tokens.input + tokens.cacheRead + tokens.cacheWrite5m + tokens.cacheWrite1h;
      tally.expectedRead += expected;
      tally.actualRead += actual;
    }

    const verdict: CacheVerdict = { expected, actual };
    const sumE = state.window.reduce((n, w) => n + w.expected, 0);
    const sumA = state.window.reduce((n, w) => n + w.actual, 0);
    const unhealthy = state.window.length >= MIN_CALLS && sumA < RATIO * sumE;
    if (unhealthy && !state.alarmed) {
      state.alarmed = true;
      verdict.alarm = { expectedRead: sumE, actualRead: sumA, calls: state.window.length };
    } else if (!unhealthy) state.alarmed = false;
    return verdict;
  }
}
