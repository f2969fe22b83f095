import { describe, expect, it } from 'vitest';
import { ProtobufReader } from '../../../server/decode/protobuf-reader.js';
import { errorCodeOf, varint } from './decode-helpers.js';

const reader = (...bytes: (number[] | Buffer)[]) =>
  new ProtobufReader(Buffer.concat(bytes.map((b) => (Buffer.isBuffer(b) ? b : Buffer.from(b)))));

describe('ProtobufReader varints', () => {
  it('reads one-byte and multi-byte varints', () => {
    const r = reader([0x08], [0x96, 0x01], varint(0xffffffff));
    expect(r.readVarint32()).toBe(8);
    expect(r.readVarint32()).toBe(150);
    expect(r.readVarint32()).toBe(0xffffffff);
    expect(r.pos).toBe(r.buf.length);
  });

  it('keeps the low 32 bits of a longer varint, as protobuf does for uint32 and enums', () => {
    expect(reader(varint(2n ** 32n + 5n)).readVarint32()).toBe(5);
    expect(reader(varint(-1)).readVarint32()).toBe(0xffffffff); // a negative int32 enum is 10 bytes
  });

  it('reads int64 varints exactly as decimal strings, including the extremes', () => {
    const values = [
      0n,
      1n,
      -1n,
      150n,
      2n ** 53n + 1n,
      -(2n ** 53n) - 1n,
      2n ** 63n - 1n,
      -(2n ** 63n),
      4294967296n,
      -4294967296n,
    ];
    const r = reader(...values.map((v) => varint(v)));
    for (const v of values) expect(r.readInt64Decimal()).toBe(v.toString());
  });

  it('reads a bool from any non-zero varint', () => {
    const r = reader([0x00], [0x01], varint(2n ** 40n));
    expect(r.readBool()).toBe(false);
    expect(r.readBool()).toBe(true);
    expect(r.readBool()).toBe(true);
  });

  it('rejects a truncated varint with TH_ERR_DECODE_BAD_PROTOBUF', () => {
    const err = errorCodeOf(() => reader([0x96]).readVarint32());
    expect(err.code).toBe('TH_ERR_DECODE_BAD_PROTOBUF');
    expect(err.httpStatus).toBe(400);
    expect(err.message).toMatch(/truncated varint/);
    expect(errorCodeOf(() => reader([0xff, 0xff]).readVarint64()).message).toMatch(/truncated varint/);
  });

  it('rejects a varint longer than 10 bytes', () => {
    const bytes = Array(11).fill(0xff);
    expect(errorCodeOf(() => reader(bytes).readVarint32()).message).toMatch(/longer than 10 bytes/);
    expect(errorCodeOf(() => reader(bytes).readVarint64()).message).toMatch(/longer than 10 bytes/);
  });
});

describe('ProtobufReader fixed-width and length-delimited values', () => {
  it('reads little-endian fixed32, fixed64 and double', () => {
    const b = Buffer.alloc(20);
    b.writeUInt32LE(0xdeadbeef, 0);
    b.writeBigUInt64LE(18446744073709551615n, 4);
    b.writeDoubleLE(-1.5, 12);
    const r = new ProtobufReader(b);
    expect(r.readFixed32()).toBe(0xdeadbeef);
    expect(r.readFixed64()).toBe(18446744073709551615n);
    expect(r.readDouble()).toBe(-1.5);
  });

  it('reads a fixed64 timestamp exactly', () => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(1790000000123456789n);
    expect(new ProtobufReader(b).readFixed64()).toBe(1790000000123456789n);
  });

  it('rejects truncated fixed-width values', () => {
    expect(errorCodeOf(() => reader([1, 2, 3]).readFixed32()).message).toMatch(/truncated fixed32/);
    expect(errorCodeOf(() => reader([1, 2, 3, 4, 5, 6, 7]).readFixed64()).message).toMatch(/truncated fixed64/);
    expect(errorCodeOf(() => reader([1, 2, 3]).readDouble()).message).toMatch(/truncated double/);
  });

  it('returns the end of a length-delimited payload and rejects one that runs past its message', () => {
    const r = reader([0x03, 1, 2, 3]);
    expect(r.readDelimitedEnd(4)).toBe(4);
    expect(errorCodeOf(() => reader([0x04, 1, 2, 3]).readDelimitedEnd(4)).message).toMatch(/runs past the end/);
    // within the buffer but past the enclosing message
    expect(errorCodeOf(() => reader([0x03, 1, 2, 3, 9]).readDelimitedEnd(3)).message).toMatch(/runs past the end/);
    // a length of 2^32 + 1 must not wrap to 1
    expect(errorCodeOf(() => reader(varint(2n ** 32n + 1n), [0]).readDelimitedEnd(100)).code).toBe(
      'TH_ERR_DECODE_BAD_PROTOBUF',
    );
  });
});

describe('ProtobufReader tags and unknown fields', () => {
  it('skips unknown fields of every wire type', () => {
    const r = reader(
      [0x08, 0x96, 0x01],
      [0x11, 1, 2, 3, 4, 5, 6, 7, 8],
      [0x1a, 2, 9, 9],
      [0x25, 1, 2, 3, 4],
      [0x28, 1],
    );
    for (let i = 0; i < 4; i++) r.skipField(r.readTag(), r.buf.length);
    expect(r.readTag()).toBe(0x28);
    expect(r.readVarint32()).toBe(1);
  });

  it('refuses groups (wire types 3 and 4) instead of recursing into them', () => {
    for (const wireType of [3, 4]) {
      const r = reader([(1 << 3) | wireType]);
      const err = errorCodeOf(() => r.skipField(r.readTag(), r.buf.length));
      expect(err.code).toBe('TH_ERR_DECODE_BAD_PROTOBUF');
      expect(err.message).toMatch(/group/);
    }
  });

  it('rejects wire types 6 and 7 and field number 0', () => {
    for (const wireType of [6, 7]) {
      const r = reader([(1 << 3) | wireType]);
      expect(errorCodeOf(() => r.skipField(r.readTag(), 1)).message).toMatch(/invalid wire type/);
    }
    expect(errorCodeOf(() => reader([0x02, 0x00]).readTag()).message).toMatch(/field number 0/);
  });

  it('detects a field that overruns the end of its message', () => {
    const r = reader([0x08, 0x96, 0x01]);
    r.readTag();
    r.readVarint32();
    expect(() => r.expectEnd(3)).not.toThrow();
    expect(errorCodeOf(() => r.expectEnd(2)).message).toMatch(/runs past the end of its message/);
  });
});
