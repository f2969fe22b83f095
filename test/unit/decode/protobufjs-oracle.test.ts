/**
 * protobufjs, with a schema written in test code (test/helpers/otlp-protobufjs.ts), as a second
 * independent encoder: it can write what the SDK never does (int64 extremes, bytes in arrays,
 * deep kvlists, unknown fields of every wire type, odd enum values, client-side dropped counts).
 */
import { describe, expect, it } from 'vitest';
import { encodeWithProtobufjs } from '../../helpers/otlp-protobufjs.js';
import { NOW_NS, comparableRows, decode, expectJsonColumnsParse, ld } from './decode-helpers.js';

const TRACE_ID = Buffer.from('4bf92f3577b34da6a3ce929d0e0e4736', 'hex');
const SPAN_ID = Buffer.from('00f067aa0ba902b7', 'hex');
const START = NOW_NS - 60_000_000_000n;

const kv = (key: string, value: Record<string, unknown> | null) => (value === null ? { key } : { key, value });

function baseSpan(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    traceId: TRACE_ID,
    spanId: SPAN_ID,
    name: 'op',
    kind: 3,
    startTimeUnixNano: START.toString(),
    endTimeUnixNano: (START + 1500n).toString(),
    ...overrides,
  };
}

function request(
  spans: Record<string, unknown>[],
  resourceAttributes: unknown[] = [kv('service.name', { stringValue: 'pbjs' })],
) {
  return {
    resourceSpans: [
      {
        resource: { attributes: resourceAttributes, droppedAttributesCount: 4 },
        scopeSpans: [
          { scope: { name: 'pbjs-scope', version: '9.9', attributes: [kv('s', { boolValue: true })] }, spans },
        ],
        schemaUrl: 'https://opentelemetry.io/schemas/1.26.0',
      },
    ],
  };
}

const EVERY_KIND = [
  kv('string', { stringValue: 'héllo 😀' }),
  kv('boolTrue', { boolValue: true }),
  kv('boolFalse', { boolValue: false }),
  kv('intMax', { intValue: '9223372036854775807' }),
  kv('intMin', { intValue: '-9223372036854775808' }),
  kv('intMinusOne', { intValue: '-1' }),
  kv('intZero', { intValue: '0' }),
  kv('intBeyondDouble', { intValue: '9007199254740993' }),
  kv('double', { doubleValue: 0.1 }),
  kv('doubleIntegral', { doubleValue: 2 }),
  kv('doubleNegZero', { doubleValue: -0 }),
  kv('doubleHuge', { doubleValue: 1e21 }),
  kv('doubleNaN', { doubleValue: NaN }),
  kv('doubleInf', { doubleValue: -Infinity }),
  kv('bytes', { bytesValue: Buffer.from([0xde, 0xad, 0xbe, 0xef]) }),
  kv('array', {
    arrayValue: {
      values: [
        { stringValue: 'a' },
        { intValue: '1' },
        { bytesValue: Buffer.from('hi') },
        {},
        { arrayValue: { values: [] } },
      ],
    },
  }),
  kv('kvlist', {
    kvlistValue: {
      values: [
        kv('x', { kvlistValue: { values: [kv('y', { arrayValue: { values: [{ doubleValue: 1.5 }] } })] } }),
        kv('noValue', null),
        kv('x', { stringValue: 'last x wins' }),
      ],
    },
  }),
  kv('emptyAnyValue', {}),
  kv('missingValue', null),
];

const EVERY_KIND_JSON =
  '{"string":"héllo 😀","boolTrue":true,"boolFalse":false,' +
  '"intMax":9223372036854775807,"intMin":-9223372036854775808,"intMinusOne":-1,"intZero":0,"intBeyondDouble":9007199254740993,' +
  '"double":0.1,"doubleIntegral":2.0,"doubleNegZero":-0.0,"doubleHuge":1000000000000000000000.0,"doubleNaN":"NaN","doubleInf":"-Infinity",' +
  '"bytes":"3q2+7w==","array":["a",1,"aGk=",null,[]],' +
  '"kvlist":{"x":"last x wins","noValue":null},"emptyAnyValue":null,"missingValue":null}';

describe('decoding requests encoded by protobufjs', () => {
  it('stores every AnyValue kind in its documented JSON form, int64 extremes exactly', () => {
    const body = encodeWithProtobufjs(request([baseSpan({ attributes: EVERY_KIND })]));
    const { rows, sanitized } = decode(body, 'protobuf');
    expect(sanitized).toEqual({});
    expect(rows[0].attributes).toBe(EVERY_KIND_JSON);
    expectJsonColumnsParse(rows);
  });

  it('decodes every span, event, link and status field, adding nothing of its own', () => {
    const span = baseSpan({
      traceState: 'congo=t61rcWkgMzE',
      parentSpanId: Buffer.from('53995c3f42cd8ad8', 'hex'),
      flags: 0x301,
      kind: 5,
      droppedAttributesCount: 11,
      events: [
        {
          timeUnixNano: (START + 10n).toString(),
          name: 'ev',
          attributes: [kv('a', { intValue: '1' })],
          droppedAttributesCount: 2,
        },
        { timeUnixNano: '0', name: '' },
      ],
      droppedEventsCount: 12,
      links: [
        {
          traceId: Buffer.alloc(16, 0xab),
          spanId: Buffer.alloc(8, 0xcd),
          traceState: 'k=v',
          attributes: [kv('l', { stringValue: 'v' })],
          droppedAttributesCount: 3,
          flags: 0x101,
        },
        { traceId: Buffer.from([1, 2, 3]), spanId: Buffer.alloc(0) },
      ],
      droppedLinksCount: 13,
      status: { message: 'deadline exceeded', code: 2 },
    });
    const { rows } = decode(encodeWithProtobufjs(request([span])), 'protobuf');
    const [row] = comparableRows(rows);
    expect(row).toEqual({
      traceId: TRACE_ID.toString('hex'),
      spanId: SPAN_ID.toString('hex'),
      parentSpanId: '53995c3f42cd8ad8',
      traceState: 'congo=t61rcWkgMzE',
      flags: 0x301,
      name: 'op',
      kind: 5,
      serviceName: 'pbjs',
      startTimeUnixNano: START.toString(),
      endTimeUnixNano: (START + 1500n).toString(),
      statusCode: 2,
      statusMessage: 'deadline exceeded',
      attributes: '{}',
      sharedAttributes: '{}',
      resourceAttributes: '{"service.name":"pbjs"}',
      scopeName: 'pbjs-scope',
      scopeVersion: '9.9',
      scopeAttributes: '{"s":true}',
      events:
        `[{"timeUnixNano":"${START + 10n}","name":"ev","attributes":{"a":1},"droppedAttributesCount":2},` +
        '{"timeUnixNano":"0","name":""}]',
      links:
        `[{"traceId":"${'ab'.repeat(16)}","spanId":"${'cd'.repeat(8)}","traceState":"k=v","flags":257,"attributes":{"l":"v"},"droppedAttributesCount":3},` +
        '{"traceId":"010203","spanId":""}]',
      droppedAttributesCount: 11,
      droppedEventsCount: 12,
      droppedLinksCount: 13,
      samplingWeight: 1,
      sizeBytes: expect.any(Number),
    });
  });

  it('skips unknown fields of every wire type at every level and decodes the same rows', () => {
    const unknown = {
      futureVarint: '18446744073709551615',
      futureFixed64: '1',
      futureString: 'from a newer OTLP',
      futureFixed32: 7,
      futureMessage: kv('k', { kvlistValue: { values: [kv('deep', { arrayValue: { values: [{}] } })] } }),
      futureSint: -5,
    };
    const withExtras = (o: Record<string, unknown>) => ({ ...o, ...unknown });
    const plain = request([
      baseSpan({ attributes: EVERY_KIND, events: [{ name: 'e', timeUnixNano: START.toString() }] }),
    ]);
    const extended = {
      ...unknown,
      resourceSpans: [
        withExtras({
          resource: withExtras({
            attributes: [withExtras(kv('service.name', { stringValue: 'pbjs', futureField: 'x' }))],
          }),
          scopeSpans: [
            withExtras({
              scope: withExtras({ name: 'pbjs-scope', version: '9.9', attributes: [kv('s', { boolValue: true })] }),
              spans: [
                withExtras(
                  baseSpan({
                    attributes: EVERY_KIND.map((a) => withExtras(a)),
                    events: [withExtras({ name: 'e', timeUnixNano: START.toString() })],
                    status: withExtras({}),
                  }),
                ),
              ],
            }),
          ],
        }),
      ],
    };
    const plainBody = encodeWithProtobufjs(plain);
    const extendedBody = encodeWithProtobufjs(extended, { withUnknownFields: true });
    expect(extendedBody.length).toBeGreaterThan(plainBody.length + 20 * 40); // the unknown fields are there
    const expected = comparableRows(decode(plainBody, 'protobuf').rows);
    const actual = comparableRows(decode(extendedBody, 'protobuf').rows);
    expect(actual).toHaveLength(1);
    expect(actual.map(({ sizeBytes: _a, ...r }) => r)).toEqual(expected.map(({ sizeBytes: _b, ...r }) => r));
  });

  it('applies a resource and a scope that follow their spans on the wire', () => {
    const body = encodeWithProtobufjs(request([baseSpan()]));
    // Re-encode ResourceSpans with field 1 (resource) after field 2 (scope_spans), and the same in ScopeSpans.
    const resourceOnly = encodeWithProtobufjs({
      resourceSpans: [{ resource: { attributes: [kv('service.name', { stringValue: 'late' })] } }],
    });
    const scopeSpansOnly = encodeWithProtobufjs({ resourceSpans: [{ scopeSpans: [{ spans: [baseSpan()] }] }] });
    const scopeOnly = ld(1, 'late-scope'); // InstrumentationScope{name}
    const strip = (b: Buffer) => b.subarray(b[1] < 0x80 ? 2 : b[2] < 0x80 ? 3 : 4); // drop the outer tag + length
    const scopeSpansPayload = strip(strip(scopeSpansOnly)); // ScopeSpans{spans}
    const resourceSpans = Buffer.concat([ld(2, scopeSpansPayload, ld(1, scopeOnly)), strip(resourceOnly)]);
    const { rows } = decode(ld(1, resourceSpans), 'protobuf');
    expect(body.length).toBeGreaterThan(0);
    expect(rows).toHaveLength(1);
    expect(rows[0].serviceName).toBe('late');
    expect(rows[0].scopeName).toBe('late-scope');
  });

  it('stores unknown span kinds and status codes as 0 and keeps duplicate keys once, last value winning', () => {
    const span = baseSpan({
      kind: 99,
      status: { code: -3 },
      attributes: [kv('k', { intValue: '1' }), kv('other', { boolValue: true }), kv('k', { intValue: '2' })],
    });
    const { rows } = decode(encodeWithProtobufjs(request([span])), 'protobuf');
    expect(rows[0].kind).toBe(0);
    expect(rows[0].statusCode).toBe(0);
    expect(rows[0].attributes).toBe('{"k":2,"other":true}');
  });

  it("takes serviceName from a string service.name only, else ''", () => {
    const decodeWith = (attrs: unknown[]) =>
      decode(encodeWithProtobufjs(request([baseSpan()], attrs)), 'protobuf').rows[0].serviceName;
    expect(decodeWith([kv('service.name', { intValue: '5' })])).toBe('');
    expect(decodeWith([])).toBe('');
    expect(
      decodeWith([kv('service.name', { stringValue: 'first' }), kv('service.name', { stringValue: 'second' })]),
    ).toBe('second');
    expect(decodeWith([kv('service.name', { stringValue: 'x' }), kv('service.name', { boolValue: true })])).toBe('');
  });
});
