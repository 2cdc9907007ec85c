import { describe, expect, it } from 'vitest';
import { RecentMap } from '../../../runtime/gateway/recent.ts';

describe('RecentMap', () => {
  it('forgets the least recently used first, a use being a get or a set', () => {
    const m = new RecentMap<string, number>();
    for (const k of ['a', 'b', 'c', 'd']) m.set(k, k.charCodeAt(0));
    m.get('a'); // a is now the most recent
    m.set('b', 0); // so is b, updated in place
    const forgot: string[] = [];
    m.evict(
      () => m.size > 3,
      () => m.size <= 2,
      (k) => forgot.push(k),
    );
    expect(forgot).toEqual(['c', 'd']);
    expect(m.get('a')).toBe(97);
    expect(m.get('b')).toBe(0);
    expect(m.get('c')).toBeUndefined();
  });

  it('does nothing until over its bound, then drops down to the low-water mark in one go', () => {
    const m = new RecentMap<number, number>();
    let sorts = 0;
    const over = () => m.size > 100;
    const under = () => m.size <= 90;
    for (let i = 0; i < 1_000; i++) {
      m.set(i, i);
      const before = m.size;
      m.evict(over, under);
      if (m.size < before) sorts++;
      expect(m.size).toBeLessThanOrEqual(100);
    }
    // Once per 11 new keys past the bound, not once per key.
    expect(sorts).toBe(Math.floor((1_000 - 101) / 11) + 1);
    // The survivors are the newest.
    expect(m.get(999)).toBe(999);
    expect(m.get(0)).toBeUndefined();
  });

  it('an in-place set keeps its size; delete removes', () => {
    const m = new RecentMap<string, string>();
    m.set('k', 'v1');
    m.set('k', 'v2');
    expect(m.size).toBe(1);
    expect(m.get('k')).toBe('v2');
    expect(m.delete('k')).toBe(true);
    expect(m.size).toBe(0);
  });
});
