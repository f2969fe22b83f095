/**
 * Which span attribute pairs are stored once per distinct set (table `attribute_sets`,
 * migrations/000006) instead of in every span row: the pairs of keys that have shown few distinct
 * values. Real spans repeat method, route, status code, server address, user agent… on every row;
 * ids, URLs with query strings and measurements differ on each, and sharing those would only add a
 * set per span.
 *
 * State, per attribute key (the quoted JSON key): the distinct value texts seen so far. A key that
 * shows more than `maxValuesPerKey` of them is inline from then on and its values are released. At
 * most `maxKeys` keys are tracked (later keys stay inline), and values longer than
 * `maxValueChars` are inline and not remembered, so the state stays under
 * maxKeys × maxValuesPerKey × maxValueChars characters whatever the traffic.
 *
 * Each shared pair gets a small id, and a span's set is known by the ids of its pairs: the text of
 * a set is built once and then handed to every row of it, so rows share one string.
 *
 * The split is a storage layout only: readers merge the set and the row, so a key's place may
 * differ between spans, instances and restarts without changing any answer. The state is shared by
 * every tenant: a tenant can only make another's keys inline, which costs bytes, not data.
 */

export interface AttributeSharingLimits {
  maxKeys: number;
  maxValuesPerKey: number;
  maxValueChars: number;
}

export const DEFAULT_SHARING_LIMITS: AttributeSharingLimits = {
  maxKeys: 4096,
  maxValuesPerKey: 32,
  maxValueChars: 128,
};

/** Set texts remembered by setText(). */
const MAX_SETS = 4096;

/** A key's values seen so far (value → pair id), or INLINE once it has shown too many. */
type KeyState = Map<string, number> | typeof INLINE;
const INLINE = null;

export class AttributeSharing {
  readonly #limits: AttributeSharingLimits;
  readonly #keys = new Map<string, KeyState>();
  /** Pair ids are never reused; at most maxKeys × maxValuesPerKey are ever handed out. */
  #nextPairId = 0;
  readonly #sets = new Map<string, string>();

  constructor(limits: AttributeSharingLimits = DEFAULT_SHARING_LIMITS) {
    this.#limits = limits;
  }

  /**
   * The pair's id (>= 0) when it is stored in the span's attribute set, else -1; learns from the
   * pair either way. Equal pairs get equal ids.
   */
  pairId(jsonKey: string, jsonValue: string): number {
    if (jsonValue.length > this.#limits.maxValueChars) return -1;
    let values = this.#keys.get(jsonKey);
    if (values === undefined) {
      if (this.#keys.size >= this.#limits.maxKeys) return -1;
      values = new Map();
      this.#keys.set(jsonKey, values);
    }
    if (values === INLINE) return -1;
    const id = values.get(jsonValue);
    if (id !== undefined) return id;
    if (values.size >= this.#limits.maxValuesPerKey) {
      this.#keys.set(jsonKey, INLINE);
      return -1;
    }
    values.set(jsonValue, this.#nextPairId);
    return this.#nextPairId++;
  }

  /**
   * The set text remembered for `setKey` (its pairs' ids in order, see setKeyOf), so that the
   * rows of one set share one string and no row builds it again; undefined when not remembered.
   */
  setText(setKey: string): string | undefined {
    return this.#sets.get(setKey);
  }

  /** Remembers a set's text; up to MAX_SETS of them, then starts over. */
  rememberSet(setKey: string, text: string): void {
    if (this.#sets.size >= MAX_SETS) this.#sets.clear();
    this.#sets.set(setKey, text);
  }

  /** Keys tracked so far, shared and inline (for tests and metrics). */
  get trackedKeys(): number {
    return this.#keys.size;
  }
}

/** Appends a pair id to a set key: two UTF-16 units, enough for the ids pairId hands out. */
export function appendToSetKey(setKey: string, pairId: number): string {
  return setKey + String.fromCharCode(pairId & 0xffff, pairId >>> 16);
}
