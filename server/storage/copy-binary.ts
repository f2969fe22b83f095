/**
 * Span rows → PostgreSQL's binary COPY format, in the column order of SPAN_COLUMNS (sql.ts), for
 * the direct COPY into spans. Compared with the text format, nothing is escaped, ids travel as raw
 * bytes instead of hex, and timestamps and integers as fixed-size fields, so both Node (no regex,
 * no string building) and PostgreSQL (no text parsing except for jsonb) do less per row.
 *
 * Layout (PostgreSQL docs, "COPY … Binary Format"): an 11-byte signature, a 32-bit flags field and a
 * 32-bit header-extension length; per row, a 16-bit field count, then per field a 32-bit length
 * (-1 for NULL) and the bytes of the type's binary send format; a 16-bit -1 ends the data.
 * Big-endian throughout. timestamptz is int64 microseconds since 2000-01-01 UTC; jsonb is a
 * version byte (1) followed by the JSON text.
 *
 * Rows are written straight into ~1 MiB buffers, sized up front with the worst case of each string
 * (3 bytes per UTF-16 unit), so a row never straddles two buffers and nothing is copied twice.
 */
import type { SpanRow } from '../decode/types.js';
import type { EncodedRows } from './copy-text.js';
import { TimestampFormatter } from './copy-text.js';
import { attributeSetIdOf } from './attribute-set-id.js';
import { ResourceIdResolver } from './resource-id.js';
import { SPAN_COLUMNS } from './sql.js';
import type { SpanBatch } from './types.js';
import { collectCatalogRow, newWriteCatalog, type WriteCatalog } from './write-catalog.js';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER_BYTES = SIGNATURE.length + 8;
const CHUNK_BYTES = 1 << 20;
const MIN_CHUNK_BYTES = 64 << 10;
/** Room past the expected size: rows reserve 3 bytes per UTF-16 unit before they are written. */
const CHUNK_SLACK_BYTES = 16 << 10;
/** Unix epoch → PostgreSQL epoch (2000-01-01), in microseconds. */
const PG_EPOCH_US = 946_684_800_000_000;
const US_PER_DAY = 86_400_000_000;
const TWO_32 = 4_294_967_296;
const JSONB_VERSION = 1;
/** Strings up to this many UTF-16 units are tried as ASCII in JS before the native encoder. */
const SHORT_STRING = 48;

/** Buffer's own UTF-8 writer (what buf.write(string, offset) calls after checking its arguments). */
interface Utf8Writable {
  utf8Write(value: string, offset: number): number;
}

/** The fixed part of a row: field count, one length word per column, and every fixed-size value. */
const FIXED_ROW_BYTES = 2 + SPAN_COLUMNS.length * 4 + 16 + 8 + 8 + 4 + 2 + 8 + 8 + 8 + 2 + 4 * 3 + 8 + 8 + 8 + 3; // + 3 jsonb versions

/**
 * Buffers sized to the batch: a chunk is as large as what is expected to remain (at most
 * CHUNK_BYTES), so a write of one 512-span request holds ~0.4 MiB rather than a whole 1 MiB.
 */
class ChunkWriter {
  readonly chunks: Buffer[] = [];
  buf: Buffer;
  pos = 0;
  #expectedRemaining: number;

  /** `expectedBytes`: the encoding's size if every string is ASCII (more is allowed). */
  constructor(expectedBytes: number) {
    this.#expectedRemaining = expectedBytes;
    this.buf = this.#allocate(0);
  }

  /** Makes room for `bytes` more in the current buffer, starting a new one when needed. */
  reserve(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    this.flush();
    this.buf = this.#allocate(bytes);
  }

  flush(): void {
    if (this.pos > 0) this.chunks.push(this.buf.subarray(0, this.pos));
    this.#expectedRemaining -= this.pos;
    this.pos = 0;
  }

  #allocate(atLeast: number): Buffer {
    const wanted = Math.min(CHUNK_BYTES, Math.max(this.#expectedRemaining + CHUNK_SLACK_BYTES, MIN_CHUNK_BYTES));
    return Buffer.allocUnsafe(Math.max(wanted, atLeast));
  }

  int16(value: number): void {
    this.buf.writeInt16BE(value, this.pos);
    this.pos += 2;
  }

  int32(value: number): void {
    this.buf.writeInt32BE(value, this.pos);
    this.pos += 4;
  }

  /** A safe integer as int64, without a BigInt. */
  int64(value: number): void {
    const high = Math.floor(value / TWO_32);
    this.buf.writeInt32BE(high, this.pos);
    this.buf.writeUInt32BE(value - high * TWO_32, this.pos + 4);
    this.pos += 8;
  }

  bigint(value: bigint): void {
    this.buf.writeBigInt64BE(value, this.pos);
    this.pos += 8;
  }

  float8(value: number): void {
    this.buf.writeDoubleBE(value, this.pos);
    this.pos += 8;
  }

  /** A length-prefixed field of fixed size. */
  field(bytes: number): void {
    this.int32(bytes);
  }

  text(value: string): void {
    const written = this.#utf8(value, this.pos + 4);
    this.buf.writeInt32BE(written, this.pos);
    this.pos += 4 + written;
  }

  jsonb(value: string): void {
    const written = this.#utf8(value, this.pos + 5);
    this.buf.writeInt32BE(written + 1, this.pos);
    this.buf[this.pos + 4] = JSONB_VERSION;
    this.pos += 5 + written;
  }

  /**
   * Writes `value` as UTF-8 at `at`, returning the byte count. Short ASCII strings (names, service
   * names, empty fields: most of a row's strings) are copied by hand: cheaper than the native call.
   */
  #utf8(value: string, at: number): number {
    const length = value.length;
    if (length <= SHORT_STRING) {
      const buf = this.buf;
      let i = 0;
      for (; i < length; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + i] = c;
      }
      if (i === length) return length;
    }
    return (this.buf as unknown as Utf8Writable).utf8Write(value, at);
  }

  bytes(value: Buffer | null): void {
    if (value === null) {
      this.int32(-1);
      return;
    }
    this.int32(value.length);
    value.copy(this.buf, this.pos);
    this.pos += value.length;
  }
}

/** Binary COPY data, and the write's distinct resources and attribute sets met on the way. */
export interface EncodedBinaryRows extends EncodedRows {
  catalog: WriteCatalog;
}

/** Encodes every row of every batch for COPY spans (…) FROM STDIN (FORMAT binary). */
export function encodeCopyBinary(batches: readonly SpanBatch[]): EncodedBinaryRows {
  const lengths: number[] = []; // variableLength of each row, in order
  let expected = HEADER_BYTES + 2;
  for (const batch of batches) {
    for (const row of batch.rows) {
      const length = variableLength(batch.tenant, row);
      lengths.push(length);
      expected += FIXED_ROW_BYTES + length;
    }
  }
  const out = new ChunkWriter(expected);
  const days = new Set<number>();
  const resourceIds = new ResourceIdResolver();
  const catalog = newWriteCatalog();
  let rowCount = 0;
  out.reserve(HEADER_BYTES);
  SIGNATURE.copy(out.buf, 0);
  out.pos = SIGNATURE.length;
  out.int32(0); // flags: no OIDs
  out.int32(0); // header extension length
  for (const batch of batches) {
    let lastResourceId: bigint | undefined;
    for (const row of batch.rows) {
      const startUs = TimestampFormatter.micros(row.startTimeUnixNano);
      days.add(Math.floor(startUs / US_PER_DAY));
      out.reserve(FIXED_ROW_BYTES + 3 * lengths[rowCount]);
      const resourceId = resourceIds.idOf(row);
      // Rows of one resource come in runs: a resource is looked up once per run.
      if (resourceId !== lastResourceId) {
        lastResourceId = resourceId;
        collectCatalogRow(catalog.resources, batch.tenant, resourceId, resourceIds.last!);
      }
      const setId = attributeSetIdOf(row.sharedAttributes);
      if (setId !== null) collectCatalogRow(catalog.attributeSets, batch.tenant, setId, row.sharedAttributes);
      writeRow(out, batch.tenant, row, startUs, resourceId, setId);
      rowCount++;
    }
  }
  out.reserve(2);
  out.int16(-1);
  out.flush();
  return { chunks: out.chunks, rowCount, days, catalog };
}

/** UTF-16 units of every string field: at most 3 UTF-8 bytes each. */
function variableLength(tenant: string, r: SpanRow): number {
  return (
    tenant.length +
    r.traceState.length +
    r.name.length +
    r.serviceName.length +
    r.statusMessage.length +
    r.attributes.length +
    r.events.length +
    r.links.length
  );
}

function writeRow(
  out: ChunkWriter,
  tenant: string,
  r: SpanRow,
  startUs: number,
  resourceId: bigint,
  setId: bigint | null,
): void {
  out.int16(SPAN_COLUMNS.length);
  out.text(tenant);
  out.bytes(r.traceId);
  out.bytes(r.spanId);
  out.bytes(r.parentSpanId);
  out.text(r.traceState);
  out.field(4);
  out.int32(r.flags);
  out.text(r.name);
  out.field(2);
  out.int16(r.kind);
  out.text(r.serviceName);
  out.field(8);
  out.int64(startUs - PG_EPOCH_US);
  out.field(8);
  out.bigint(r.startTimeUnixNano);
  out.field(8);
  out.bigint(r.endTimeUnixNano - r.startTimeUnixNano);
  out.field(2);
  out.int16(r.statusCode);
  out.text(r.statusMessage);
  out.jsonb(r.attributes);
  out.jsonb(r.events);
  out.jsonb(r.links);
  out.field(4);
  out.int32(r.droppedAttributesCount);
  out.field(4);
  out.int32(r.droppedEventsCount);
  out.field(4);
  out.int32(r.droppedLinksCount);
  out.field(8);
  out.float8(r.samplingWeight);
  out.field(8);
  out.bigint(resourceId);
  if (setId === null) out.field(-1);
  else {
    out.field(8);
    out.bigint(setId);
  }
}
