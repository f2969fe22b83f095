import { describe, expect, it } from 'vitest';
import { createRng } from '../../helpers/otlp-fixtures.js';
import {
  DAY_NS,
  NOW_NS,
  SPAN_HEX,
  TRACE_HEX,
  comparableRows,
  decode,
  errorCodeOf,
  jsonRequestOf,
  jsonSpan,
} from './decode-helpers.js';

const START = NOW_NS - 1_000_000_000n;

describe('OTLP/JSON field names, enums and unknown fields', () => {
  it('accepts the snake_case field names of the .proto files as well as lowerCamelCase', () => {
    const camel = {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
          scopeSpans: [
            {
              scope: { name: 's', version: '1' },
              spans: [
                {
                  traceId: TRACE_HEX,
                  spanId: SPAN_HEX,
                  parentSpanId: '1111111111111111',
                  traceState: 'a=b',
                  name: 'n',
                  kind: 2,
                  startTimeUnixNano: START.toString(),
                  endTimeUnixNano: (START + 5n).toString(),
                  attributes: [
                    { key: 'k', value: { intValue: '3' } },
                    { key: 'b', value: { bytesValue: 'AQI=' } },
                  ],
                  droppedAttributesCount: 1,
                  events: [{ timeUnixNano: START.toString(), name: 'e', droppedAttributesCount: 2 }],
                  droppedEventsCount: 3,
                  links: [
                    { traceId: TRACE_HEX, spanId: SPAN_HEX, traceState: 'x=y', droppedAttributesCount: 4, flags: 1 },
                  ],
                  droppedLinksCount: 5,
                  status: { code: 2, message: 'm' },
                  flags: 257,
                },
              ],
            },
          ],
        },
      ],
    };
    const snakeCase = (text: string) =>
      text.replace(
        /"([a-z]+(?:[A-Z][a-z]*)+)":/g,
        (_, name: string) => `"${name.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())}":`,
      );
    const camelText = JSON.stringify(camel);
    const snakeText = snakeCase(camelText);
    expect(snakeText).toContain('"resource_spans"');
    expect(snakeText).toContain('"start_time_unix_nano"');
    expect(snakeText).toContain('"int_value"');
    const fromCamel = decode(camelText, 'json');
    expect(fromCamel.rows).toHaveLength(1);
    expect(comparableRows(decode(snakeText, 'json').rows)).toEqual(comparableRows(fromCamel.rows));
    expect(fromCamel.rows[0]).toMatchObject({
      kind: 2,
      statusCode: 2,
      flags: 257,
      droppedAttributesCount: 1,
      droppedEventsCount: 3,
      droppedLinksCount: 5,
    });
    expect(fromCamel.rows[0].attributes).toBe('{"k":3,"b":"AQI="}');
  });

  it('accepts enum names for kind and status code', () => {
    const result = decode(
      jsonRequestOf([jsonSpan({ kind: 'SPAN_KIND_CONSUMER', status: { code: 'STATUS_CODE_OK' } })]),
      'json',
    );
    expect(result.rows[0]).toMatchObject({ kind: 5, statusCode: 1 });
  });

  it('ignores unknown fields and treats null as an absent field', () => {
    const result = decode(
      jsonRequestOf([
        jsonSpan({
          futureField: { nested: [1, 2] },
          status: null,
          attributes: null,
          events: null,
          parentSpanId: null,
          kind: null,
        }),
      ]),
      'json',
    );
    expect(result.rows[0]).toMatchObject({
      kind: 0,
      statusCode: 0,
      attributes: '{}',
      events: '[]',
      parentSpanId: null,
    });
  });

  it('accepts uint32 fields as numbers or decimal strings and rejects negative or fractional ones', () => {
    expect(
      decode(jsonRequestOf([jsonSpan({ droppedAttributesCount: '7', flags: '1' })]), 'json').rows[0],
    ).toMatchObject({
      droppedAttributesCount: 7,
      flags: 1,
    });
    for (const bad of [-1, 1.5, '0x10', 4294967296]) {
      expect(errorCodeOf(() => decode(jsonRequestOf([jsonSpan({ droppedAttributesCount: bad })]), 'json')).code).toBe(
        'TH_ERR_DECODE_BAD_JSON',
      );
    }
  });

  it('stores a fixed32 flags value above 2^31 as the same 32 bits in a signed integer', () => {
    const result = decode(jsonRequestOf([jsonSpan({ flags: 0x80000101 })]), 'json');
    expect(result.rows[0].flags).toBe(0x80000101 | 0);
    expect(result.rows[0].flags >>> 0).toBe(0x80000101);
  });
});

describe('int64 fields as JSON strings and numbers', () => {
  it('parses 1,000 random nanosecond timestamps given as strings exactly', () => {
    const rng = createRng(42);
    const starts = Array.from(
      { length: 1000 },
      () =>
        NOW_NS -
        6n * DAY_NS +
        BigInt(Math.floor(rng() * 6 * 86_400)) * 1_000_000_000n +
        BigInt(Math.floor(rng() * 1e9)),
    );
    const spans = starts.map((start, i) =>
      jsonSpan({
        spanId: (i + 1).toString(16).padStart(16, '0'),
        startTimeUnixNano: start.toString(),
        endTimeUnixNano: (start + 999n).toString(),
        events: [{ timeUnixNano: (start + 1n).toString(), name: 'e' }],
      }),
    );
    const { rows } = decode(jsonRequestOf(spans), 'json');
    expect(rows.map((r) => r.startTimeUnixNano)).toEqual(starts);
    expect(rows.map((r) => r.endTimeUnixNano)).toEqual(starts.map((s) => s + 999n));
    expect(rows.map((r) => JSON.parse(r.events)[0].timeUnixNano)).toEqual(starts.map((s) => (s + 1n).toString()));
  });

  it('accepts timestamps as JSON numbers, taking the value the number holds', () => {
    const approx = Number(START); // above 2^53: a JSON number cannot carry every nanosecond, a string can
    const body = jsonRequestOf([
      jsonSpan({ startTimeUnixNano: approx, endTimeUnixNano: approx + 4096, events: [{ timeUnixNano: 123 }] }),
    ]);
    const { rows } = decode(body, 'json');
    expect(rows[0].startTimeUnixNano).toBe(BigInt(approx));
    expect(rows[0].endTimeUnixNano).toBe(BigInt(approx + 4096));
    expect(JSON.parse(rows[0].events)[0].timeUnixNano).toBe('123');
  });

  it('stores intValue strings exactly and intValue numbers as their value', () => {
    const attrs = [
      { key: 'maxStr', value: { intValue: '9223372036854775807' } },
      { key: 'minStr', value: { intValue: '-9223372036854775808' } },
      { key: 'padded', value: { intValue: '-0007' } },
      { key: 'num', value: { intValue: 42 } },
      { key: 'bigNum', value: { intValue: 2 ** 60 } },
    ];
    const result = decode(jsonRequestOf([jsonSpan({ attributes: attrs })]), 'json');
    expect(result.rows[0].attributes).toBe(
      '{"maxStr":9223372036854775807,"minStr":-9223372036854775808,"padded":-7,"num":42,"bigNum":1152921504606846976}',
    );
  });

  it('rejects intValue strings outside int64 or not decimal with TH_ERR_DECODE_BAD_JSON', () => {
    for (const bad of ['9223372036854775808', '-9223372036854775809', '1e3', '12 ', '0x1f', '']) {
      const body = jsonRequestOf([jsonSpan({ attributes: [{ key: 'i', value: { intValue: bad } }] })]);
      expect(errorCodeOf(() => decode(body, 'json')).code).toBe('TH_ERR_DECODE_BAD_JSON');
    }
  });

  it('rejects timestamps that are negative, fractional, beyond uint64 or not decimal', () => {
    for (const bad of ['-1', '18446744073709551616', '1.5', 1.5, -3, 'now', true]) {
      expect(errorCodeOf(() => decode(jsonRequestOf([jsonSpan({ startTimeUnixNano: bad })]), 'json')).message).toMatch(
        /startTimeUnixNano: expected a uint64/,
      );
    }
  });

  it('accepts doubleValue as a number, a numeric string, or "NaN" / "Infinity" / "-Infinity"', () => {
    const attrs = ['1.5', 2, '3', 'NaN', 'Infinity', '-Infinity', '-2.5e-3'].map((v, i) => ({
      key: `d${i}`,
      value: { doubleValue: v },
    }));
    const result = decode(jsonRequestOf([jsonSpan({ attributes: attrs })]), 'json');
    expect(result.rows[0].attributes).toBe(
      '{"d0":1.5,"d1":2.0,"d2":3.0,"d3":"NaN","d4":"Infinity","d5":"-Infinity","d6":-0.0025}',
    );
  });
});
