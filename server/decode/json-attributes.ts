/**
 * OTLP/JSON readers for KeyValue lists and AnyValue, writing the stored JSON forms of any-value.ts.
 * Recursion through arrayValue / kvlistValue is bounded by maxAnyValueDepth
 * (TH_ERR_DECODE_TOO_DEEP beyond it), whatever the nesting JSON.parse accepted.
 */
import { TracehouseError } from '../errors.js';
import type { AttributeList } from './any-value.js';
import { formatDouble } from './any-value.js';
import type { DecodeContext } from './decode-context.js';
import type { JsonObject } from './json-fields.js';
import { JsonShapeError, convertDouble, convertInt64, getField, isJsonObject, prependPath } from './json-fields.js';
import { quoteJsonKey, quoteJsonValue } from './json-string-memo.js';
import { writeBytesJson } from './sanitize.js';

/**
 * Reads the KeyValue array `obj[camel]` into `list`. Pairs beyond the list's cap are only counted.
 * Returns the sanitized string value of the last kept pair whose key is `watchKey`, else null.
 */
export function readAttributesJson(
  ctx: DecodeContext,
  obj: JsonObject,
  camel: string,
  list: AttributeList,
  watchKey?: string,
): string | null {
  list.reset();
  const items = getField(obj, camel, camel);
  if (items === undefined) return null;
  if (!Array.isArray(items)) throw new JsonShapeError(camel, 'expected an array');
  let watched: string | null = null;
  for (let i = 0; i < items.length; i++) {
    if (!list.admitNext()) continue;
    try {
      readKeyValueJson(ctx, items[i], list, 0);
    } catch (err) {
      throw prependPath(prependPath(err, `[${i}]`), camel);
    }
    if (watchKey !== undefined && list.lastKey() === watchKey) watched = ctx.lastStringJson;
  }
  return watched === null ? null : (JSON.parse(watched) as string);
}

/** Reads one KeyValue into `list`; its value is at nesting `depth`. */
function readKeyValueJson(ctx: DecodeContext, kv: unknown, list: AttributeList, depth: number): void {
  if (!isJsonObject(kv)) throw new JsonShapeError('', 'expected a KeyValue object');
  const rawKey = getField(kv, 'key', 'key');
  if (rawKey !== undefined && typeof rawKey !== 'string') throw new JsonShapeError('key', 'expected a string');
  const key = rawKey === undefined ? '""' : quoteJsonKey(ctx, rawKey);
  let value: string;
  try {
    value = readAnyValueJson(ctx, getField(kv, 'value', 'value'), depth);
  } catch (err) {
    throw prependPath(err, 'value');
  }
  list.push(key, value);
}

/**
 * Reads an AnyValue (undefined = empty) at nesting `depth` and returns its JSON text.
 * Leaves ctx.lastStringJson set to its text if it is a string, else null.
 */
function readAnyValueJson(ctx: DecodeContext, v: unknown, depth: number): string {
  ctx.lastStringJson = null;
  if (v === undefined) return 'null';
  if (!isJsonObject(v)) throw new JsonShapeError('', 'expected an AnyValue object');
  // The oneof is whichever known field is set (the first in key order if several are); one pass
  // over the keys is cheaper than probing seven names in two spellings.
  for (const name in v) {
    const field = v[name];
    if (field === null || field === undefined) continue;
    switch (name) {
      case 'stringValue':
      case 'string_value': {
        if (typeof field !== 'string') throw new JsonShapeError(name, 'expected a string');
        const json = quoteJsonValue(ctx, field);
        ctx.lastStringJson = json;
        return json;
      }
      case 'boolValue':
      case 'bool_value':
        if (typeof field !== 'boolean') throw new JsonShapeError(name, 'expected a boolean');
        return field ? 'true' : 'false';
      case 'intValue':
      case 'int_value':
        return convertInt64(field, name);
      case 'doubleValue':
      case 'double_value':
        return formatDouble(convertDouble(field, name));
      case 'arrayValue':
      case 'array_value':
        return readListJson(ctx, field, depth + 1, 'arrayValue');
      case 'kvlistValue':
      case 'kvlist_value':
        return readListJson(ctx, field, depth + 1, 'kvlistValue');
      case 'bytesValue':
      case 'bytes_value': {
        if (typeof field !== 'string') throw new JsonShapeError(name, 'expected a base64 string');
        const bytes = Buffer.from(field, 'base64');
        return writeBytesJson(ctx, bytes, 0, bytes.length);
      }
    }
  }
  return 'null';
}

/** Reads an ArrayValue or KeyValueList (`{"values": [...]}`) at container depth `depth`. */
function readListJson(
  ctx: DecodeContext,
  container: unknown,
  depth: number,
  kind: 'arrayValue' | 'kvlistValue',
): string {
  const max = ctx.limits.maxAnyValueDepth;
  if (depth > max) {
    throw new TracehouseError(
      'TH_ERR_DECODE_TOO_DEEP',
      `AnyValue nesting (arrays / key-value lists) is deeper than ${max} levels`,
    );
  }
  if (!isJsonObject(container)) throw new JsonShapeError(kind, 'expected an object');
  const items = getField(container, 'values', 'values');
  if (items !== undefined && !Array.isArray(items)) throw new JsonShapeError(`${kind}.values`, 'expected an array');
  const values: readonly unknown[] = items ?? [];
  if (kind === 'kvlistValue') {
    const list = ctx.kvlistAt(depth);
    for (let i = 0; i < values.length; i++) {
      try {
        readKeyValueJson(ctx, values[i], list, depth);
      } catch (err) {
        throw prependPath(err, `${kind}.values[${i}]`);
      }
    }
    ctx.lastStringJson = null;
    return list.toJson();
  }
  let out = '';
  for (let i = 0; i < values.length; i++) {
    let item: string;
    try {
      item = readAnyValueJson(ctx, values[i], depth);
    } catch (err) {
      throw prependPath(err, `${kind}.values[${i}]`);
    }
    out = out === '' ? '[' + item : out + ',' + item;
  }
  ctx.lastStringJson = null;
  return out === '' ? '[]' : out + ']';
}
