/**
 * Makes every string safe for PostgreSQL text and jsonb, and counts what it changed:
 * invalid UTF-8 (protobuf) and lone surrogates (JSON) become U+FFFD, NUL becomes U+FFFD, and
 * attribute values longer than maxAttributeValueBytes UTF-8 bytes are cut at a character boundary.
 * Each kind is counted once per string that needed it.
 */
import { isUtf8 } from 'node:buffer';
import type { DecodeContext } from './decode-context.js';
import { MAX_CACHED_BYTES, cachedQuoted, cachedText, remember, slotHolds, slotOf } from './string-cache.js';

// ES2024 string methods that Node 20 has but tsconfig's ES2022 lib does not declare.
declare global {
  interface String {
    isWellFormed(): boolean;
    toWellFormed(): string;
  }
}

/**
 * Buffer#utf8Slice is what buf.toString('utf8', start, end) calls after argument checks that cost
 * more than the decode itself for short strings (protobufjs reads strings the same way).
 */
type FastSliceBuffer = Buffer & { utf8Slice(start: number, end: number): string };

const REPLACEMENT = '\uFFFD';
const NUL_GLOBAL = /\0/g;
/** The longest a UTF-8 sequence gets; a cut never needs to back up further than this. */
const MAX_UTF8_SEQUENCE = 4;

/** Decodes a protobuf string field and sanitizes it. */
export function decodeProtobufString(ctx: DecodeContext, buf: Buffer, start: number, end: number): string {
  const length = end - start;
  if (length === 0) return '';
  if (length > MAX_CACHED_BYTES) return decodeAndSanitize(ctx, buf, start, end, -1);
  const slot = slotOf(buf, start, end);
  if (slotHolds(slot, buf, start, end)) return cachedText(slot);
  return decodeAndSanitize(ctx, buf, start, end, slot);
}

/** Like decodeProtobufString, but returns the string as JSON text (quoted and escaped). */
export function decodeProtobufStringJson(ctx: DecodeContext, buf: Buffer, start: number, end: number): string {
  const length = end - start;
  if (length === 0) return '""';
  if (length > MAX_CACHED_BYTES) return JSON.stringify(decodeAndSanitize(ctx, buf, start, end, -1));
  const slot = slotOf(buf, start, end);
  if (slotHolds(slot, buf, start, end)) return cachedQuoted(slot);
  const text = decodeAndSanitize(ctx, buf, start, end, slot);
  return slotHolds(slot, buf, start, end) ? cachedQuoted(slot) : JSON.stringify(text);
}

/** Decodes bytes as UTF-8 and sanitizes; a clean result is remembered in `slot` (unless -1). */
function decodeAndSanitize(ctx: DecodeContext, buf: Buffer, start: number, end: number, slot: number): string {
  let text = (buf as FastSliceBuffer).utf8Slice(start, end);
  let clean = true;
  // Invalid sequences decode to U+FFFD; only a string holding one can have had them.
  if (text.includes(REPLACEMENT) && !isUtf8(buf.subarray(start, end))) {
    ctx.countSanitized('invalid_utf8');
    clean = false;
  }
  if (text.includes('\0')) {
    text = replaceNul(ctx, text);
    clean = false;
  }
  if (clean && slot >= 0) remember(slot, buf, start, end, text);
  return text;
}

/**
 * Decodes a protobuf string attribute value to JSON text: cut to maxAttributeValueBytes before
 * decoding (a 10 MB value is never decoded whole), sanitized, and cut again if replacements grew it.
 */
export function decodeProtobufValueJson(ctx: DecodeContext, buf: Buffer, start: number, end: number): string {
  const maxBytes = ctx.limits.maxAttributeValueBytes;
  // A clean string is exactly its bytes in UTF-8, so a short one needs no length check.
  if (end - start <= maxBytes) {
    if (end - start > MAX_CACHED_BYTES) {
      return JSON.stringify(truncateValueString(ctx, decodeAndSanitize(ctx, buf, start, end, -1), false));
    }
    if (start === end) return '""';
    const slot = slotOf(buf, start, end);
    if (slotHolds(slot, buf, start, end)) return cachedQuoted(slot);
    const text = decodeAndSanitize(ctx, buf, start, end, slot);
    if (slotHolds(slot, buf, start, end)) return cachedQuoted(slot);
    return JSON.stringify(truncateValueString(ctx, text, false));
  }
  let cut = start + maxBytes;
  // Back up to the first byte of the character the limit falls in (continuation bytes are 10xxxxxx).
  for (let i = 0; i < MAX_UTF8_SEQUENCE - 1 && cut > start && (buf[cut] & 0xc0) === 0x80; i++) cut--;
  return JSON.stringify(truncateValueString(ctx, decodeProtobufString(ctx, buf, start, cut), true));
}

/** Sanitizes a string that came from JSON.parse (lone surrogates, NUL, invalid UTF-8 in the body). */
export function sanitizeJsonString(ctx: DecodeContext, text: string): string {
  if (!text.isWellFormed()) {
    ctx.countSanitized('lone_surrogate');
    text = text.toWellFormed();
  }
  if (ctx.bodyHadInvalidUtf8 && text.includes(REPLACEMENT)) ctx.countSanitized('invalid_utf8');
  return text.includes('\0') ? replaceNul(ctx, text) : text;
}

/** Sanitizes a JSON string attribute value and cuts it to maxAttributeValueBytes. */
export function sanitizeJsonValueString(ctx: DecodeContext, text: string): string {
  return truncateValueString(ctx, sanitizeJsonString(ctx, text), false);
}

function replaceNul(ctx: DecodeContext, text: string): string {
  ctx.countSanitized('nul_byte');
  return text.replace(NUL_GLOBAL, REPLACEMENT);
}

/** Cuts a well-formed string to maxAttributeValueBytes UTF-8 bytes; counts one value_truncated. */
function truncateValueString(ctx: DecodeContext, text: string, alreadyCut: boolean): string {
  const maxBytes = ctx.limits.maxAttributeValueBytes;
  // A UTF-16 code unit is at most 3 UTF-8 bytes, so short strings need no measuring.
  if (text.length * 3 > maxBytes && Buffer.byteLength(text, 'utf8') > maxBytes) {
    text = truncateUtf8(text, maxBytes);
    alreadyCut = true;
  }
  if (alreadyCut) ctx.countSanitized('value_truncated');
  return text;
}

/** The longest prefix of a well-formed string whose UTF-8 encoding fits in maxBytes. */
export function truncateUtf8(text: string, maxBytes: number): string {
  let bytes = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    let width: number;
    let units = 1;
    if (c < 0x80) width = 1;
    else if (c < 0x800) width = 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      width = 4;
      units = 2;
    } else width = 3;
    if (bytes + width > maxBytes) break;
    bytes += width;
    i += units;
  }
  return text.slice(0, i);
}

/** Cuts a bytes value to maxAttributeValueBytes and encodes it as a base64 JSON string. */
export function writeBytesJson(ctx: DecodeContext, buf: Uint8Array, start: number, end: number): string {
  const maxBytes = ctx.limits.maxAttributeValueBytes;
  if (end - start > maxBytes) {
    end = start + maxBytes;
    ctx.countSanitized('value_truncated');
  }
  return '"' + Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('base64') + '"';
}
