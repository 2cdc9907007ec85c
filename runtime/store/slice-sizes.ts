/**
 * Slices sized to demand: an identity whose slice was used up within FAST_MS gets its next one
 * twice as large (up to MAX_GROWTH times `callsPerLease`), one whose slice lasted over SLOW_MS half
 * as large again. At a few thousand calls a second, a slice of 64 calls would be a grant every
 * 20 ms; near a ceiling the store still caps every slice at the room over `share`.
 */
const FAST_MS = 1_000;
const SLOW_MS = 8_000;
const MAX_GROWTH = 64;

/** What the sizing needs of the slice an identity holds now. */
interface Current {
  grantedAt: number;
  retired: boolean;
}

export class SliceSizes {
  /** Per identity, how many times callsPerLease its next slice asks for. */
  private readonly growth = new Map<string, number>();

  /** The multiple of callsPerLease for `key`'s next slice, replacing `current` (used up) at `now`. */
  next(key: string, current: Current | undefined, now: number): number {
    let g = this.growth.get(key) ?? 1;
    if (current && !current.retired) {
      const lasted = now - current.grantedAt;
      if (lasted < FAST_MS) g = Math.min(MAX_GROWTH, g * 2);
      else if (lasted > SLOW_MS) g = Math.max(1, g / 2);
      this.growth.set(key, g);
    }
    return g;
  }

  /** An identity gone idle starts again from 1. */
  forget(key: string): void {
    this.growth.delete(key);
  }
}
