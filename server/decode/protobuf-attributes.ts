/**
 * Protobuf readers for opentelemetry.proto.common.v1 KeyValue, AnyValue, ArrayValue and
 * KeyValueList, writing the stored JSON forms of any-value.ts directly. Recursion through
 * arrays and kvlists is bounded by maxAnyValueDepth (TH_ERR_DECODE_TOO_DEEP beyond it).
 */
import { TracehouseError } from '../errors.js';
import type { AttributeList } from './any-value.js';
import { formatDouble } from './any-value.js';
import type { DecodeContext } from './decode-context.js';
import type { ProtobufReader } from './protobuf-reader.js';
import { decodeProtobufString, decodeProtobufStringJson, decodeProtobufValueJson, writeBytesJson } from './sanitize.js';

// KeyValue { 1 key string; 2 value AnyValue }
const KEY_VALUE_KEY = (1 << 3) | 2;
const KEY_VALUE_VALUE = (2 << 3) | 2;
// AnyValue oneof value { 1 string_value string; 2 bool_value bool; 3 int_value int64;
//   4 double_value double; 5 array_value ArrayValue; 6 kvlist_value KeyValueList; 7 bytes_value bytes }
const ANY_STRING = (1 << 3) | 2;
const ANY_BOOL = (2 << 3) | 0;
const ANY_INT = (3 << 3) | 0;
const ANY_DOUBLE = (4 << 3) | 1;
const ANY_ARRAY = (5 << 3) | 2;
const ANY_KVLIST = (6 << 3) | 2;
const ANY_BYTES = (7 << 3) | 2;
// ArrayValue { repeated AnyValue values = 1 }; KeyValueList { repeated KeyValue values = 1 }
const LIST_VALUES = (1 << 3) | 2;

/** Reads a string field (the reader is at its length prefix), sanitized. */
export function readString(ctx: DecodeContext, r: ProtobufReader, limit: number): string {
  const end = r.readDelimitedEnd(limit);
  const text = decodeProtobufString(ctx, r.buf, r.pos, end);
  r.pos = end;
  return text;
}

/**
 * Reads one repeated KeyValue field occurrence (the reader is at its length prefix) into `list`.
 * Pairs beyond the list's cap are skipped undecoded and only counted.
 */
export function readAttributeField(ctx: DecodeContext, r: ProtobufReader, limit: number, list: AttributeList): void {
  const end = r.readDelimitedEnd(limit);
  if (list.admitNext()) readKeyValue(ctx, r, end, list, 0);
  else r.pos = end;
}

/** Reads a KeyValue message ending at `end` and adds it to `list`; its value is at nesting `depth`. */
function readKeyValue(ctx: DecodeContext, r: ProtobufReader, end: number, list: AttributeList, depth: number): void {
  let key = '""';
  let value = 'null';
  let stringValue: string | null = null;
  while (r.pos < end) {
    const tag = r.readTag();
    if (tag === KEY_VALUE_KEY) {
      const keyEnd = r.readDelimitedEnd(end);
      key = decodeProtobufStringJson(ctx, r.buf, r.pos, keyEnd);
      r.pos = keyEnd;
    } else if (tag === KEY_VALUE_VALUE) {
      const valueEnd = r.readDelimitedEnd(end);
      value = readAnyValue(ctx, r, valueEnd, depth);
      stringValue = ctx.lastStringJson;
    } else {
      r.skipField(tag, end);
    }
  }
  r.expectEnd(end);
  list.push(key, value);
  ctx.lastStringJson = stringValue;
}

/**
 * Reads an AnyValue message ending at `end` and returns its JSON text. `depth` is the number of
 * arrays / kvlists around it. Leaves ctx.lastStringJson set to its text if it is a string.
 */
function readAnyValue(ctx: DecodeContext, r: ProtobufReader, end: number, depth: number): string {
  let json = 'null';
  let stringValue: string | null = null;
  while (r.pos < end) {
    const tag = r.readTag();
    switch (tag) {
      case ANY_STRING: {
        const valueEnd = r.readDelimitedEnd(end);
        json = decodeProtobufValueJson(ctx, r.buf, r.pos, valueEnd);
        r.pos = valueEnd;
        stringValue = json;
        continue;
      }
      case ANY_BOOL:
        json = r.readBool() ? 'true' : 'false';
        break;
      case ANY_INT:
        json = r.readInt64Decimal();
        break;
      case ANY_DOUBLE:
        json = formatDouble(r.readDouble());
        break;
      case ANY_ARRAY:
        json = readArrayValue(ctx, r, r.readDelimitedEnd(end), depth + 1);
        break;
      case ANY_KVLIST:
        json = readKeyValueList(ctx, r, r.readDelimitedEnd(end), depth + 1);
        break;
      case ANY_BYTES: {
        const valueEnd = r.readDelimitedEnd(end);
        json = writeBytesJson(ctx, r.buf, r.pos, valueEnd);
        r.pos = valueEnd;
        break;
      }
      default:
        r.skipField(tag, end);
        continue;
    }
    stringValue = null;
  }
  r.expectEnd(end);
  ctx.lastStringJson = stringValue;
  return json;
}

function checkDepth(ctx: DecodeContext, depth: number): void {
  const max = ctx.limits.maxAnyValueDepth;
  if (depth > max) {
    throw new TracehouseError(
      'TH_ERR_DECODE_TOO_DEEP',
      `AnyValue nesting (arrays / key-value lists) is deeper than ${max} levels`,
    );
  }
}

/** Reads an ArrayValue at container depth `depth` (1 = an attribute's own array). */
function readArrayValue(ctx: DecodeContext, r: ProtobufReader, end: number, depth: number): string {
  checkDepth(ctx, depth);
  let out = '';
  while (r.pos < end) {
    const tag = r.readTag();
    if (tag === LIST_VALUES) {
      const item = readAnyValue(ctx, r, r.readDelimitedEnd(end), depth);
      out = out === '' ? '[' + item : out + ',' + item;
    } else {
      r.skipField(tag, end);
    }
  }
  r.expectEnd(end);
  return out === '' ? '[]' : out + ']';
}

/** Reads a KeyValueList at container depth `depth` into a JSON object. */
function readKeyValueList(ctx: DecodeContext, r: ProtobufReader, end: number, depth: number): string {
  checkDepth(ctx, depth);
  const list = ctx.kvlistAt(depth);
  while (r.pos < end) {
    const tag = r.readTag();
    if (tag === LIST_VALUES) readKeyValue(ctx, r, r.readDelimitedEnd(end), list, depth);
    else r.skipField(tag, end);
  }
  r.expectEnd(end);
  return list.toJson();
}
