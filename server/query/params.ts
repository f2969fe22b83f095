/**
 * Parsing of query-string values shared by the Jaeger and Tempo routes. Every parser throws
 * TH_ERR_QUERY_BAD_REQUEST (400) naming the parameter and what it accepts.
 *
 * Epoch times are read by magnitude, because clients disagree on units (Jaeger documents µs,
 * Grafana's Jaeger client sends ms for trace-by-id, Tempo takes seconds): below 10^11 seconds,
 * below 10^14 milliseconds, below 10^17 microseconds, otherwise nanoseconds. Each range covers the
 * years 1973–5138 in its unit and no other unit's, so the reading is unambiguous for real times.
 */
import { TracehouseError } from '../errors.js';
import type { TimeWindow } from '../storage/reader-types.js';

export type QueryString = Record<string, string | string[] | undefined>;

export function badRequest(message: string): TracehouseError {
  return new TracehouseError('TH_ERR_QUERY_BAD_REQUEST', message);
}

/** The first value of a query parameter ('' counts as absent). */
export function one(query: QueryString, name: string): string | undefined {
  const value = query[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}

/** The first present value among several names (canonical first, then deprecated aliases). */
export function oneOf(query: QueryString, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = one(query, name);
    if (value !== undefined) return value;
  }
  return undefined;
}

export function many(query: QueryString, name: string): string[] {
  const value = query[name];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((v) => v !== '');
}

const UNIT_NANOS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign
  μs: 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const DURATION_TERM = /(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * A Go-style duration (`1.2s`, `100ms`, `1h30m`, `250us`, `0`) in exact nanoseconds. Returns
 * undefined when `text` is not one; negative durations are refused.
 */
export function tryParseDuration(text: string): bigint | undefined {
  if (text === '0') return 0n;
  let body = text;
  if (body.startsWith('+')) body = body.slice(1);
  if (body === '' || body.startsWith('-')) return undefined;
  let total = 0n;
  DURATION_TERM.lastIndex = 0;
  while (DURATION_TERM.lastIndex < body.length) {
    const m = DURATION_TERM.exec(body);
    if (m === null) return undefined;
    const [, whole, fraction = '', unit] = m;
    if (whole === '' && fraction === '') return undefined;
    const scale = UNIT_NANOS[unit];
    total += BigInt(whole || '0') * scale;
    if (fraction !== '') total += (BigInt(fraction) * scale) / 10n ** BigInt(fraction.length);
  }
  return total;
}

export function parseDuration(text: string, name: string): bigint {
  const nanos = tryParseDuration(text.trim());
  if (nanos === undefined) {
    throw badRequest(
      `${name} must be a duration such as 100ms, 1.5s or 2m (units ns, us, ms, s, m, h), got '${clip(text)}'`,
    );
  }
  return nanos;
}

/** An epoch timestamp in s, ms, µs or ns (chosen by magnitude, see the header) → nanoseconds. */
export function parseEpoch(text: string, name: string): bigint {
  if (!/^\d{1,20}$/.test(text)) throw badRequest(`${name} must be a unix timestamp (digits), got '${clip(text)}'`);
  const value = BigInt(text);
  if (value < 100_000_000_000n) return value * 1_000_000_000n;
  if (value < 100_000_000_000_000n) return value * 1_000_000n;
  if (value < 100_000_000_000_000_000n) return value * 1_000n;
  return value;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** An RFC 3339 timestamp (nanosecond fraction allowed, any offset) → exact unix nanoseconds. */
export function parseRfc3339(text: string, name: string): bigint {
  const m = RFC3339.exec(text);
  const fail = () =>
    badRequest(`${name} must be an RFC 3339 time such as 2026-01-02T15:04:05.123456789Z, got '${clip(text)}'`);
  if (m === null) throw fail();
  const [, y, mo, d, h, mi, s, fraction = '', z, sign, oh, om] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms) || Number(mo) > 12 || Number(d) > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) {
    throw fail();
  }
  let nanos = BigInt(ms) * 1_000_000n + BigInt(fraction.padEnd(9, '0') || '0');
  if (z === undefined) {
    const offsetNanos = BigInt(Number(oh) * 60 + Number(om)) * 60_000_000_000n;
    nanos += sign === '+' ? -offsetNanos : offsetNanos;
  }
  return nanos;
}

/** A trace id of 1–32 hex digits (shorter ids are left-padded, as Jaeger and Tempo print them). */
export function parseTraceId(text: string): Buffer {
  if (!/^[0-9a-fA-F]{1,32}$/.test(text)) {
    throw badRequest(`trace id must be 1 to 32 hexadecimal digits, got '${clip(text)}'`);
  }
  return Buffer.from(text.toLowerCase().padStart(32, '0'), 'hex');
}

export function parseLimit(text: string | undefined, name: string, defaultLimit: number, maxLimit: number): number {
  if (text === undefined) return defaultLimit;
  if (!/^\d{1,9}$/.test(text)) throw badRequest(`${name} must be a positive integer, got '${clip(text)}'`);
  const limit = Number(text);
  if (limit === 0) return defaultLimit;
  return Math.min(limit, maxLimit);
}

/** The search window: [start, end] where missing bounds default to end = now, start = end − lookback. */
export function resolveWindow(
  start: bigint | undefined,
  end: bigint | undefined,
  nowNanos: bigint,
  defaultLookbackNanos: bigint,
): TimeWindow {
  const endUnixNano = end ?? nowNanos;
  const startUnixNano = start ?? endUnixNano - defaultLookbackNanos;
  if (startUnixNano > endUnixNano) throw badRequest('the start of the time range is after its end');
  return { startUnixNano, endUnixNano };
}

/**
 * logfmt `key=value key2="quoted value"` (Grafana's tag syntax) → pairs. A key without `=` is
 * refused: tag search needs a value.
 */
export function parseLogfmt(text: string, name: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  const term = /\s*([^\s="]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s"]*))\s*/y;
  let at = 0;
  while (at < text.length) {
    term.lastIndex = at;
    const m = term.exec(text);
    if (m === null) {
      if (text.slice(at).trim() === '') break;
      throw badRequest(
        `${name} must be logfmt key=value pairs (values with spaces in double quotes), at '${clip(text.slice(at))}'`,
      );
    }
    pairs.push([m[1], m[2] !== undefined ? unquote(m[2], name) : m[3]]);
    at = term.lastIndex;
  }
  return pairs;
}

function unquote(body: string, name: string): string {
  try {
    return JSON.parse(`"${body}"`) as string;
  } catch {
    throw badRequest(`${name} has a quoted value with an invalid escape: '${clip(body)}'`);
  }
}

export function clip(text: string, max = 80): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
