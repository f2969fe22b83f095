/**
 * The OTLP/JSON counterpart of generate.ts, and text mutations of JSON seeds. int64 fields come as
 * strings and as numbers (past 2^53 too); enums as names and numbers; ids as hex of wrong lengths,
 * odd hex and all zeros; names in lowerCamelCase or snake_case; strings with NUL and lone
 * surrogates. In a 'noise' input, values also come in the wrong type (a number where a hex id
 * belongs, an object where an array does, null anywhere), int64 as garbage, unknown enum names,
 * and a `__proto__` or `constructor` key, which must be refused.
 */
import {
  endTimeNs,
  listLength,
  makePlan,
  nestingDepth,
  timestampNs,
  width,
  type GenerateOptions,
  type Plan,
} from './generate.js';
import { int, pick, type Rng } from './mutate.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const STRINGS = ['GET /api', 'é', '😀', '', 'a\u0000b', 'x\ud800y', '\udc00', 'k', '\ufeff'];
const LONG = 'x'.repeat(5000); // over the 4096-byte value limit

function text(rng: Rng): string {
  if (rng() < 0.003) return LONG;
  return rng() < 0.8
    ? pick(rng, STRINGS)
    : String.fromCharCode(...Array.from({ length: int(rng, 12) }, () => int(rng, 0x10000)));
}

function hex(rng: Rng, bytes: number): string {
  let out = '';
  for (let i = 0; i < bytes; i++) out += int(rng, 256).toString(16).padStart(2, '0');
  return out;
}

/** In a 'noise' input, true with probability p: a value of the wrong type or form goes here. */
const odd = (g: Plan, p: number): boolean => g.stress === 'noise' && g.rng() < p;

function idValue(g: Plan, bytes: number): Json {
  const rng = g.rng;
  const r = rng();
  if (r < 0.85) return hex(rng, bytes);
  if (r < 0.9) return '0'.repeat(bytes * 2);
  if (r < 0.95) return rng() < 0.5 ? hex(rng, bytes).slice(1) : hex(rng, bytes - 1); // odd or short
  return odd(g, 1) ? wrongType(rng) : Buffer.from(hex(rng, bytes), 'hex').toString('base64');
}

function wrongType(rng: Rng): Json {
  const choices: Json[] = [null, true, 0, -1, 1e308, '', 'zz', [], {}, [1, 2], { a: 1 }];
  return pick(rng, choices);
}

/** An int64 as a string or a number, or (in a 'noise' input) in a form that is not one. */
function int64(g: Plan, value: bigint): Json {
  if (odd(g, 0.2)) {
    return pick(g.rng, ['-1', '1e3', '0x10', ' 5', '18446744073709551616', '99999999999999999999999', 1.5, -0]);
  }
  return g.rng() < 0.7 ? value.toString() : Number(value);
}

function name(rng: Rng, camel: string, snake: string): string {
  return rng() < 0.85 ? camel : snake;
}

function anyValue(g: Plan, depth: number): Json {
  const rng = g.rng;
  if (odd(g, 0.05)) return wrongType(rng);
  const nest = depth > 0 && rng() < (g.stress === 'deep' ? 0.97 : 0.5);
  const r = nest ? 5 + int(rng, 2) : int(rng, 5);
  switch (r) {
    case 0:
      return { stringValue: text(rng) };
    case 1:
      return { boolValue: rng() < 0.5 };
    case 2:
      return { [name(rng, 'intValue', 'int_value')]: int64(g, BigInt(int(rng, 1e6)) - 500n) };
    case 3:
      return { doubleValue: pick(rng, [1.5, -0, 1e308, 'NaN', 'Infinity', '-Infinity']) };
    case 4:
      return { bytesValue: odd(g, 0.5) ? '!!not base64' : Buffer.from(text(rng)).toString('base64') };
    case 5:
      return { arrayValue: { values: Array.from({ length: width(rng, depth) }, () => anyValue(g, depth - 1)) } };
    default:
      return { kvlistValue: { values: Array.from({ length: width(rng, depth) }, () => keyValue(g, depth - 1)) } };
  }
}

function keyValue(g: Plan, depth: number): Json {
  return odd(g, 0.05) ? wrongType(g.rng) : { key: text(g.rng), value: anyValue(g, depth) };
}

function attributes(g: Plan): Json {
  if (odd(g, 0.05)) return wrongType(g.rng);
  return Array.from({ length: listLength(g, 'many-attributes', 128, 4) }, () => keyValue(g, nestingDepth(g)));
}

function span(g: Plan): Json {
  const rng = g.rng;
  const start = timestampNs(rng, g.nowMs);
  const end = endTimeNs(rng, start);
  const out: { [key: string]: Json } = {
    [name(rng, 'traceId', 'trace_id')]: idValue(g, 16),
    [name(rng, 'spanId', 'span_id')]: idValue(g, 8),
    name: odd(g, 0.1) ? wrongType(rng) : text(rng),
    kind: odd(g, 0.2) ? pick(rng, [9, 'SPAN_KIND_NOPE', null]) : pick(rng, [1, 2, 'SPAN_KIND_SERVER']),
    [name(rng, 'startTimeUnixNano', 'start_time_unix_nano')]: int64(g, start),
    [name(rng, 'endTimeUnixNano', 'end_time_unix_nano')]: int64(g, end),
    attributes: attributes(g),
    status: odd(g, 0.1)
      ? wrongType(rng)
      : { code: odd(g, 0.3) ? pick(rng, [7, 'x']) : pick(rng, [0, 2, 'STATUS_CODE_ERROR']), message: text(rng) },
  };
  if (rng() < 0.5) out[name(rng, 'parentSpanId', 'parent_span_id')] = idValue(g, 8);
  if (rng() < 0.3) out[name(rng, 'traceState', 'trace_state')] = rng() < 0.5 ? text(rng) : `ot=th:${int(rng, 16)}`;
  out.events = Array.from({ length: listLength(g, 'many-events', 128, 2) }, () => ({
    [name(rng, 'timeUnixNano', 'time_unix_nano')]: int64(g, timestampNs(rng, g.nowMs)),
    name: text(rng),
    attributes: attributes(g),
  }));
  out.links = Array.from({ length: listLength(g, 'many-links', 128, 2) }, () => ({
    traceId: idValue(g, 16),
    spanId: idValue(g, 8),
    attributes: attributes(g),
  }));
  if (odd(g, 0.2)) out[pick(rng, ['futureField', 'droppedAttributesCount', 'flags'])] = wrongType(rng);
  return out;
}

/** A random, mostly well-formed ExportTraceServiceRequest in OTLP/JSON, as text. */
export function generateJson(rng: Rng, options: GenerateOptions): string {
  const g = makePlan(rng, options);
  const resourceSpans = Array.from({ length: 1 + int(rng, 2) }, () => ({
    resource: { attributes: attributes(g) },
    [name(rng, 'scopeSpans', 'scope_spans')]: [
      { scope: { name: text(rng), version: text(rng) }, spans: Array.from({ length: int(rng, 4) }, () => span(g)) },
    ],
  }));
  let body = JSON.stringify({ [name(rng, 'resourceSpans', 'resource_spans')]: resourceSpans });
  if (odd(g, 0.1)) {
    body = body.replace('"resource":', `"${pick(rng, ['__proto__', 'constructor'])}":{"x":1},"resource":`);
  }
  return body;
}

const TOKENS = [
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '"',
  '\\u0000',
  '\\ud800',
  '\\',
  'null',
  '-1',
  '1e999',
  '__proto__',
  '"spans":[',
  '{"arrayValue":{"values":[',
];

/** One to three token-level edits of JSON text (insert, overwrite, delete, retype a value). */
export function mutateJsonText(rng: Rng, seed: string): string {
  let out = seed;
  for (let r = 1 + int(rng, 3); r > 0 && out.length > 0; r--) {
    const at = int(rng, out.length);
    switch (int(rng, 4)) {
      case 0:
        out = out.slice(0, at) + pick(rng, TOKENS) + out.slice(at);
        break;
      case 1:
        out = out.slice(0, at) + pick(rng, TOKENS) + out.slice(at + 1 + int(rng, 8));
        break;
      case 2:
        out = out.slice(0, at) + out.slice(at + 1 + int(rng, 32));
        break;
      default: {
        const colon = out.indexOf('":', at);
        if (colon < 0) break;
        const rest = out.slice(colon + 2).replace(/^("(?:[^"\\]|\\.)*"|[^,}\]]*)/, '');
        out = out.slice(0, colon + 2) + JSON.stringify(wrongType(rng)) + rest;
      }
    }
  }
  return out;
}
