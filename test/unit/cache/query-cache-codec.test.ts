import { describe, expect, it } from 'vitest';
import {
  ENCODED_FIELDS,
  decodeOperations,
  decodeTrace,
  decodeWindow,
  encodeOperations,
  encodeTrace,
  encodeWindow,
} from '../../../server/cache/query-cache-codec.js';
import type { StoredSpan } from '../../../server/storage/reader-types.js';

const traceId = Buffer.from('0af7651916cd43dd8448eb211c80319c', 'hex');

function span(overrides: Partial<StoredSpan> = {}): StoredSpan {
  return {
    traceId: Buffer.from(traceId),
    spanId: Buffer.from('b7ad6b7169203331', 'hex'),
    parentSpanId: Buffer.from('00f067aa0ba902b7', 'hex'),
    traceState: 'ot=th:8;rv:01,vendor=x',
    flags: 0x301,
    name: 'GET /checkout ✓',
    kind: 2,
    serviceName: 'checkout',
    startTimeUnixNano: 1_767_225_600_123_456_789n, // not a multiple of 1000, far above 2^53
    endTimeUnixNano: 18_446_744_073_709_551_615n, // uint64 max
    statusCode: 2,
    statusMessage: 'card "declined"\n',
    attributes: '{"app.big": 1152921504606846977, "emoji": "🙂", "lone": "\\ud800"}',
    resourceAttributes: '{"service.name": "checkout", "host.name": "box-1"}',
    scopeName: '@opentelemetry/instrumentation-http',
    scopeVersion: '0.52.0',
    scopeAttributes: '{}',
    events: '[{"timeUnixNano": "1767225600500000001", "name": "retry", "attributes": {}}]',
    links: '[]',
    droppedAttributesCount: 3,
    droppedEventsCount: 4_294_967_295,
    droppedLinksCount: 0,
    ...overrides,
  };
}

describe('query cache codec', () => {
  it('encodes every field of a stored span', () => {
    expect([...ENCODED_FIELDS].sort()).toEqual(Object.keys(span()).sort());
  });

  it('round-trips spans exactly: nanoseconds beyond 2^53, ids, null parents and JSON text as stored', () => {
    const spans = [
      span(),
      span({ spanId: Buffer.from('1111111111111111', 'hex'), parentSpanId: null, traceState: '' }),
      span({
        spanId: Buffer.from('2222222222222222', 'hex'),
        resourceAttributes: '{"service.name": "db"}',
        scopeAttributes: '{"x": [1, 2.5, "\\u0000?"]}',
        serviceName: 'db',
        startTimeUnixNano: 1n,
        endTimeUnixNano: 0n,
        statusMessage: 'lone \ud800 surrogate',
      }),
    ];
    const decoded = decodeTrace(encodeTrace(traceId, spans)!, traceId);
    expect(decoded).toEqual(spans);
    expect(typeof decoded[0].startTimeUnixNano).toBe('bigint');
    expect(decoded[0].traceId).not.toBe(decoded[1].traceId); // each span owns its buffers
  });

  it('keeps an empty trace empty', () => {
    expect(decodeTrace(encodeTrace(traceId, [])!, traceId)).toEqual([]);
  });

  it('stores the strings spans share once', () => {
    const many = Array.from({ length: 50 }, (_, i) =>
      span({ spanId: Buffer.from(`${String(i).padStart(2, '0')}00000000000001`, 'hex') }),
    );
    const text = encodeTrace(traceId, many)!;
    expect(text.split('host.name').length - 1).toBe(1);
  });

  it('refuses to encode a span of another trace, and to decode a value as another trace', () => {
    const other = Buffer.from('1af7651916cd43dd8448eb211c80319c', 'hex');
    expect(encodeTrace(traceId, [span(), span({ traceId: other })])).toBeUndefined();
    expect(() => decodeTrace(encodeTrace(traceId, [span()])!, other)).toThrow(/trace id/);
    expect(() => decodeTrace('not json', traceId)).toThrow();
  });

  it('round-trips windows and catalogs', () => {
    const window = { startUnixNano: 1_767_225_600_123_456_789n, endUnixNano: 18_446_744_073_709_551_615n };
    expect(decodeWindow(encodeWindow(window))).toEqual(window);
    expect(() => decodeWindow('12 x')).toThrow();
    const operations = [
      { serviceName: 'b', spanName: 'GET "/"', spanKind: 2 },
      { serviceName: 'a', spanName: 'ä', spanKind: 0 },
    ];
    expect(decodeOperations(encodeOperations(operations))).toEqual(operations);
    expect(decodeOperations(encodeOperations([]))).toEqual([]);
  });
});
