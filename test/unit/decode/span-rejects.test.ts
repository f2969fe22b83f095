import { describe, expect, it } from 'vitest';
import type { RejectReason } from '../../../server/decode/types.js';
import {
  DAY_NS,
  NOW_NS,
  PARENT_ID,
  SPAN_ID,
  SPAN_HEX,
  TRACE_ID,
  TRACE_HEX,
  decode,
  fixed64,
  jsonRequestOf,
  jsonSpan,
  ld,
  requestOf,
  spanFields,
} from './decode-helpers.js';

const S = 1_000_000_000n;

/** A protobuf request with one valid span and one span with the given extra fields (later fields win). */
function protobufWithBadSpan(...fields: Buffer[]) {
  return decode(requestOf([spanFields(), spanFields(...fields)]), 'protobuf');
}

function jsonWithBadSpan(overrides: Record<string, unknown>) {
  return decode(jsonRequestOf([jsonSpan(), jsonSpan(overrides)]), 'json');
}

function expectOneRejected(result: ReturnType<typeof decode>, reason: RejectReason) {
  expect(result.rows).toHaveLength(1);
  expect(result.spanCount).toBe(2);
  expect(result.rejected).toEqual({ [reason]: 1 });
  expect(result.rejectMessage).toBe(`1 span rejected: 1 ${reason}`);
}

describe('per-span rejects for bad ids (protobuf)', () => {
  const cases: [string, Buffer[], RejectReason][] = [
    ['a 15-byte trace id', [ld(1, TRACE_ID.subarray(1))], 'invalid_trace_id'],
    ['a 17-byte trace id', [ld(1, Buffer.concat([TRACE_ID, Buffer.from([1])]))], 'invalid_trace_id'],
    ['an all-zero trace id', [ld(1, Buffer.alloc(16))], 'invalid_trace_id'],
    ['an empty trace id', [ld(1, Buffer.alloc(0))], 'invalid_trace_id'],
    ['a 7-byte span id', [ld(2, SPAN_ID.subarray(1))], 'invalid_span_id'],
    ['an all-zero span id', [ld(2, Buffer.alloc(8))], 'invalid_span_id'],
    ['a 9-byte parent span id', [ld(4, Buffer.concat([PARENT_ID, Buffer.from([1])]))], 'invalid_parent_span_id'],
    ['an all-zero parent span id', [ld(4, Buffer.alloc(8))], 'invalid_parent_span_id'],
  ];
  for (const [what, fields, reason] of cases) {
    it(`rejects a span with ${what} and counts ${reason}, storing the other span`, () => {
      expectOneRejected(protobufWithBadSpan(...fields), reason);
    });
  }

  it('rejects a span without a trace id as invalid_trace_id', () => {
    const start = NOW_NS - S;
    const result = decode(
      requestOf([Buffer.concat([ld(2, SPAN_ID), fixed64(7, start), fixed64(8, start)])]),
      'protobuf',
    );
    expect(result.rejected).toEqual({ invalid_trace_id: 1 });
    expect(result.rows).toHaveLength(0);
  });

  it('treats an empty parent span id as a root span (parentSpanId null)', () => {
    const result = decode(requestOf([spanFields(ld(4, Buffer.alloc(0)))]), 'protobuf');
    expect(result.rejected).toEqual({});
    expect(result.rows[0].parentSpanId).toBeNull();
  });

  it('stores a valid parent span id as 8 bytes that do not reference the request body', () => {
    const body = requestOf([spanFields(ld(4, PARENT_ID))]);
    const row = decode(body, 'protobuf').rows[0];
    body.fill(0);
    expect(row.parentSpanId?.toString('hex')).toBe(PARENT_ID.toString('hex'));
    expect(row.traceId.toString('hex')).toBe(TRACE_HEX);
    expect(row.spanId.toString('hex')).toBe(SPAN_HEX);
  });
});

describe('per-span rejects for bad ids (OTLP/JSON hex)', () => {
  const cases: [string, Record<string, unknown>, RejectReason][] = [
    ['an odd-length trace id', { traceId: TRACE_HEX.slice(1) }, 'invalid_trace_id'],
    ['a base64 trace id', { traceId: TRACE_ID.toString('base64') }, 'invalid_trace_id'],
    ['a trace id with non-hex characters', { traceId: 'g' + TRACE_HEX.slice(1) }, 'invalid_trace_id'],
    ['an all-zero trace id', { traceId: '0'.repeat(32) }, 'invalid_trace_id'],
    ['a missing trace id', { traceId: undefined }, 'invalid_trace_id'],
    ['a 7-byte span id', { spanId: SPAN_HEX.slice(2) }, 'invalid_span_id'],
    ['a base64 span id', { spanId: SPAN_ID.toString('base64') }, 'invalid_span_id'],
    ['an all-zero span id', { spanId: '0000000000000000' }, 'invalid_span_id'],
    ['a parent span id with a space', { parentSpanId: 'eee19b7ec3c1b17 ' }, 'invalid_parent_span_id'],
    ['a zero parent span id', { parentSpanId: '0000000000000000' }, 'invalid_parent_span_id'],
  ];
  for (const [what, overrides, reason] of cases) {
    it(`rejects a span with ${what} and counts ${reason}`, () => {
      expectOneRejected(jsonWithBadSpan(overrides), reason);
    });
  }

  it('accepts uppercase hex ids and an empty parent span id as a root', () => {
    const result = decode(jsonRequestOf([jsonSpan({ traceId: TRACE_HEX.toUpperCase(), parentSpanId: '' })]), 'json');
    expect(result.rows[0].traceId.equals(TRACE_ID)).toBe(true);
    expect(result.rows[0].parentSpanId).toBeNull();
  });
});

describe('per-span rejects for timestamps outside the window', () => {
  const cases: [string, bigint, bigint, RejectReason][] = [
    ['start 0 (1970)', 0n, 1n, 'start_time_too_old'],
    ['a start 400 days ago', NOW_NS - 400n * DAY_NS, NOW_NS, 'start_time_too_old'],
    ['a start one hour ahead', NOW_NS + 3600n * S, NOW_NS + 3601n * S, 'start_time_too_new'],
    ['the fixed64 maximum (year 2554)', 18446744073709551615n, 18446744073709551615n, 'start_time_too_new'],
    ['end before start', NOW_NS - S, NOW_NS - S - 1n, 'end_before_start'],
  ];
  for (const [what, start, end, reason] of cases) {
    it(`rejects ${what} as ${reason}, in protobuf and in JSON`, () => {
      expectOneRejected(protobufWithBadSpan(fixed64(7, start), fixed64(8, end)), reason);
      expectOneRejected(
        jsonWithBadSpan({ startTimeUnixNano: start.toString(), endTimeUnixNano: end.toString() }),
        reason,
      );
    });
  }

  it('accepts starts exactly at both ends of the window (inclusive) and end equal to start', () => {
    const min = NOW_NS - 7n * DAY_NS;
    const max = NOW_NS + 600n * S;
    const result = decode(
      requestOf([spanFields(fixed64(7, min), fixed64(8, min)), spanFields(fixed64(7, max), fixed64(8, max))]),
      'protobuf',
    );
    expect(result.rejected).toEqual({});
    expect(result.rows.map((r) => r.startTimeUnixNano)).toEqual([min, max]);
  });
});

describe('reject accounting', () => {
  it('counts spanCount = rows + rejected and names every reason with its count', () => {
    const body = requestOf([
      spanFields(),
      spanFields(ld(2, Buffer.alloc(8))),
      spanFields(ld(2, Buffer.alloc(3))),
      spanFields(fixed64(7, 0n)),
      spanFields(ld(1, Buffer.alloc(16))),
    ]);
    const result = decode(body, 'protobuf');
    expect(result.rows).toHaveLength(1);
    expect(result.spanCount).toBe(5);
    expect(result.rejected).toEqual({ invalid_trace_id: 1, invalid_span_id: 2, start_time_too_old: 1 });
    expect(result.rejectMessage).toBe('4 spans rejected: 1 invalid_trace_id, 2 invalid_span_id, 1 start_time_too_old');
  });

  it("reports '' and an empty rejected map when every span is stored", () => {
    const result = decode(requestOf([spanFields()]), 'protobuf');
    expect(result).toMatchObject({ spanCount: 1, rejected: {}, rejectMessage: '', sanitized: {} });
  });
});
