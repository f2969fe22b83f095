/**
 * A memo of short, clean protobuf strings: same bytes → same string, without a call into C++ to
 * decode them. Attribute keys and many values repeat on every span of a request (and across
 * requests), and decoding them was a quarter of the protobuf path's time.
 *
 * Why module state in a pure stage: the memo is invisible in results (a hit returns exactly what
 * decoding would), bounded (SLOTS × MAX_BYTES bytes plus SLOTS strings), and only holds strings
 * that needed no sanitization, so the sanitized counters never depend on it. Direct-mapped: a
 * collision simply replaces the slot.
 */

const SLOTS = 4096;
/** Longer strings are decoded every time. */
export const MAX_CACHED_BYTES = 48;

const arena = Buffer.alloc(SLOTS * MAX_CACHED_BYTES);
const lengths = new Int32Array(SLOTS).fill(-1);
const texts: string[] = new Array<string>(SLOTS).fill('');
/** JSON.stringify of texts[slot], computed on first use. */
const quoted: (string | undefined)[] = new Array<string | undefined>(SLOTS).fill(undefined);

/** The slot these bytes hash to (FNV-1a over the bytes). Callers keep end - start ≤ MAX_CACHED_BYTES. */
export function slotOf(buf: Uint8Array, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ buf[i], 0x01000193);
  return (hash ^ (hash >>> 16)) & (SLOTS - 1);
}

/** True when `slot` holds exactly the bytes buf[start..end). */
export function slotHolds(slot: number, buf: Uint8Array, start: number, end: number): boolean {
  const length = end - start;
  if (lengths[slot] !== length) return false;
  let offset = slot * MAX_CACHED_BYTES;
  for (let i = start; i < end; i++, offset++) if (arena[offset] !== buf[i]) return false;
  return true;
}

export function cachedText(slot: number): string {
  return texts[slot];
}

export function cachedQuoted(slot: number): string {
  let json = quoted[slot];
  if (json === undefined) {
    json = JSON.stringify(texts[slot]);
    quoted[slot] = json;
  }
  return json;
}

/** Remembers a clean (unsanitized) decoding of buf[start..end) in `slot`. */
export function remember(slot: number, buf: Uint8Array, start: number, end: number, text: string): void {
  let offset = slot * MAX_CACHED_BYTES;
  for (let i = start; i < end; i++, offset++) arena[offset] = buf[i];
  lengths[slot] = end - start;
  texts[slot] = text;
  quoted[slot] = undefined;
}
