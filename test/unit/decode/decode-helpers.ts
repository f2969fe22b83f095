/** Shared setup for the decode tests: default options around a fixed "now", and protobuf byte builders. */
import { expect } from 'vitest';
import { decodeExportRequest } from '../../../server/decode/index.js';
import type { DecodeLimits, DecodeOptions, DecodedRequest, SpanRow, WireFormat } from '../../../server/decode/types.js';
import { isTracehouseError, type ErrorCode } from '../../../server/errors.js';

export const NOW_MS = 1_790_000_000_000; // 2026-09-21
export const NOW_NS = BigInt(NOW_MS) * 1_000_000n;
export const DAY_NS = 86_400n * 1_000_000_000n;

export const LIMITS: DecodeLimits = {
  maxAnyValueDepth: 32,
  maxAttributeValueBytes: 4096,
  maxAttributesPerSpan: 128,
  maxEventsPerSpan: 128,
  maxLinksPerSpan: 128,
};

/** Accepts starts in [now - 7 days, now + 10 minutes]. */
export function decodeOptions(limits: Partial<DecodeLimits> = {}): DecodeOptions {
  return {
    limits: { ...LIMITS, ...limits },
    window: { minStartUnixNano: NOW_NS - 7n * DAY_NS, maxStartUnixNano: NOW_NS + 600n * 1_000_000_000n },
  };
}

export function decode(body: Buffer | string, format: WireFormat, limits: Partial<DecodeLimits> = {}): DecodedRequest {
  return decodeExportRequest(typeof body === 'string' ? Buffer.from(body) : body, format, decodeOptions(limits));
}

/** Runs fn and returns the TracehouseError code it threw (fails if it threw anything else or nothing). */
export function errorCodeOf(fn: () => unknown): { code: ErrorCode; message: string; httpStatus: number } {
  try {
    fn();
  } catch (err) {
    if (!isTracehouseError(err)) throw err;
    return { code: err.code, message: err.message, httpStatus: err.httpStatus };
  }
  throw new Error('expected a TracehouseError, nothing was thrown');
}

/** Rows with bigints and Buffers made comparable (hex / decimal strings). */
export function comparableRows(rows: SpanRow[]): Record<string, unknown>[] {
  return rows.map((row) => {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(row)) {
      if (Buffer.isBuffer(value)) out[key] = value.toString('hex');
      else if (typeof value === 'bigint') out[key] = value.toString();
      else out[key] = value;
    }
    return out;
  });
}

/** Every JSON column of every row parses. */
export function expectJsonColumnsParse(rows: SpanRow[]): void {
  for (const row of rows) {
    for (const text of [row.attributes, row.resourceAttributes, row.scopeAttributes, row.events, row.links]) {
      expect(() => JSON.parse(text)).not.toThrow();
    }
  }
}

// --- protobuf byte builders (wire format by hand, independent of the decoder) ---

export function varint(value: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

export function tag(field: number, wireType: number): Buffer {
  return varint((field << 3) | wireType);
}

/** A length-delimited field. */
export function ld(field: number, ...payload: (Buffer | string)[]): Buffer {
  const bytes = Buffer.concat(payload.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
  return Buffer.concat([tag(field, 2), varint(bytes.length), bytes]);
}

export function fixed64(field: number, value: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, value));
  return Buffer.concat([tag(field, 1), b]);
}

export function fixed32(field: number, value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0);
  return Buffer.concat([tag(field, 5), b]);
}

export function varintField(field: number, value: number | bigint): Buffer {
  return Buffer.concat([tag(field, 0), varint(value)]);
}

export const TRACE_ID = Buffer.from('5b8efff798038103d269b633813fc60c', 'hex');
export const SPAN_ID = Buffer.from('eee19b7ec3c1b174', 'hex');
export const PARENT_ID = Buffer.from('eee19b7ec3c1b173', 'hex');

/** Span fields 1, 2, 5, 7, 8 of a valid span starting one second before NOW. Override by appending fields. */
export function spanFields(...extra: Buffer[]): Buffer {
  const start = NOW_NS - 1_000_000_000n;
  return Buffer.concat([
    ld(1, TRACE_ID),
    ld(2, SPAN_ID),
    ld(5, 'GET /'),
    fixed64(7, start),
    fixed64(8, start + 1000n),
    ...extra,
  ]);
}

/** ExportTraceServiceRequest{ResourceSpans{resource?, ScopeSpans{spans}}} from raw Span payloads. */
export function requestOf(spans: Buffer[], resource?: Buffer): Buffer {
  const scopeSpans = ld(2, ...spans.map((s) => ld(2, s)));
  const resourceSpans = resource === undefined ? scopeSpans : Buffer.concat([ld(1, resource), scopeSpans]);
  return ld(1, resourceSpans);
}

/** KeyValue{key, value: AnyValue payload}. */
export function keyValue(key: string | Buffer, anyValue: Buffer): Buffer {
  return Buffer.concat([ld(1, key), ld(2, anyValue)]);
}

export function stringValue(value: string | Buffer): Buffer {
  return ld(1, value);
}

// --- OTLP/JSON builders ---

export const TRACE_HEX = TRACE_ID.toString('hex');
export const SPAN_HEX = SPAN_ID.toString('hex');

/** A valid OTLP/JSON span starting one second before NOW, with overrides. */
export function jsonSpan(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const start = NOW_NS - 1_000_000_000n;
  return {
    traceId: TRACE_HEX,
    spanId: SPAN_HEX,
    name: 'GET /',
    startTimeUnixNano: start.toString(),
    endTimeUnixNano: (start + 1000n).toString(),
    ...overrides,
  };
}

export function jsonRequestOf(spans: unknown[], resourceAttributes: unknown[] = []): string {
  return JSON.stringify({ resourceSpans: [{ resource: { attributes: resourceAttributes }, scopeSpans: [{ spans }] }] });
}
