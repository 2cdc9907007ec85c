/**
 * A Map that forgets its least recently used entries, without moving an entry on each use.
 *
 * The usual way — `delete(k)` then `set(k, v)`, so the Map's insertion order is the order of use —
 * appends an entry per call, and V8 rebuilds a Map's hash table every few appends. An outgrown
 * table keeps a pointer to the one that replaced it (for iterators), so once one was promoted to
 * the old generation every later table stayed alive through each scavenge until the next full
 * collection: ~300 bytes a call copied and promoted on the gateway's hot path (`bench/profile.ts
 * --alloc-survivors`, the per-stream memories). Here an entry records when it was last used and is
 * updated in place; when the bounds are passed, the oldest go in one batch, down to a low-water
 * mark, so the sort that finds them runs once per many new keys, not once per call.
 */
export class RecentMap<K, V> {
  private readonly entries = new Map<K, { value: V; used: number }>();
  private clock = 0;

  get size(): number {
    return this.entries.size;
  }

  /** The value, marked as just used. */
  get(key: K): V | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    e.used = ++this.clock;
    return e.value;
  }

  /** Sets the value (in place if the key is known), marked as just used. */
  set(key: K, value: V): void {
    const e = this.entries.get(key);
    if (e !== undefined) {
      e.value = value;
      e.used = ++this.clock;
    } else this.entries.set(key, { value, used: ++this.clock });
  }

  delete(key: K): boolean {
    return this.entries.delete(key);
  }

  /**
   * When `over()`, forgets the least recently used entries, oldest first, until `under()` (a
   * low-water mark below the bound, so a burst of new keys does not sort on every call); `forgot`
   * sees each entry it drops.
   */
  evict(over: () => boolean, under: () => boolean, forgot?: (key: K, value: V) => void): void {
    if (!over()) return;
    const oldest = [...this.entries].sort((a, b) => a[1].used - b[1].used);
    for (const [key, e] of oldest) {
      if (under()) break;
      this.entries.delete(key);
      forgot?.(key, e.value);
    }
  }
}
