/**
 * A small protobuf wire writer: varints, fixed64/32, doubles, bytes, strings and nested messages.
 * A nested message is written in place after begin(); end() measures it and inserts its length
 * prefix, moving the bytes right by the prefix size (so no per-message buffers are allocated).
 * Field helpers skip proto3 default values; the `…Always` forms are for oneof members, which must
 * be written even when they hold a default.
 */

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;
const TWO_TO_64 = 1n << 64n;

function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

export class ProtoWriter {
  #buf: Buffer;
  #pos = 0;
  readonly #starts: number[] = [];

  constructor(initialBytes = 4096) {
    this.#buf = Buffer.allocUnsafe(initialBytes);
  }

  #reserve(bytes: number): void {
    if (this.#pos + bytes <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.#buf.copy(grown, 0, 0, this.#pos);
    this.#buf = grown;
  }

  /** An unsigned varint of a non-negative safe integer. */
  #varint(value: number): void {
    this.#reserve(10);
    while (value >= 0x80) {
      this.#buf[this.#pos++] = (value % 128) | 0x80;
      value = Math.floor(value / 128);
    }
    this.#buf[this.#pos++] = value;
  }

  /** A varint of an int64 (negative values as their 64-bit two's complement, 10 bytes). */
  #varint64(value: bigint): void {
    let v = value < 0n ? value + TWO_TO_64 : value;
    this.#reserve(10);
    while (v >= 0x80n) {
      this.#buf[this.#pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.#buf[this.#pos++] = Number(v);
  }

  #tag(field: number, wireType: number): void {
    this.#varint(field * 8 + wireType);
  }

  uint32(field: number, value: number): void {
    if (value === 0) return;
    this.#tag(field, WIRE_VARINT);
    this.#varint(value);
  }

  /** An int32 / enum field; negative values take 10 bytes, as protobuf encodes them. */
  int32(field: number, value: number): void {
    if (value === 0) return;
    this.#tag(field, WIRE_VARINT);
    if (value < 0) this.#varint64(BigInt(value));
    else this.#varint(value);
  }

  int64Always(field: number, value: bigint): void {
    this.#tag(field, WIRE_VARINT);
    this.#varint64(value);
  }

  boolAlways(field: number, value: boolean): void {
    this.#tag(field, WIRE_VARINT);
    this.#varint(value ? 1 : 0);
  }

  fixed64(field: number, value: bigint): void {
    if (value === 0n) return;
    this.#tag(field, WIRE_FIXED64);
    this.#reserve(8);
    this.#buf.writeBigUInt64LE(value < 0n ? value + TWO_TO_64 : value, this.#pos);
    this.#pos += 8;
  }

  fixed32(field: number, value: number): void {
    if (value === 0) return;
    this.#tag(field, WIRE_FIXED32);
    this.#reserve(4);
    this.#buf.writeUInt32LE(value >>> 0, this.#pos);
    this.#pos += 4;
  }

  doubleAlways(field: number, value: number): void {
    this.#tag(field, WIRE_FIXED64);
    this.#reserve(8);
    this.#buf.writeDoubleLE(value, this.#pos);
    this.#pos += 8;
  }

  bytes(field: number, value: Uint8Array): void {
    if (value.length === 0) return;
    this.#tag(field, WIRE_LEN);
    this.#varint(value.length);
    this.#reserve(value.length);
    this.#buf.set(value, this.#pos);
    this.#pos += value.length;
  }

  string(field: number, value: string): void {
    if (value !== '') this.stringAlways(field, value);
  }

  stringAlways(field: number, value: string): void {
    this.#tag(field, WIRE_LEN);
    const length = Buffer.byteLength(value, 'utf8');
    this.#varint(length);
    this.#reserve(length);
    this.#pos += this.#buf.write(value, this.#pos, 'utf8');
  }

  /** Starts a nested message in `field`; close it with end(). */
  begin(field: number): void {
    this.#tag(field, WIRE_LEN);
    this.#starts.push(this.#pos);
  }

  end(): void {
    const start = this.#starts.pop();
    if (start === undefined) throw new Error('end() without begin()');
    const length = this.#pos - start;
    const prefix = varintSize(length);
    this.#reserve(prefix);
    this.#buf.copyWithin(start + prefix, start, this.#pos);
    let at = start;
    let value = length;
    while (value >= 0x80) {
      this.#buf[at++] = (value % 128) | 0x80;
      value = Math.floor(value / 128);
    }
    this.#buf[at] = value;
    this.#pos += prefix;
  }

  /** The bytes written so far (a view on the writer's buffer). */
  finish(): Buffer {
    if (this.#starts.length > 0) throw new Error('finish() inside an open message');
    return this.#buf.subarray(0, this.#pos);
  }
}
