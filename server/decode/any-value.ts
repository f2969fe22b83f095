/**
 * The stored JSON forms of OTLP attributes, written as JSON text directly (no intermediate objects).
 *
 * Stored JSON forms (every string already sanitized: valid UTF-8, no NUL, no lone surrogate, so
 * the text is valid JSON and accepted by PostgreSQL jsonb):
 *
 * - `attributes`, `resourceAttributes`, `scopeAttributes`: a JSON object keyed by attribute key,
 *   e.g. `{"http.method":"GET","http.status_code":200}`. A duplicate key keeps its last value.
 *   At most `maxAttributesPerSpan` attributes (the first ones) are kept; the rest are added to the
 *   object's dropped attributes count. With attribute sharing (attribute-sharing.ts) a span's
 *   attributes are written as two such objects with no key in common, `sharedAttributes` and
 *   `attributes`: together they are the span's attributes.
 * - AnyValue:
 *   - string → JSON string (truncated at a character boundary to `maxAttributeValueBytes` UTF-8 bytes)
 *   - bool → `true` / `false`
 *   - int (int64) → a bare JSON number written exactly, e.g. `9223372036854775807`
 *     (jsonb numeric holds every int64 exactly; JavaScript readers should parse it with care).
 *     An OTLP/JSON intValue given as a number beyond int64 is stored as the double it is.
 *   - double → a JSON number that always carries a fraction or exponent, e.g. `1.5`, `2.0`, `1e-7`,
 *     so that it stays distinguishable from an int (also in jsonb); NaN, Infinity and -Infinity are
 *     the strings `"NaN"`, `"Infinity"`, `"-Infinity"`
 *   - bytes → base64 string (standard alphabet, padded), truncated to `maxAttributeValueBytes` bytes
 *     before encoding
 *   - array → JSON array of AnyValues
 *   - kvlist → JSON object of AnyValues (same rules as attributes, without the count cap)
 *   - empty / unset AnyValue → `null`
 * - `events`: a JSON array of
 *   `{"timeUnixNano":"<decimal string>","name":"…","attributes":{…},"droppedAttributesCount":n}`
 * - `links`: a JSON array of
 *   `{"traceId":"<hex>","spanId":"<hex>","traceState":"…","flags":n,"attributes":{…},"droppedAttributesCount":n}`
 *   (ids are lowercase hex of the bytes received; an OTLP/JSON link id that is not valid hex is stored
 *   as ""; flags is the fixed32 as an unsigned number)
 * - in both, a field at its OTLP default (attributes {}, droppedAttributesCount 0, traceState "",
 *   flags 0) is left out, as OTLP/JSON does (migrations/000007)
 */

import { appendToSetKey, type AttributeSharing } from './attribute-sharing.js';

/** Integral doubles at or above this magnitude print in exponent form (String(1e21) === '1e+21'). */
const EXPONENT_FORM_THRESHOLD = 1e21;

/** Writes a double so it stays distinguishable from an int64: integral values get a `.0` suffix. */
export function formatDouble(value: number): string {
  if (Number.isInteger(value)) {
    if (Object.is(value, -0)) return '-0.0';
    if (Math.abs(value) < EXPONENT_FORM_THRESHOLD) return `${value}.0`;
    return `${BigInt(value)}.0`;
  }
  if (Number.isNaN(value)) return '"NaN"';
  if (value === Infinity) return '"Infinity"';
  if (value === -Infinity) return '"-Infinity"';
  return String(value);
}

/**
 * Collects key / value pairs of one attribute map, both as JSON text (the key quoted), and writes
 * them as one JSON object.
 * Keeps the first `max` pairs offered; `received` counts every pair offered, kept or not.
 */
export class AttributeList {
  readonly max: number;
  private readonly keys: string[] = [];
  private readonly values: string[] = [];
  /** writeSplit's scratch: indexes of the shared pairs. */
  private readonly sharedIndexes: number[] = [];
  length = 0;
  received = 0;

  constructor(max: number) {
    this.max = max;
  }

  reset(): void {
    this.length = 0;
    this.received = 0;
  }

  /** True when the next pair offered will be kept; counts the offer either way. */
  admitNext(): boolean {
    return this.received++ < this.max;
  }

  /** Adds a pair already admitted by admitNext (or to an uncapped list). */
  push(jsonKey: string, jsonValue: string): void {
    this.keys[this.length] = jsonKey;
    this.values[this.length] = jsonValue;
    this.length++;
  }

  /** The (quoted) key of the pair pushed last. */
  lastKey(): string {
    return this.keys[this.length - 1];
  }

  get dropped(): number {
    return this.received - this.length;
  }

  toJson(): string {
    const n = this.length;
    if (n === 0) return '{}';
    const keys = this.keys;
    const values = this.values;
    if (hasDuplicate(keys, n)) return writeDedupedObject(keys, values, n);
    let out = '{' + keys[0] + ':' + values[0];
    for (let i = 1; i < n; i++) out += ',' + keys[i] + ':' + values[i];
    return out + '}';
  }

  /**
   * Writes the pairs as two JSON objects with no key in common: those `sharing` stores in the
   * span's attribute set into `target.sharedAttributes`, the rest into `target.attributes` ('{}'
   * when a side has none). A duplicate key keeps its last value, as in toJson.
   */
  writeSplit(sharing: AttributeSharing, target: SplitAttributes): void {
    let n = this.length;
    let keys = this.keys;
    let values = this.values;
    if (hasDuplicate(keys, n)) {
      const byKey = dedupedPairs(keys, values, n);
      keys = [...byKey.keys()];
      values = [...byKey.values()];
      n = keys.length;
    }
    const shared = this.sharedIndexes;
    let sharedCount = 0;
    let own = '';
    let setKey = '';
    for (let i = 0; i < n; i++) {
      const pairId = sharing.pairId(keys[i], values[i]);
      if (pairId >= 0) {
        setKey = appendToSetKey(setKey, pairId);
        shared[sharedCount++] = i;
      } else {
        own = (own === '' ? '{' : own + ',') + keys[i] + ':' + values[i];
      }
    }
    target.attributes = own === '' ? '{}' : own + '}';
    if (sharedCount === 0) {
      target.sharedAttributes = '{}';
      return;
    }
    let text = sharing.setText(setKey);
    if (text === undefined) {
      text = '{';
      for (let j = 0; j < sharedCount; j++) text += (j === 0 ? '' : ',') + keys[shared[j]] + ':' + values[shared[j]];
      text += '}';
      sharing.rememberSet(setKey, text);
    }
    target.sharedAttributes = text;
  }
}

/** Where AttributeList.writeSplit puts a span's two attribute objects. */
export interface SplitAttributes {
  attributes: string;
  sharedAttributes: string;
}

const QUADRATIC_CHECK_MAX = 12;

function hasDuplicate(keys: string[], n: number): boolean {
  if (n <= QUADRATIC_CHECK_MAX) {
    for (let i = 1; i < n; i++) {
      const key = keys[i];
      for (let j = 0; j < i; j++) if (keys[j] === key) return true;
    }
    return false;
  }
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    if (seen.has(keys[i])) return true;
    seen.add(keys[i]);
  }
  return false;
}

/** Last value wins, at the position of the first occurrence (like JSON.parse and jsonb). */
function writeDedupedObject(keys: string[], values: string[], n: number): string {
  let out = '';
  for (const [key, value] of dedupedPairs(keys, values, n)) out += (out === '' ? '{' : ',') + key + ':' + value;
  return out + '}';
}

function dedupedPairs(keys: string[], values: string[], n: number): Map<string, string> {
  const byKey = new Map<string, string>();
  for (let i = 0; i < n; i++) byKey.set(keys[i], values[i]);
  return byKey;
}

/**
 * Writes the JSON text of one span event. Fields at their OTLP default (attributes {},
 * droppedAttributesCount 0) are left out, as OTLP/JSON does; readers take a missing field as its
 * default (query/trace-model.ts).
 */
export function writeEventJson(timeUnixNano: bigint, name: string, attributes: string, dropped: number): string {
  return (
    '{"timeUnixNano":"' +
    timeUnixNano.toString() +
    '","name":' +
    JSON.stringify(name) +
    (attributes === '{}' ? '' : ',"attributes":' + attributes) +
    (dropped === 0 ? '' : ',"droppedAttributesCount":' + dropped) +
    '}'
  );
}

/**
 * Writes the JSON text of one span link. Ids are lowercase hex. Fields at their OTLP default
 * (traceState "", flags 0, attributes {}, droppedAttributesCount 0) are left out.
 */
export function writeLinkJson(
  traceIdHex: string,
  spanIdHex: string,
  traceState: string,
  flags: number,
  attributes: string,
  dropped: number,
): string {
  return (
    '{"traceId":"' +
    traceIdHex +
    '","spanId":"' +
    spanIdHex +
    '"' +
    (traceState === '' ? '' : ',"traceState":' + JSON.stringify(traceState)) +
    (flags === 0 ? '' : ',"flags":' + flags) +
    (attributes === '{}' ? '' : ',"attributes":' + attributes) +
    (dropped === 0 ? '' : ',"droppedAttributesCount":' + dropped) +
    '}'
  );
}
