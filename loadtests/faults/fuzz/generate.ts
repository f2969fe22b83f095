/**
 * Structure-aware generators of OTLP requests that are almost right: the message tree of
 * ExportTraceServiceRequest with random sizes and values at the edges the decoder must handle —
 * ids of wrong lengths or all zero, timestamps at 0, at the window's edges and in 2554, strings with
 * NUL / invalid UTF-8 / lone surrogates / over the truncation limit, AnyValues nested around the
 * depth limit, more attributes, events and links than the caps, out-of-range enums — plus, in
 * protobuf, fields of unknown numbers and of the wrong wire type at every level, and in JSON,
 * values of the wrong type, int64 as numbers and strings, snake_case names and forbidden keys.
 */
import { int, pick, randomBytes, type Rng } from './mutate.js';
import { EMPTY, doubleField, fixed32Field, fixed64Field, ld, tag, varint, varintField, WIRE } from './otlp-wire.js';

export interface GenerateOptions {
  /** Timestamps are generated around this instant (unix ms), mostly inside [now − 7 d, now]. */
  nowMs: number;
  /** The decoder's AnyValue depth limit: nesting is generated on both sides of it. */
  maxDepth: number;
}

/** Which edge one input pushes; the others stay small, so inputs stay a few KB. */
export type Stress = 'none' | 'many-attributes' | 'many-events' | 'many-links' | 'deep' | 'noise';

/** The generation state of one input. */
export interface Plan extends GenerateOptions {
  rng: Rng;
  stress: Stress;
  /** Lists allowed past their cap in this input (one). */
  bigLeft: number;
}

export function makePlan(rng: Rng, options: GenerateOptions): Plan {
  const r = rng();
  const stress: Stress =
    r < 0.55
      ? 'none'
      : r < 0.63
        ? 'many-attributes'
        : r < 0.71
          ? 'many-events'
          : r < 0.79
            ? 'many-links'
            : r < 0.9
              ? 'deep'
              : 'noise';
  return { ...options, rng, stress, bigLeft: 1 };
}

/** How many items a list gets: past its cap once when the plan stresses it, else a few. */
export function listLength(g: Plan, stress: Stress, cap: number, few: number): number {
  if (g.stress === stress && g.bigLeft > 0 && g.rng() < 0.5) {
    g.bigLeft -= 1;
    return cap + 1 + int(g.rng, 20);
  }
  return int(g.rng, few + 1);
}

/** AnyValue nesting: around the depth limit when the plan says 'deep', shallow otherwise. */
export function nestingDepth(g: Plan): number {
  return g.stress === 'deep' && g.rng() < 0.4 ? g.maxDepth - 2 + int(g.rng, 5) : int(g.rng, 3);
}

const BAD_BYTES = [
  Buffer.from([0]),
  Buffer.from([0xff]),
  Buffer.from([0xc0, 0xaf]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xe2, 0x82]),
];
const WORDS = ['GET /api', 'SELECT 1', 'service.name', 'http.route', 'é', '😀', '', 'k'];
const LONG = 'x'.repeat(5000); // over the 4096-byte value limit

function stringBytes(rng: Rng): Buffer {
  const r = rng();
  if (r < 0.003) return Buffer.from(LONG);
  if (r < 0.5) return Buffer.from(pick(rng, WORDS));
  if (r < 0.8) return Buffer.concat([Buffer.from(pick(rng, WORDS)), pick(rng, BAD_BYTES), Buffer.from('z')]);
  return randomBytes(rng, 40);
}

function id(rng: Rng, length: number): Buffer {
  const r = rng();
  if (r < 0.75) return fill(rng, length);
  if (r < 0.85) return Buffer.alloc(length); // all zero
  return fill(rng, pick(rng, [0, 1, length - 1, length + 1, 32]));
}

function fill(rng: Rng, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = int(rng, 256);
  return out;
}

export function timestampNs(rng: Rng, nowMs: number): bigint {
  const now = BigInt(nowMs) * 1_000_000n;
  const r = rng();
  if (r < 0.7) return now - BigInt(int(rng, 6 * 86_400)) * 1_000_000_000n - BigInt(int(rng, 1e9));
  return pick(rng, [0n, 1n, now + 3_600_000_000_000n, now - 8n * 86_400_000_000_000n, 2n ** 63n, 2n ** 64n - 1n]);
}

/** Mostly a short duration; sometimes before the start, or past what a bigint holds (2^63 and up). */
export function endTimeNs(rng: Rng, start: bigint): bigint {
  const r = rng();
  if (r < 0.9) return start + BigInt(int(rng, 1e9));
  if (r < 0.95) return start - 1n;
  return pick(rng, [2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n]);
}

/** In a 'noise' input: a field of an unknown number, or a known number with the wrong wire type. */
function noise(g: Plan): Buffer {
  if (g.stress !== 'noise' || g.rng() > 0.1) return EMPTY;
  const rng = g.rng;
  const field = rng() < 0.5 ? 1 + int(rng, 16) : pick(rng, [100, 1000, 536870911]);
  switch (int(rng, 4)) {
    case 0:
      return varintField(field, int(rng, 2 ** 31));
    case 1:
      return fixed64Field(field, BigInt(int(rng, 2 ** 31)));
    case 2:
      return fixed32Field(field, int(rng, 2 ** 31));
    default:
      return ld(field, randomBytes(rng, 24));
  }
}

/** Items of an array or kvlist: a single chain when deep, so nesting grows linearly, not 3^depth. */
export const width = (rng: Rng, depth: number): number => (depth > 3 ? 1 : 1 + int(rng, 3));

/** An encoded AnyValue nested up to `depth` more levels. */
function anyValue(g: Plan, depth: number): Buffer {
  const rng = g.rng;
  const nest = depth > 0 && rng() < (g.stress === 'deep' ? 0.97 : 0.5);
  const choice = nest ? 4 + int(rng, 2) : int(rng, 4);
  let value: Buffer;
  switch (choice) {
    case 0:
      value = ld(1, stringBytes(rng));
      break;
    case 1:
      value = varintField(2, int(rng, 3));
      break;
    case 2:
      value = varintField(3, rng() < 0.5 ? BigInt(int(rng, 1000)) : -1n);
      break;
    case 3:
      value = rng() < 0.5 ? doubleField(4, rng() * 1e6) : ld(7, randomBytes(rng, 16));
      break;
    case 4:
      value = ld(5, Buffer.concat(Array.from({ length: width(rng, depth) }, () => ld(1, anyValue(g, depth - 1)))));
      break;
    default:
      value = ld(6, Buffer.concat(Array.from({ length: width(rng, depth) }, () => ld(1, keyValue(g, depth - 1)))));
  }
  return Buffer.concat([value, noise(g)]);
}

function keyValue(g: Plan, depth: number): Buffer {
  return Buffer.concat([ld(1, stringBytes(g.rng)), g.rng() < 0.95 ? ld(2, anyValue(g, depth)) : EMPTY, noise(g)]);
}

function attributes(g: Plan, field: number): Buffer[] {
  return Array.from({ length: listLength(g, 'many-attributes', 128, 4) }, () =>
    ld(field, keyValue(g, nestingDepth(g))),
  );
}

function span(g: Plan): Buffer {
  const rng = g.rng;
  const start = timestampNs(rng, g.nowMs);
  const end = endTimeNs(rng, start);
  const events = Array.from({ length: listLength(g, 'many-events', 128, 2) }, () =>
    ld(
      11,
      Buffer.concat([
        fixed64Field(1, timestampNs(rng, g.nowMs)),
        ld(2, stringBytes(rng)),
        ...attributes(g, 3),
        noise(g),
      ]),
    ),
  );
  const links = Array.from({ length: listLength(g, 'many-links', 128, 2) }, () =>
    ld(
      13,
      Buffer.concat([
        ld(1, id(rng, 16)),
        ld(2, id(rng, 8)),
        ld(3, stringBytes(rng)),
        ...attributes(g, 4),
        fixed32Field(6, int(rng, 1024)),
        noise(g),
      ]),
    ),
  );
  return Buffer.concat([
    ld(1, id(rng, 16)),
    ld(2, id(rng, 8)),
    ...(rng() < 0.3
      ? [ld(3, rng() < 0.5 ? stringBytes(rng) : Buffer.from(`ot=th:${int(rng, 16).toString(16)},vendor=x`))]
      : []),
    ...(rng() < 0.6 ? [ld(4, id(rng, 8))] : []),
    ld(5, stringBytes(rng)),
    varintField(6, int(rng, 8)),
    fixed64Field(7, start),
    fixed64Field(8, end),
    ...attributes(g, 9),
    varintField(10, int(rng, 5)),
    ...events,
    ...links,
    ld(15, Buffer.concat([ld(2, stringBytes(rng)), varintField(3, int(rng, 5))])),
    ...(rng() < 0.5 ? [fixed32Field(16, int(rng, 2 ** 31))] : []),
    noise(g),
  ]);
}

/** A random, mostly well-formed ExportTraceServiceRequest in protobuf. */
export function generateProtobuf(rng: Rng, options: GenerateOptions): Buffer {
  const g = makePlan(rng, options);
  const groups = Array.from({ length: 1 + int(rng, 2) }, () => {
    const resource = Buffer.concat([...attributes(g, 1), noise(g)]);
    const scope = Buffer.concat([ld(1, stringBytes(rng)), ld(2, stringBytes(rng)), ...attributes(g, 3)]);
    const spans = Array.from({ length: int(rng, 4) }, () => ld(2, span(g)));
    return ld(1, Buffer.concat([ld(1, resource), ld(2, Buffer.concat([ld(1, scope), ...spans, noise(g)])), noise(g)]));
  });
  const body = Buffer.concat(groups);
  // Now and then a raw start-group tag or a truncated field at the end.
  if (rng() < 0.02) return Buffer.concat([body, tag(1 + int(rng, 4), WIRE.SGROUP)]);
  if (rng() < 0.02) return Buffer.concat([body, tag(1, WIRE.LEN), varint(1 + int(rng, 1000))]);
  return body;
}
