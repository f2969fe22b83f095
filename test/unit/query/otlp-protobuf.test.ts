/**
 * The hand-written TracesData encoder checked against protobufjs decoding with the schema written
 * from the OTLP .proto files (test/helpers/otlp-protobufjs.ts).
 */
import { describe, expect, it } from 'vitest';
import { encodeTraceByIdResponse, encodeTracesData } from '../../../server/query/otlp-protobuf.js';
import { ProtoWriter } from '../../../server/query/proto-writer.js';
import { groupSpans } from '../../../server/query/trace-model.js';
import type { StoredSpan } from '../../../server/storage/reader-types.js';
import { createOtlpRoot, tracesDataType } from '../../helpers/otlp-protobufjs.js';

const tracesData = tracesDataType(createOtlpRoot());

function stored(overrides: Partial<StoredSpan> = {}): StoredSpan {
  return {
    traceId: Buffer.from('0af7651916cd43dd8448eb211c80319c', 'hex'),
    spanId: Buffer.from('b7ad6b7169203331', 'hex'),
    parentSpanId: null,
    traceState: 'k=v',
    flags: 0x301,
    name: 'naïve span',
    kind: 3,
    serviceName: 'svc',
    startTimeUnixNano: 1_767_225_600_123_456_789n,
    endTimeUnixNano: 18_446_744_073_709_551_615n, // the largest fixed64
    statusCode: 2,
    statusMessage: 'boom',
    attributes:
      '{"i": -9223372036854775808, "big": 9223372036854775807, "d": 2.0, "b": false, "s": "", "e": null, "arr": [1, "x"], "kv": {"k": 0}}',
    resourceAttributes: '{"service.name": "svc"}',
    scopeName: 'scope',
    scopeVersion: '1.0',
    scopeAttributes: '{}',
    events:
      '[{"timeUnixNano": "1767225600123456790", "name": "ev", "attributes": {"n": 1}, "droppedAttributesCount": 2}]',
    links:
      '[{"traceId": "0af7651916cd43dd8448eb211c80319d", "spanId": "00f067aa0ba902b7", "traceState": "", "flags": 256, "attributes": {}, "droppedAttributesCount": 0}]',
    droppedAttributesCount: 1,
    droppedEventsCount: 0,
    droppedLinksCount: 3,
    ...overrides,
  };
}

describe('TracesData protobuf encoder', () => {
  it('decodes with protobufjs to exactly the stored values, 64-bit extremes and oneof defaults included', () => {
    const bytes = encodeTracesData(
      groupSpans([
        stored(),
        stored({
          spanId: Buffer.from('0000000000000001', 'hex'),
          parentSpanId: Buffer.from('b7ad6b7169203331', 'hex'),
          statusCode: 0,
          statusMessage: '',
        }),
      ]),
    );
    const decoded = tracesData.toObject(tracesData.decode(bytes), { longs: String, bytes: String, enums: Number });
    expect(decoded.resourceSpans).toHaveLength(1);
    const scopeSpans = decoded.resourceSpans[0].scopeSpans;
    expect(scopeSpans).toHaveLength(1);
    expect(scopeSpans[0].scope).toEqual({ name: 'scope', version: '1.0' });
    const [first, second] = scopeSpans[0].spans;
    expect(first).toEqual({
      traceId: Buffer.from('0af7651916cd43dd8448eb211c80319c', 'hex').toString('base64'),
      spanId: Buffer.from('b7ad6b7169203331', 'hex').toString('base64'),
      traceState: 'k=v',
      flags: 0x301,
      name: 'naïve span',
      kind: 3,
      startTimeUnixNano: '1767225600123456789',
      endTimeUnixNano: '18446744073709551615',
      attributes: [
        { key: 'i', value: { intValue: '-9223372036854775808' } },
        { key: 'big', value: { intValue: '9223372036854775807' } },
        { key: 'd', value: { doubleValue: 2 } },
        { key: 'b', value: { boolValue: false } },
        { key: 's', value: { stringValue: '' } },
        { key: 'e', value: {} },
        { key: 'arr', value: { arrayValue: { values: [{ intValue: '1' }, { stringValue: 'x' }] } } },
        { key: 'kv', value: { kvlistValue: { values: [{ key: 'k', value: { intValue: '0' } }] } } },
      ],
      droppedAttributesCount: 1,
      events: [
        {
          timeUnixNano: '1767225600123456790',
          name: 'ev',
          attributes: [{ key: 'n', value: { intValue: '1' } }],
          droppedAttributesCount: 2,
        },
      ],
      links: [
        {
          traceId: Buffer.from('0af7651916cd43dd8448eb211c80319d', 'hex').toString('base64'),
          spanId: Buffer.from('00f067aa0ba902b7', 'hex').toString('base64'),
          flags: 256,
        },
      ],
      droppedLinksCount: 3,
      status: { code: 2, message: 'boom' },
    });
    expect(second.parentSpanId).toBe(Buffer.from('b7ad6b7169203331', 'hex').toString('base64'));
    expect(second.status).toBeUndefined();
  });

  it('wraps the same bytes in field 1 for Tempo’s TraceByIDResponse', () => {
    const resources = groupSpans([stored()]);
    const inner = encodeTracesData(resources);
    const wrapped = encodeTraceByIdResponse(resources);
    expect(wrapped[0]).toBe(0x0a); // field 1, length-delimited
    expect(wrapped.subarray(wrapped.length - inner.length)).toEqual(inner);
  });
});

describe('ProtoWriter', () => {
  it('grows its buffer and back-patches long length prefixes', () => {
    const w = new ProtoWriter(8);
    w.begin(1);
    w.string(2, 'x'.repeat(70_000));
    w.begin(3);
    w.end();
    w.end();
    const out = w.finish();
    // tag, 3-byte length of 70,000 + 3 + 2 + 2, then the nested fields
    expect(out[0]).toBe(0x0a);
    expect(out.length).toBe(1 + 3 + (1 + 3 + 70_000) + 2);
  });
});
