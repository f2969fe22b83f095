/**
 * Forgets the expired entries of a Map kept in expiry order (every entry is set, or deleted and set
 * again, with an expiry no earlier than those before it): walks from the front, stops at the first
 * live entry, and does so at most once per interval.
 *
 * Why the interval: V8 keeps a Map's deleted entries in place until the Map rehashes, and a walk
 * from the front steps over every one of them. In the Maps this serves, most entries are deleted
 * soon after they are set (service-graph halves paired within their own request, query-cache marks
 * set again on every commit), so a walk per call cost time linear in those deletions. An entry can
 * outlive its expiry by up to one interval; a user that needs the exact time compares it itself.
 *
 * State: the time of the next walk.
 */
export class ExpiryWalk<K, V> {
  readonly #map: Map<K, V>;
  readonly #expiresAt: (value: V) => number;
  readonly #intervalMs: number;
  #next = 0;

  constructor(map: Map<K, V>, expiresAt: (value: V) => number, intervalMs = 250) {
    this.#map = map;
    this.#expiresAt = expiresAt;
    this.#intervalMs = intervalMs;
  }

  /** If a walk is due at `now`, deletes the entries expired by then, calling `onExpired` for each. */
  forget(now: number, onExpired?: (value: V) => void): void {
    if (now < this.#next) return;
    this.#next = now + this.#intervalMs;
    for (const [key, value] of this.#map) {
      if (this.#expiresAt(value) > now) break;
      this.#map.delete(key);
      onExpired?.(value);
    }
  }
}
