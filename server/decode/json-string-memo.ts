/**
 * A memo of the JSON texts of short, clean strings read from OTLP/JSON bodies (attribute keys and
 * string values): the same string gives back the same quoted string object. Keys and many values
 * repeat on every span, and a stable string keeps its hash, so the attribute sharing's per-pair
 * lookups (attribute-sharing.ts) hash each such string once instead of once per span. The
 * protobuf decoder gets the same from its byte memo (string-cache.ts).
 *
 * Why module state in a pure stage: a hit returns exactly what sanitizing and quoting would, and
 * only strings that sanitizing leaves alone and counts nothing for (well-formed, no NUL, no U+FFFD,
 * short enough that no value limit can cut them) are remembered. Bounded: MAX_ENTRIES strings of
 * at most MAX_CHARS characters, then it starts over.
 */
import type { DecodeContext } from './decode-context.js';
import { sanitizeJsonString, sanitizeJsonValueString } from './sanitize.js';

const MAX_ENTRIES = 4096;
const MAX_CHARS = 128;
const REPLACEMENT = '\uFFFD';
const quoted = new Map<string, string>();

/** JSON.stringify of the sanitized key. */
export function quoteJsonKey(ctx: DecodeContext, raw: string): string {
  return quote(ctx, raw, sanitizeJsonString);
}

/** JSON.stringify of the sanitized, length-limited string value. */
export function quoteJsonValue(ctx: DecodeContext, raw: string): string {
  return quote(ctx, raw, sanitizeJsonValueString);
}

function quote(ctx: DecodeContext, raw: string, sanitize: (ctx: DecodeContext, text: string) => string): string {
  // A UTF-16 unit is at most 3 UTF-8 bytes: no value limit can cut a string this short.
  const memoable = raw.length <= MAX_CHARS && raw.length * 3 <= ctx.limits.maxAttributeValueBytes;
  if (memoable) {
    const known = quoted.get(raw);
    if (known !== undefined) return known;
  }
  const clean = sanitize(ctx, raw);
  const json = JSON.stringify(clean);
  if (memoable && clean === raw && !raw.includes(REPLACEMENT)) {
    if (quoted.size >= MAX_ENTRIES) quoted.clear();
    quoted.set(raw, json);
  }
  return json;
}
