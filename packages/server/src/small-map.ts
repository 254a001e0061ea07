/**
 * A Map for what usually holds one entry (a connection's subscriptions): the first entry is kept in two fields, and a
 * real Map is made only for a second one. A Map and its hash table cost about 260 bytes, which an idle connection
 * with one subscription paid for nothing. Iteration order is insertion order, as a Map's.
 */
export class SmallMap<K, V> implements Map<K, V> {
  private one = false;
  private oneKey: K | undefined;
  private oneValue: V | undefined;
  private map: Map<K, V> | undefined;

  get size(): number {
    if (this.map) return this.map.size;
    return this.one ? 1 : 0;
  }

  get(key: K): V | undefined {
    if (this.map) return this.map.get(key);
    return this.one && this.oneKey === key ? this.oneValue : undefined;
  }

  has(key: K): boolean {
    if (this.map) return this.map.has(key);
    return this.one && this.oneKey === key;
  }

  set(key: K, value: V): this {
    if (this.map) {
      this.map.set(key, value);
    } else if (!this.one || this.oneKey === key) {
      this.one = true;
      this.oneKey = key;
      this.oneValue = value;
    } else {
      this.map = new Map([
        [this.oneKey as K, this.oneValue as V],
        [key, value],
      ]);
      this.clearOne();
    }
    return this;
  }

  delete(key: K): boolean {
    if (this.map) return this.map.delete(key);
    if (!this.one || this.oneKey !== key) return false;
    this.clearOne();
    return true;
  }

  clear(): void {
    this.map = undefined;
    this.clearOne();
  }

  forEach(fn: (value: V, key: K, map: Map<K, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }

  *entries(): MapIterator<[K, V]> {
    if (this.map) {
      yield* this.map.entries();
      return;
    }
    if (this.one) yield [this.oneKey as K, this.oneValue as V];
  }

  *keys(): MapIterator<K> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return 'SmallMap';
  }

  private clearOne(): void {
    this.one = false;
    this.oneKey = undefined;
    this.oneValue = undefined;
  }
}
