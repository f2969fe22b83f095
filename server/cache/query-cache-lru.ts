/**
 * A least-recently-used map bounded by entries and by (estimated) bytes, whose entries also expire.
 *
 * Why it holds state: it is the in-process query cache's memory. A Map keeps insertion order, so
 * moving an entry to the end on every read makes the first entry the least recently used; eviction
 * takes from the front until both bounds hold again. Expired entries are dropped when read, or when
 * eviction reaches them.
 */

interface Slot<V> {
  value: V;
  bytes: number;
  expiresAt: number;
}

export interface LruLimits {
  maxEntries: number;
  maxBytes: number;
}

export class BoundedLru<V> {
  readonly #slots = new Map<string, Slot<V>>();
  readonly #limits: LruLimits;
  readonly #now: () => number;
  #bytes = 0;

  constructor(limits: LruLimits, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
  }

  get size(): number {
    return this.#slots.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The live value, now the most recently used; undefined when absent or expired. */
  get(key: string): V | undefined {
    const slot = this.#slots.get(key);
    if (slot === undefined) return undefined;
    this.#slots.delete(key);
    if (slot.expiresAt <= this.#now()) {
      this.#bytes -= slot.bytes;
      return undefined;
    }
    this.#slots.set(key, slot);
    return slot.value;
  }

  /** Stores a value for ttlMs, evicting the least recently used; one bigger than maxBytes is not kept. */
  set(key: string, value: V, bytes: number, ttlMs: number): void {
    this.delete(key);
    if (bytes > this.#limits.maxBytes) return;
    this.#slots.set(key, { value, bytes, expiresAt: this.#now() + ttlMs });
    this.#bytes += bytes;
    // Only walk from the front when over a bound: every get() leaves a deleted entry there that
    // V8 keeps until the Map rehashes, and the walk steps over each of them.
    if (!this.#overLimits()) return;
    for (const [oldest, slot] of this.#slots) {
      this.#slots.delete(oldest);
      this.#bytes -= slot.bytes;
      if (!this.#overLimits()) break;
    }
  }

  #overLimits(): boolean {
    return this.#slots.size > this.#limits.maxEntries || this.#bytes > this.#limits.maxBytes;
  }

  delete(key: string): void {
    const slot = this.#slots.get(key);
    if (slot === undefined) return;
    this.#slots.delete(key);
    this.#bytes -= slot.bytes;
  }

  clear(): void {
    this.#slots.clear();
    this.#bytes = 0;
  }
}
