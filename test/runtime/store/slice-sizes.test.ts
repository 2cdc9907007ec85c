import { describe, expect, it } from 'vitest';
import { SliceSizes } from '../../../runtime/store/slice-sizes.ts';

describe('slice sizes (demand)', () => {
  it('doubles after a slice used up within a second, up to 64×; halves after one that lasted 8 s', () => {
    const sizes = new SliceSizes();
    expect(sizes.next('alice', undefined, 0)).toBe(1);
    let at = 0;
    const seen: number[] = [];
    for (let i = 0; i < 8; i++) {
      seen.push(sizes.next('alice', { grantedAt: at, retired: false }, at + 500));
      at += 500;
    }
    expect(seen).toEqual([2, 4, 8, 16, 32, 64, 64, 64]);
    // A slice that lasted between 1 and 8 s: the size stands.
    expect(sizes.next('alice', { grantedAt: 0, retired: false }, 3_000)).toBe(64);
    expect(sizes.next('alice', { grantedAt: 0, retired: false }, 9_000)).toBe(32);
    // A retired slice (revoked, superseded) says nothing about demand.
    expect(sizes.next('alice', { grantedAt: 0, retired: true }, 10)).toBe(32);
    // Another identity has its own; an identity gone idle starts again.
    expect(sizes.next('bob', { grantedAt: 0, retired: false }, 10)).toBe(2);
    sizes.forget('alice');
    expect(sizes.next('alice', undefined, 0)).toBe(1);
  });
});
