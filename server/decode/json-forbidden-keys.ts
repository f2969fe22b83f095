/**
 * Refuses JSON bodies with a `__proto__` or `constructor` object key at any depth (prototype
 * poisoning). A cheap test on the text decides whether the parsed value needs a full scan: the
 * text can only hold such a key if it holds the name literally or a \u escape of one of its letters.
 * The scan is iterative, so it is safe for any nesting JSON.parse accepted.
 */
import { TracehouseError } from '../errors.js';

const FORBIDDEN_KEYS = ['__proto__', 'constructor'];

/** `"name"` followed by a colon, each letter either literal or a \u00XX escape. */
function keyPattern(name: string): string {
  let out = '"';
  for (const ch of name) {
    const hex = ch.charCodeAt(0).toString(16).padStart(4, '0');
    out += `(?:${ch}|\\\\u${hex})`;
  }
  return out + '"\\s*:';
}

const FORBIDDEN_KEY_TEXT = new RegExp(FORBIDDEN_KEYS.map(keyPattern).join('|'), 'i');

/** Any text that could hold a forbidden key contains one of these; most bodies contain none. */
const CANDIDATE_TEXT = /__proto__|constructor|\\u/;

function mayHoldForbiddenKey(text: string): boolean {
  return CANDIDATE_TEXT.test(text) && FORBIDDEN_KEY_TEXT.test(text);
}

/** Throws TH_ERR_DECODE_FORBIDDEN_KEY if `parsed` (the result of JSON.parse(text)) holds a forbidden key. */
export function assertNoForbiddenKeys(text: string, parsed: unknown): void {
  if (!mayHoldForbiddenKey(text)) return;
  const pending: unknown[] = [parsed];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value !== 'object' || value === null) continue;
    if (Array.isArray(value)) {
      for (const item of value) if (typeof item === 'object' && item !== null) pending.push(item);
      continue;
    }
    for (const key of Object.keys(value)) {
      if (key === '__proto__' || key === 'constructor') {
        throw new TracehouseError('TH_ERR_DECODE_FORBIDDEN_KEY', `the JSON body contains a "${key}" key`);
      }
      const item = (value as Record<string, unknown>)[key];
      if (typeof item === 'object' && item !== null) pending.push(item);
    }
  }
}
