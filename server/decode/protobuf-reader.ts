/**
 * Protobuf wire-format primitives over one request body: varints (32-bit and 64-bit), fixed32,
 * fixed64, doubles, length-delimited payloads and skipping of unknown fields. Every read is
 * bounds-checked; malformed input throws TH_ERR_DECODE_BAD_PROTOBUF with the byte offset.
 *
 * Groups (wire types 3 and 4) are deprecated and never used by OTLP; they are refused rather than
 * skipped, so a body of nested groups cannot make the reader recurse or loop.
 */
import { TracehouseError } from '../errors.js';

export const WireType = {
  VARINT: 0,
  I64: 1,
  LEN: 2,
  START_GROUP: 3,
  END_GROUP: 4,
  I32: 5,
} as const;

/** A field's tag as it appears on the wire: field number << 3 | wire type. */
export function fieldTag(field: number, wireType: number): number {
  return (field << 3) | wireType;
}

const TWO_POW_32 = 4294967296;
/** int64 values whose high word lies in [-2^21, 2^21) fit a double exactly (|v| < 2^53). */
const SAFE_HIGH_WORD = 0x200000;

export function throwBadProtobuf(reason: string, pos: number): never {
  throw new TracehouseError('TH_ERR_DECODE_BAD_PROTOBUF', `invalid protobuf at byte ${pos}: ${reason}`);
}

export class ProtobufReader {
  readonly buf: Buffer;
  pos = 0;
  /** Low and high 32-bit words of the last readVarint64 (unsigned). */
  lo = 0;
  hi = 0;

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  /** Reads a tag (field number << 3 | wire type). Field number 0 is invalid. */
  readTag(): number {
    const start = this.pos;
    const tag = this.readVarint32();
    if (tag >>> 3 === 0) throwBadProtobuf('field number 0', start);
    return tag;
  }

  /** Reads a varint of up to 10 bytes and keeps its low 32 bits, as protobuf does for uint32 and enums. */
  readVarint32(): number {
    const buf = this.buf;
    let pos = this.pos;
    if (pos >= buf.length) throwBadProtobuf('truncated varint', pos);
    let b = buf[pos++];
    if (b < 0x80) {
      this.pos = pos;
      return b;
    }
    let value = b & 0x7f;
    for (let shift = 7; shift < 70; shift += 7) {
      if (pos >= buf.length) throwBadProtobuf('truncated varint', pos);
      b = buf[pos++];
      if (shift < 32) value |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return value >>> 0;
      }
    }
    return throwBadProtobuf('varint longer than 10 bytes', this.pos);
  }

  /** Reads a varint of up to 10 bytes into `lo` / `hi` (two unsigned 32-bit words). */
  readVarint64(): void {
    const buf = this.buf;
    const start = this.pos;
    let pos = start;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throwBadProtobuf('truncated varint', pos);
      const b = buf[pos++];
      const bits = b & 0x7f;
      if (i < 4) {
        lo |= bits << (7 * i);
      } else if (i === 4) {
        lo |= bits << 28;
        hi |= bits >>> 4;
      } else {
        hi |= bits << (7 * i - 32);
      }
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
    }
    throwBadProtobuf('varint longer than 10 bytes', start);
  }

  /** Reads an int64 varint and returns it as an exact decimal string. */
  readInt64Decimal(): string {
    this.readVarint64();
    const high = this.hi | 0;
    if (high >= -SAFE_HIGH_WORD && high < SAFE_HIGH_WORD) return String(high * TWO_POW_32 + this.lo);
    return BigInt.asIntN(64, (BigInt(this.hi) << 32n) | BigInt(this.lo)).toString();
  }

  /** Reads a bool varint: any non-zero 64-bit value is true. */
  readBool(): boolean {
    this.readVarint64();
    return (this.lo | this.hi) !== 0;
  }

  /**
   * Reads the length prefix of a length-delimited field and returns where its payload ends.
   * The payload must end within `limit` (the end of the enclosing message).
   */
  readDelimitedEnd(limit: number): number {
    const start = this.pos;
    this.readVarint64();
    if (this.hi !== 0 || this.pos + this.lo > limit) {
      const length = this.hi * TWO_POW_32 + this.lo;
      throwBadProtobuf(`length ${length} runs past the end of its message (byte ${limit})`, start);
    }
    return this.pos + this.lo;
  }

  readFixed32(): number {
    const buf = this.buf;
    const pos = this.pos;
    if (pos + 4 > buf.length) throwBadProtobuf('truncated fixed32', pos);
    this.pos = pos + 4;
    return (buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) | (buf[pos + 3] << 24)) >>> 0;
  }

  /** Reads a fixed64 as an unsigned bigint (timestamps in unix nanoseconds). */
  readFixed64(): bigint {
    const buf = this.buf;
    const pos = this.pos;
    if (pos + 8 > buf.length) throwBadProtobuf('truncated fixed64', pos);
    this.pos = pos + 8;
    const lo = (buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) | (buf[pos + 3] << 24)) >>> 0;
    const hi = (buf[pos + 4] | (buf[pos + 5] << 8) | (buf[pos + 6] << 16) | (buf[pos + 7] << 24)) >>> 0;
    if (hi < SAFE_HIGH_WORD) return BigInt(hi * TWO_POW_32 + lo);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  readDouble(): number {
    const pos = this.pos;
    if (pos + 8 > this.buf.length) throwBadProtobuf('truncated double', pos);
    this.pos = pos + 8;
    return this.buf.readDoubleLE(pos);
  }

  /** Skips the value of a field this decoder does not use. */
  skipField(tag: number, limit: number): void {
    const wireType = tag & 7;
    switch (wireType) {
      case WireType.VARINT:
        this.readVarint64();
        return;
      case WireType.I64:
        if (this.pos + 8 > this.buf.length) throwBadProtobuf('truncated fixed64', this.pos);
        this.pos += 8;
        return;
      case WireType.LEN:
        this.pos = this.readDelimitedEnd(limit);
        return;
      case WireType.I32:
        if (this.pos + 4 > this.buf.length) throwBadProtobuf('truncated fixed32', this.pos);
        this.pos += 4;
        return;
      case WireType.START_GROUP:
      case WireType.END_GROUP:
        return throwBadProtobuf(`group (wire type ${wireType}) in field ${tag >>> 3} is not supported`, this.pos);
      default:
        return throwBadProtobuf(`invalid wire type ${wireType} in field ${tag >>> 3}`, this.pos);
    }
  }

  /** Fails unless the fields of a message ended exactly at its declared end. */
  expectEnd(end: number): void {
    if (this.pos !== end) throwBadProtobuf(`a field runs past the end of its message (byte ${end})`, this.pos);
  }
}
