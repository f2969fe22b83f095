/**
 * Mutators for fuzzing: random bytes, and mutations of valid encodings (bit flips, interesting
 * bytes, truncation, insertion, deletion, duplication, splicing with another seed) plus two that
 * know the protobuf wire format: a length prefix or a varint rewritten in place (too short, too
 * long, huge, overlong encodings). Every mutator is a pure function of the rng it is given, so an
 * input is reproducible from its seed alone.
 */
import { varint } from './otlp-wire.js';

export type Rng = () => number;

export const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
export const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)];

/** A 32-bit seed for input `index` of a run seeded `seed` (splitmix-style mixing). */
export function inputSeed(seed: number, index: number): number {
  let x = (seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** mulberry32: a small, fast, seedable PRNG returning [0, 1). */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rng: Rng, maxLength: number): Buffer {
  const out = Buffer.allocUnsafe(int(rng, maxLength + 1));
  for (let i = 0; i < out.length; i++) out[i] = int(rng, 256);
  return out;
}

const INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x07, 0x08, 0x0a, 0x12, 0x1a, 0x22, 0x7f, 0x80, 0xff, 0xfe, 0xc0, 0xed];
const INTERESTING_VARINTS: Array<number | bigint> = [
  0,
  1,
  0x7f,
  0x80,
  0x3fff,
  0x4000,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53,
  2n ** 63n,
  2n ** 64n - 1n,
];

/** Where the length prefixes and varints of a protobuf body are, found by a tolerant walk. */
export interface WireMap {
  /** [offset, size] of each length prefix of a LEN field, nested messages included. */
  lengths: Array<[number, number]>;
  /** [offset, size] of each VARINT field's value. */
  varints: Array<[number, number]>;
}

function readVarintAt(buf: Buffer, at: number, end: number): [number, number] | undefined {
  let value = 0;
  for (let i = 0; i < 10 && at + i < end; i++) {
    const byte = buf[at + i];
    value += (byte & 0x7f) * 2 ** (7 * i);
    if (byte < 0x80) return [value, i + 1];
  }
  return undefined;
}

/** Walks `buf` as a message, recursing into every LEN payload that itself parses as one. */
export function mapWire(
  buf: Buffer,
  start = 0,
  end = buf.length,
  map: WireMap = { lengths: [], varints: [] },
  depth = 0,
): WireMap {
  let at = start;
  while (at < end) {
    const key = readVarintAt(buf, at, end);
    if (!key || key[0] < 8) return map;
    at += key[1];
    const wireType = key[0] % 8;
    if (wireType === 0) {
      const value = readVarintAt(buf, at, end);
      if (!value) return map;
      map.varints.push([at, value[1]]);
      at += value[1];
    } else if (wireType === 1) at += 8;
    else if (wireType === 5) at += 4;
    else if (wireType === 2) {
      const length = readVarintAt(buf, at, end);
      if (!length || at + length[1] + length[0] > end) return map;
      map.lengths.push([at, length[1]]);
      at += length[1];
      if (depth < 12 && length[0] > 1) mapWire(buf, at, at + length[0], map, depth + 1);
      at += length[0];
    } else return map;
  }
  return map;
}

function replace(buf: Buffer, at: number, size: number, bytes: Buffer): Buffer {
  return Buffer.concat([buf.subarray(0, at), bytes, buf.subarray(at + size)]);
}

/** A varint rewritten: off by one, zero, huge, or an overlong (padded) encoding of itself. */
function corruptVarint(rng: Rng, buf: Buffer, at: number, size: number): Buffer {
  const current = readVarintAt(buf, at, buf.length)?.[0] ?? 0;
  switch (int(rng, 5)) {
    case 0:
      return replace(buf, at, size, varint(current + 1 + int(rng, 16)));
    case 1:
      return replace(buf, at, size, varint(Math.max(0, current - 1 - int(rng, 16))));
    case 2:
      return replace(buf, at, size, varint(pick(rng, INTERESTING_VARINTS)));
    case 3: {
      const overlong = Buffer.from(varint(current));
      overlong[overlong.length - 1] |= 0x80;
      return replace(buf, at, size, Buffer.concat([overlong, Buffer.from([0x00])]));
    }
    default:
      return replace(buf, at, size, Buffer.alloc(11, 0xff)); // an unterminated 11-byte varint
  }
}

/** One to four stacked mutations of `seed`; `map` is mapWire(seed) for the structure-aware ones. */
export function mutate(rng: Rng, seed: Buffer, map: WireMap | undefined, others: readonly Buffer[]): Buffer {
  let out = seed;
  const rounds = 1 + int(rng, 4);
  for (let r = 0; r < rounds; r++) {
    const structural = map !== undefined && r === 0 && rng() < 0.4; // offsets are only valid on the seed
    if (structural && map.lengths.length > 0 && rng() < 0.6) {
      const [at, size] = pick(rng, map.lengths);
      out = corruptVarint(rng, out, at, size);
      continue;
    }
    if (structural && map.varints.length > 0) {
      const [at, size] = pick(rng, map.varints);
      out = corruptVarint(rng, out, at, size);
      continue;
    }
    if (out.length === 0) {
      out = randomBytes(rng, 16);
      continue;
    }
    const at = int(rng, out.length);
    switch (int(rng, 8)) {
      case 0: {
        out = Buffer.from(out);
        out[at] ^= 1 << int(rng, 8);
        break;
      }
      case 1: {
        out = Buffer.from(out);
        out[at] = pick(rng, INTERESTING_BYTES);
        break;
      }
      case 2:
        out = out.subarray(0, at);
        break;
      case 3:
        out = Buffer.concat([out.subarray(0, at), randomBytes(rng, 8), out.subarray(at)]);
        break;
      case 4:
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + int(rng, 32))]);
        break;
      case 5: {
        const length = 1 + int(rng, 64);
        out = Buffer.concat([out.subarray(0, at + length), out.subarray(at, at + length), out.subarray(at + length)]);
        break;
      }
      case 6: {
        const other = pick(rng, others);
        const from = int(rng, other.length);
        out = Buffer.concat([
          out.subarray(0, at),
          other.subarray(from, from + 1 + int(rng, 256)),
          out.subarray(at + int(rng, 64)),
        ]);
        break;
      }
      default: {
        const other = pick(rng, others);
        out = Buffer.concat([out.subarray(0, at), other.subarray(int(rng, other.length))]);
      }
    }
  }
  return out;
}
