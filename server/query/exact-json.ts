/**
 * JSON.stringify for response bodies that carry 64-bit integers as JSON numbers (Jaeger int64 tags,
 * OTLP event times for Grafana's v3 client): a bigint anywhere in the value is written as its exact
 * digits. It travels through JSON.stringify as a string starting with NUL, which no stored string
 * can contain (decode replaces NUL), and is unquoted afterwards.
 */

const MARK = '\u0000#';
const MARKED = /"\\u0000#(-?\d+)"/g;

export function stringifyExact(value: unknown): string {
  let marked = false;
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'bigint') return v;
    marked = true;
    return MARK + v.toString();
  });
  return marked ? text.replace(MARKED, '$1') : text;
}

/** An int64 given as decimal digits, as a number when exact in a double, else a bigint. */
export function exactInt(digits: string): number | bigint {
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : BigInt(digits);
}
