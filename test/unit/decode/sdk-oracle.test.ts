/**
 * The OpenTelemetry JS SDK as an independent encoder: spans made by the real tracer (and
 * ReadableSpans built by hand for value kinds the tracer's attribute checks refuse) are serialized
 * by @opentelemetry/otlp-transformer to protobuf and OTLP/JSON; both decodings must equal what the
 * spans hold, field by field.
 */
import { SpanKind, SpanStatusCode, TraceFlags, context, trace } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { toReadableSpans, type FixtureSpan } from '../../helpers/otlp-fixtures.js';
import { NOW_NS, comparableRows, decode, expectJsonColumnsParse } from './decode-helpers.js';
import { expectedRow } from './expected-forms.js';

const NOW_S = Number(NOW_NS / 1_000_000_000n);

function serializeBoth(spans: ReadableSpan[]) {
  return {
    protobuf: Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!),
    json: Buffer.from(JsonTraceSerializer.serializeRequest(spans)!),
  };
}

function withoutSize(rows: Record<string, unknown>[]) {
  return rows.map(({ sizeBytes: _size, ...rest }) => rest);
}

/** Decodes both encodings; both must give the same rows, equal to the spans' expected rows. */
function expectBothDecodeTo(spans: ReadableSpan[]) {
  const { protobuf, json } = serializeBoth(spans);
  const fromProtobuf = decode(protobuf, 'protobuf');
  const fromJson = decode(json, 'json');
  for (const result of [fromProtobuf, fromJson]) {
    expect(result.spanCount).toBe(spans.length);
    expect(result.rejected).toEqual({});
    expect(result.sanitized).toEqual({});
    expectJsonColumnsParse(result.rows);
  }
  expect(comparableRows(fromJson.rows)).toEqual(comparableRows(fromProtobuf.rows));
  // The serializers group spans by resource and scope, so compare in a stable order.
  const byId = (rows: Record<string, unknown>[]) =>
    [...rows].sort((a, b) => String(a.spanId).localeCompare(String(b.spanId)));
  expect(byId(withoutSize(comparableRows(fromProtobuf.rows)))).toEqual(byId(spans.map(expectedRow)));
  return fromProtobuf;
}

describe('decoding spans made by the OpenTelemetry SDK tracer', () => {
  it('decodes protobuf and OTLP/JSON from the real tracer to the same rows, field by field', () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'sdk-oracle', 'service.version': '1.2.3', 'host.cores': 8 }),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const tracer = provider.getTracer('oracle-scope', '4.5.6');
    const root = tracer.startSpan('GET /orders', {
      kind: SpanKind.SERVER,
      startTime: [NOW_S - 2, 123_456_789],
      attributes: {
        'http.method': 'GET',
        'http.status_code': 200,
        'payload.ratio': 0.25,
        'cache.hit': false,
        tags: ['a', 'b', 'ü ✓ 😀'],
        codes: [1, 2, 3],
        ratios: [0.5, 1.5],
        flags: [true, false],
        negative: -42,
      },
    });
    root.addEvent('cache miss', { 'cache.key': 'order:1', attempt: 2 }, [NOW_S - 2, 500_000_001]);
    root.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
    const rootContext = trace.setSpan(context.active(), root);
    const linkedContext = {
      traceId: 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
      spanId: '0123456789abcdef',
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    };
    const kinds = [SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER];
    kinds.forEach((kind, i) => {
      const child = tracer.startSpan(
        `child ${i}`,
        {
          kind,
          startTime: [NOW_S - 1, i * 7],
          links: i === 0 ? [{ context: linkedContext, attributes: { 'link.reason': 'retry' } }] : [],
        },
        rootContext,
      );
      if (i === 1) child.setStatus({ code: SpanStatusCode.OK });
      child.end([NOW_S - 1, 999_999_999]);
    });
    root.end([NOW_S, 1]);
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(5);

    const result = expectBothDecodeTo(spans);
    const rootRow = result.rows.find((r) => r.name === 'GET /orders')!;
    expect(rootRow.serviceName).toBe('sdk-oracle');
    expect(rootRow.startTimeUnixNano).toBe(BigInt(NOW_S - 2) * 1_000_000_000n + 123_456_789n);
    expect(rootRow.parentSpanId).toBeNull();
    expect(rootRow.kind).toBe(2);
    expect(rootRow.statusCode).toBe(2);
    expect(JSON.parse(rootRow.attributes)).toMatchObject({ 'http.status_code': 200, tags: ['a', 'b', 'ü ✓ 😀'] });
    const children = result.rows.filter((r) => r.name.startsWith('child'));
    expect(children.map((r) => r.kind).sort()).toEqual([1, 3, 4, 5]);
    for (const child of children) expect(child.parentSpanId?.equals(rootRow.spanId)).toBe(true);
  });
});

describe('decoding ReadableSpans with every AnyValue kind the SDK serializers can write', () => {
  const span = (overrides: Partial<FixtureSpan>): FixtureSpan => ({
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    name: 'all kinds',
    startTimeUnixNano: NOW_NS - 5_000_000_123n,
    endTimeUnixNano: NOW_NS - 4_000_000_000n,
    ...overrides,
  });

  it('round-trips strings, ints, doubles, bools, bytes, nested arrays and kvlists, and null', () => {
    const spans = toReadableSpans({
      resource: { attributes: { 'service.name': 'kinds', 'k8s.labels': { app: 'web', tier: 'frontend' } } },
      scope: { name: 'scope-with-attributes', version: '0.0.1', attributes: { 'scope.attr': 'x', n: 7 } },
      spans: [
        span({
          attributes: {
            string: 'text "quoted" \\ back\nslash\t\u0001',
            unicode: 'Grüße 中文 😀',
            empty: '',
            int: 42,
            negativeInt: -7,
            bigSafeInt: Number.MAX_SAFE_INTEGER,
            double: 3.14159,
            tinyDouble: 5e-324,
            hugeDouble: 1e300,
            bigIntegralDouble: 2 ** 64, // beyond int64: the SDK writes it as a double
            yes: true,
            no: false,
            bytes: new Uint8Array([0, 1, 2, 250, 255]),
            emptyBytes: new Uint8Array(0),
            array: ['a', 1, 2.5, true, null],
            nested: [[1, [2, [3]]], { inner: ['x', { deep: 'y' }] }],
            kvlist: { a: 1, b: { c: 'd' }, e: [] },
            emptyKvlist: {},
            nothing: null,
          },
          events: [
            {
              name: 'e1',
              timeUnixNano: NOW_NS - 4_500_000_000n,
              attributes: { bytes: new Uint8Array([9]), list: [1, 2] },
            },
            { name: 'e2 no attributes', timeUnixNano: NOW_NS - 4_400_000_000n, droppedAttributesCount: 3 },
          ],
          links: [
            {
              traceId: '11111111111111111111111111111111',
              spanId: '2222222222222222',
              traceState: 'vendor=abc,other=1',
              sampled: false,
              isRemote: true,
              attributes: { kv: { x: [1] } },
              droppedAttributesCount: 2,
            },
          ],
          traceState: 'rojo=00f067aa0ba902b7',
          parentSpanId: '00f067aa0ba902b7',
          parentIsRemote: true,
          kind: 0,
          status: { code: 1, message: 'fine' },
          droppedAttributesCount: 5,
          droppedEventsCount: 6,
          droppedLinksCount: 7,
        }),
      ],
    });
    const result = expectBothDecodeTo(spans);
    const row = result.rows[0];
    expect(row.kind).toBe(0);
    expect(row.flags).toBe(0x301);
    const attributes = JSON.parse(row.attributes);
    expect(attributes.bytes).toBe(Buffer.from([0, 1, 2, 250, 255]).toString('base64'));
    expect(attributes.nested).toEqual([[1, [2, [3]]], { inner: ['x', { deep: 'y' }] }]);
    expect(row.attributes).toContain('"bigIntegralDouble":18446744073709552000.0');
    expect(row.scopeAttributes).toBe('{"scope.attr":"x","n":7}');
  });

  it('stores NaN and ±Infinity doubles from the SDK protobuf encoding as strings', () => {
    // The SDK's OTLP/JSON encoding cannot carry them (JSON.stringify writes null), so protobuf only.
    const spans = toReadableSpans({ spans: [span({ attributes: { nan: NaN, inf: Infinity, negInf: -Infinity } })] });
    const result = decode(serializeBoth(spans).protobuf, 'protobuf');
    expect(result.rows[0].attributes).toBe('{"nan":"NaN","inf":"Infinity","negInf":"-Infinity"}');
    expect(comparableRows(result.rows).map(({ sizeBytes: _s, ...rest }) => rest)).toEqual(spans.map(expectedRow));
  });

  it('keeps each span with its own resource and scope when a request carries several', () => {
    const serviceA = { attributes: { 'service.name': 'a' } };
    const serviceB = { attributes: { 'service.name': 'b', extra: true } };
    const noName = { attributes: { 'service.name': 12 } };
    const scopeX = { name: 'x', version: '1' };
    const scopeY = { name: 'y' };
    const spans = toReadableSpans({
      spans: [
        span({ spanId: '0000000000000001', resource: serviceA, scope: scopeX }),
        span({ spanId: '0000000000000002', resource: serviceB, scope: scopeY }),
        span({ spanId: '0000000000000003', resource: serviceA, scope: scopeY }),
        span({ spanId: '0000000000000004', resource: noName, scope: scopeX }),
      ],
    });
    const result = expectBothDecodeTo(spans);
    const byName = Object.fromEntries(result.rows.map((r) => [r.spanId.toString('hex'), [r.serviceName, r.scopeName]]));
    expect(byName).toEqual({
      '0000000000000001': ['a', 'x'],
      '0000000000000002': ['b', 'y'],
      '0000000000000003': ['a', 'y'],
      '0000000000000004': ['', 'x'],
    });
  });

  it('keeps nanosecond timestamps exact in both encodings', () => {
    const starts = [NOW_NS - 1n, NOW_NS - 999_999_999n, NOW_NS - 6n * 86_400_000_000_000n + 7n];
    const spans = toReadableSpans({
      spans: starts.map((start, i) =>
        span({ spanId: `a00000000000000${i}`, startTimeUnixNano: start, endTimeUnixNano: start + 1n }),
      ),
    });
    const result = expectBothDecodeTo(spans);
    expect(result.rows.map((r) => r.startTimeUnixNano)).toEqual(starts);
    expect(result.rows.map((r) => r.endTimeUnixNano)).toEqual(starts.map((s) => s + 1n));
  });
});
