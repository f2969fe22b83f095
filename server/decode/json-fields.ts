/**
 * Field access and scalar conversions for OTLP/JSON (the proto3 JSON mapping with OTLP's
 * deviations: trace and span ids are hex, not base64). Every field is looked up by its lowerCamelCase
 * name first, then by its original snake_case name. null means "default", like an absent field.
 * A value of the wrong type throws JsonShapeError, which the walker turns into TH_ERR_DECODE_BAD_JSON
 * naming the path.
 */
import { formatDouble } from './any-value.js';

export type JsonObject = Record<string, unknown>;

/** A valid JSON body of the wrong shape. `segments` is the path, outermost first. */
export class JsonShapeError extends Error {
  readonly segments: string[];

  constructor(segment: string, message: string) {
    super(message);
    this.name = 'JsonShapeError';
    this.segments = [segment];
  }
}

/** Adds the segment of an enclosing value to a JsonShapeError's path; other errors pass unchanged. */
export function prependPath(err: unknown, segment: string): unknown {
  if (err instanceof JsonShapeError) err.segments.unshift(segment);
  return err;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The field by camelCase name, else by snake_case name; undefined for absent or null. */
export function getField(obj: JsonObject, camel: string, snake: string): unknown {
  let value = obj[camel];
  if (value === undefined || value === null) value = obj[snake];
  return value === null ? undefined : value;
}

const NO_ITEMS: readonly unknown[] = [];

export function readArray(obj: JsonObject, camel: string, snake: string): readonly unknown[] {
  const value = getField(obj, camel, snake);
  if (value === undefined) return NO_ITEMS;
  if (!Array.isArray(value)) throw new JsonShapeError(camel, 'expected an array');
  return value;
}

export function readObject(obj: JsonObject, camel: string, snake: string): JsonObject | undefined {
  const value = getField(obj, camel, snake);
  if (value === undefined || isJsonObject(value)) return value;
  throw new JsonShapeError(camel, 'expected an object');
}

/** The raw string (not yet sanitized); '' when absent. */
export function readRawString(obj: JsonObject, camel: string, snake: string): string {
  const value = getField(obj, camel, snake);
  if (value === undefined) return '';
  if (typeof value !== 'string') throw new JsonShapeError(camel, 'expected a string');
  return value;
}

const UINT32_MAX = 4294967295;
const DIGITS = /^\d{1,20}$/;
const SIGNED_DIGITS = /^[-+]?\d{1,20}$/;
const UINT64_MAX = 18446744073709551615n;
const INT64_MIN = -9223372036854775808n;
const INT64_MAX = 9223372036854775807n;
const TWO_POW_63 = 9223372036854775808;

/** uint32 / fixed32 fields: a JSON number or a decimal string. */
export function readUint32(obj: JsonObject, camel: string, snake: string): number {
  const value = getField(obj, camel, snake);
  if (value === undefined) return 0;
  const n = typeof value === 'string' && DIGITS.test(value) ? Number(value) : value;
  if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= UINT32_MAX) return n;
  throw new JsonShapeError(camel, 'expected a uint32');
}

/** fixed64 timestamps: a decimal string (parsed exactly) or a JSON number (exact only below 2^53). */
export function readFixed64(obj: JsonObject, camel: string, snake: string): bigint {
  const value = getField(obj, camel, snake);
  if (value === undefined) return 0n;
  if (typeof value === 'string') {
    if (DIGITS.test(value)) {
      const n = BigInt(value);
      if (n <= UINT64_MAX) return n;
    }
  } else if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < 2 ** 64) {
    return BigInt(value);
  }
  throw new JsonShapeError(camel, 'expected a uint64 as a decimal string or an integer number');
}

/**
 * int64 AnyValue.intValue → its JSON text: a decimal string (parsed exactly) or an integer JSON number.
 * An integral number beyond int64 is stored as the double it is: the OpenTelemetry JS SDK writes
 * such numbers as intValue in OTLP/JSON but as doubleValue in protobuf, and both must store alike.
 */
export function convertInt64(value: unknown, segment: string): string {
  if (typeof value === 'string') {
    if (SIGNED_DIGITS.test(value)) {
      const n = BigInt(value);
      if (n >= INT64_MIN && n <= INT64_MAX) return n.toString();
    }
  } else if (typeof value === 'number' && Number.isInteger(value)) {
    if (value < -TWO_POW_63 || value >= TWO_POW_63) return formatDouble(value);
    return Number.isSafeInteger(value) ? String(value + 0) : BigInt(value).toString();
  }
  throw new JsonShapeError(segment, 'expected an int64 as a decimal string or an integer number');
}

const DOUBLE_TEXT = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/** double AnyValue.doubleValue: a JSON number, "NaN", "Infinity", "-Infinity" or a numeric string. */
export function convertDouble(value: unknown, segment: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    if (value === 'NaN') return NaN;
    if (value === 'Infinity') return Infinity;
    if (value === '-Infinity') return -Infinity;
    if (DOUBLE_TEXT.test(value)) return Number(value);
  }
  throw new JsonShapeError(segment, 'expected a double');
}

/** An enum: its integer value or its name (looked up in `names`); unknown integers pass through. */
export function readEnum(obj: JsonObject, camel: string, snake: string, names: Record<string, number>): number {
  const value = getField(obj, camel, snake);
  if (value === undefined) return 0;
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && Object.hasOwn(names, value)) return names[value];
  throw new JsonShapeError(camel, 'expected an enum number or name');
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  const lower = c | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87; // a-f
  return -1;
}

/** Decodes a hex id of exactly `bytes` bytes; null when malformed (odd length, base64, non-hex) or all zero. */
export function decodeHexId(hex: string, bytes: number): Buffer | null {
  if (hex.length !== bytes * 2) return null;
  const id = Buffer.allocUnsafe(bytes);
  let any = 0;
  for (let i = 0; i < bytes; i++) {
    const high = hexDigit(hex.charCodeAt(2 * i));
    const low = hexDigit(hex.charCodeAt(2 * i + 1));
    if ((high | low) < 0) return null;
    const b = (high << 4) | low;
    id[i] = b;
    any |= b;
  }
  return any === 0 ? null : id;
}

const HEX_BYTES = /^(?:[0-9a-fA-F]{2})*$/;

/** Normalizes a link id to lowercase hex; '' when it is not hex. */
export function normalizeHex(hex: string): string {
  return HEX_BYTES.test(hex) ? hex.toLowerCase() : '';
}
