import { describe, expect, it } from 'vitest';
import { newId } from '../../runtime/ids.ts';

describe('newId', () => {
  it('is the prefix, 9 base36 digits of time, 3 of a counter and 8 hex digits of randomness', () => {
    const before = Date.now();
    const id = newId('req');
    const after = Date.now();
    const m = /^req_([0-9a-z]{9})([0-9a-z]{3})([0-9a-f]{8})$/.exec(id);
    expect(m).not.toBeNull();
    const at = Number.parseInt(m![1]!, 36);
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(after);
  });

  it('is unique and sorts by creation, within a millisecond too', () => {
    const ids = Array.from({ length: 5000 }, () => newId('led'));
    expect(new Set(ids).size).toBe(ids.length);
    // Within one millisecond the counter orders them; across milliseconds the time does.
    const keys = ids.map((id) => id.slice(4, 16));
    expect([...keys].sort()).toEqual(keys);
    // The random part uses every hex digit over many ids.
    const digits = new Set(ids.flatMap((id) => [...id.slice(16)]));
    expect(digits.size).toBe(16);
  });
});
