import { describe, expect, it } from 'vitest';
import type { SpanRow } from '../../../server/decode/types.js';
import {
  decode,
  expectJsonColumnsParse,
  jsonRequestOf,
  jsonSpan,
  keyValue,
  ld,
  requestOf,
  spanFields,
  stringValue,
  varintField,
} from './decode-helpers.js';

const INVALID_UTF8 = Buffer.from([0x61, 0xff, 0xc3, 0x62]); // 'a', stray byte, truncated 2-byte sequence, 'b'
const WITH_NUL = Buffer.from('a\u0000b');
/** JSON text escapes PostgreSQL jsonb refuses. */
const FORBIDDEN_ESCAPES = /\\u0000|\\ud[89a-f][0-9a-f]{2}/i;

function expectStorable(rows: SpanRow[]) {
  expectJsonColumnsParse(rows);
  for (const row of rows) {
    const texts = [row.name, row.traceState, row.statusMessage, row.serviceName, row.scopeName, row.scopeVersion];
    for (const text of [...texts, row.attributes, row.resourceAttributes, row.scopeAttributes, row.events, row.links]) {
      expect(text.includes('\u0000')).toBe(false);
      expect(text.isWellFormed()).toBe(true);
      expect(FORBIDDEN_ESCAPES.test(text)).toBe(false);
    }
  }
}

const arrayOf = (...values: Buffer[]) => ld(5, ...values.map((v) => ld(1, v))); // AnyValue{array_value}
const kvlistOf = (...pairs: Buffer[]) => ld(6, ...pairs.map((p) => ld(1, p))); // AnyValue{kvlist_value}

describe('sanitizing strings (protobuf)', () => {
  it('replaces invalid UTF-8 in names, keys and values at every depth with U+FFFD and counts each string once', () => {
    const span = spanFields(
      ld(5, INVALID_UTF8), // name
      ld(3, INVALID_UTF8), // trace_state
      ld(9, keyValue(INVALID_UTF8, stringValue(INVALID_UTF8))), // attribute key and value
      ld(9, keyValue('nested', kvlistOf(keyValue(INVALID_UTF8, arrayOf(stringValue(INVALID_UTF8)))))),
      ld(11, ld(2, INVALID_UTF8)), // event name
      ld(15, ld(2, INVALID_UTF8)), // status message
    );
    const resource = ld(1, keyValue('service.name', stringValue(INVALID_UTF8)));
    const result = decode(requestOf([span], resource), 'protobuf');
    const [row] = result.rows;
    expect(row.name).toBe('a\uFFFD\uFFFDb');
    expect(row.traceState).toBe('a\uFFFD\uFFFDb');
    expect(row.statusMessage).toBe('a\uFFFD\uFFFDb');
    expect(row.serviceName).toBe('a\uFFFD\uFFFDb');
    expect(JSON.parse(row.attributes)).toEqual({
      'a\uFFFD\uFFFDb': 'a\uFFFD\uFFFDb',
      nested: { 'a\uFFFD\uFFFDb': ['a\uFFFD\uFFFDb'] },
    });
    expect(result.sanitized).toEqual({ invalid_utf8: 9 });
    expectStorable(result.rows);
  });

  it('replaces NUL with U+FFFD in names, keys and values and counts nul_byte per string', () => {
    const span = spanFields(
      ld(5, WITH_NUL),
      ld(9, keyValue(WITH_NUL, arrayOf(stringValue(WITH_NUL), stringValue('clean')))),
      ld(13, Buffer.concat([ld(1, Buffer.alloc(16, 1)), ld(2, Buffer.alloc(8, 1)), ld(3, WITH_NUL)])), // link trace_state
    );
    const scope = ld(1, WITH_NUL); // scope name
    const body = ld(1, ld(2, ld(1, scope), ld(2, span)));
    const result = decode(body, 'protobuf');
    const [row] = result.rows;
    expect(row.name).toBe('a\uFFFDb');
    expect(row.scopeName).toBe('a\uFFFDb');
    expect(row.attributes).toBe('{"a\uFFFDb":["a\uFFFDb","clean"]}');
    expect(JSON.parse(row.links)[0].traceState).toBe('a\uFFFDb');
    expect(result.sanitized).toEqual({ nul_byte: 5 });
    expectStorable(result.rows);
  });

  it('keeps a valid U+FFFD in the input without counting it', () => {
    const result = decode(requestOf([spanFields(ld(5, 'ok \uFFFD'))]), 'protobuf');
    expect(result.rows[0].name).toBe('ok \uFFFD');
    expect(result.sanitized).toEqual({});
  });
});

describe('sanitizing strings (OTLP/JSON)', () => {
  it('replaces lone surrogates and NUL escapes at every depth and counts each string once', () => {
    const lone = 'x\ud800y';
    const text = jsonRequestOf(
      [
        jsonSpan({
          name: lone,
          attributes: [
            { key: lone, value: { stringValue: 'a\u0000b' } },
            {
              key: 'deep',
              value: {
                arrayValue: {
                  values: [{ kvlistValue: { values: [{ key: 'k\udfff', value: { stringValue: lone } }] } }],
                },
              },
            },
          ],
          events: [{ name: 'e\u0000', timeUnixNano: '1' }],
        }),
      ],
      [{ key: 'service.name', value: { stringValue: lone } }],
    );
    expect(text).toContain('\\ud800'); // JSON.stringify escapes lone surrogates
    const result = decode(text, 'json');
    const [row] = result.rows;
    expect(row.name).toBe('x\uFFFDy');
    expect(row.serviceName).toBe('x\uFFFDy');
    expect(JSON.parse(row.attributes)).toEqual({ 'x\uFFFDy': 'a\uFFFDb', deep: [{ 'k\uFFFD': 'x\uFFFDy' }] });
    expect(result.sanitized).toEqual({ lone_surrogate: 5, nul_byte: 2 });
    expectStorable(result.rows);
  });

  it('counts invalid UTF-8 bytes in a JSON body as invalid_utf8', () => {
    const body = Buffer.concat([
      Buffer.from(
        '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"',
      ),
      INVALID_UTF8,
      Buffer.from(
        `","startTimeUnixNano":"${jsonSpan().startTimeUnixNano}","endTimeUnixNano":"${jsonSpan().endTimeUnixNano}"}]}]}]}`,
      ),
    ]);
    const result = decode(body, 'json');
    expect(result.rows[0].name).toBe('a\uFFFD\uFFFDb');
    expect(result.sanitized).toEqual({ invalid_utf8: 1 });
  });
});

describe('truncating oversize attribute values', () => {
  const TEN_MB = 10 * 1024 * 1024;
  for (const [label, char, bytesPerChar] of [
    ['ASCII', 'x', 1],
    ['2-byte', 'é', 2],
    ['3-byte', '€', 3],
    ['4-byte', '😀', 4],
  ] as const) {
    it(`cuts a 10 MB ${label} string value to maxAttributeValueBytes at a character boundary and counts value_truncated`, () => {
      const big = char.repeat(Math.ceil(TEN_MB / bytesPerChar));
      const limit = 4096;
      const expected = char.repeat(Math.floor(limit / bytesPerChar));
      const pb = decode(requestOf([spanFields(ld(9, keyValue('big', stringValue(big))))]), 'protobuf');
      const json = decode(
        jsonRequestOf([jsonSpan({ attributes: [{ key: 'big', value: { stringValue: big } }] })]),
        'json',
      );
      for (const result of [pb, json]) {
        const value = JSON.parse(result.rows[0].attributes).big as string;
        expect(value).toBe(expected);
        expect(Buffer.byteLength(value)).toBeLessThanOrEqual(limit);
        expect(result.sanitized).toEqual({ value_truncated: 1 });
      }
    });
  }

  it('cuts a 10 MB bytes value to maxAttributeValueBytes before base64', () => {
    const big = Buffer.alloc(TEN_MB, 7);
    const pb = decode(requestOf([spanFields(ld(9, keyValue('b', ld(7, big))))]), 'protobuf');
    const json = decode(
      jsonRequestOf([jsonSpan({ attributes: [{ key: 'b', value: { bytesValue: big.toString('base64') } }] })]),
      'json',
    );
    for (const result of [pb, json]) {
      expect(Buffer.from(JSON.parse(result.rows[0].attributes).b, 'base64')).toEqual(big.subarray(0, 4096));
      expect(result.sanitized).toEqual({ value_truncated: 1 });
    }
  });

  it('re-cuts a value whose invalid UTF-8 grew past the limit when replaced', () => {
    const result = decode(
      requestOf([spanFields(ld(9, keyValue('v', stringValue(Buffer.alloc(20, 0xff)))))]),
      'protobuf',
      {
        maxAttributeValueBytes: 10,
      },
    );
    expect(JSON.parse(result.rows[0].attributes).v).toBe('\uFFFD'.repeat(3));
    expect(result.sanitized).toEqual({ invalid_utf8: 1, value_truncated: 1 });
  });

  it('truncates string values inside arrays and kvlists too', () => {
    const long = 'y'.repeat(50);
    const result = decode(
      requestOf([spanFields(ld(9, keyValue('a', arrayOf(stringValue(long), stringValue('ok')))))]),
      'protobuf',
      {
        maxAttributeValueBytes: 8,
      },
    );
    expect(JSON.parse(result.rows[0].attributes)).toEqual({ a: ['yyyyyyyy', 'ok'] });
    expect(result.sanitized).toEqual({ value_truncated: 1 });
  });
});

describe('capping attributes, events and links', () => {
  it('keeps the first 128 of 100,000 span attributes and adds the rest to droppedAttributesCount', () => {
    const n = 100_000;
    const attrs = Array.from({ length: n }, (_, i) => ld(9, keyValue(`k${i}`, varintField(3, i))));
    const pb = decode(requestOf([spanFields(...attrs, varintField(10, 5))]), 'protobuf');
    const jsonAttrs = Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: { intValue: i } }));
    const json = decode(jsonRequestOf([jsonSpan({ attributes: jsonAttrs, droppedAttributesCount: 5 })]), 'json');
    for (const result of [pb, json]) {
      const row = result.rows[0];
      const kept = JSON.parse(row.attributes);
      expect(Object.keys(kept)).toHaveLength(128);
      expect(kept.k127).toBe(127);
      expect(row.droppedAttributesCount).toBe(5 + n - 128);
      expect(result.sanitized).toEqual({ attributes_dropped: n - 128 });
    }
  });

  it('caps resource, scope, event and link attributes too, counting every drop', () => {
    const attrs = (field: number, n: number) =>
      Array.from({ length: n }, (_, i) => ld(field, keyValue(`a${i}`, stringValue('v'))));
    const event = ld(11, Buffer.concat(attrs(3, 5)));
    const link = ld(13, Buffer.concat([ld(1, Buffer.alloc(16, 1)), ld(2, Buffer.alloc(8, 1)), ...attrs(4, 6)]));
    const scope = ld(1, Buffer.concat([ld(1, 'scope'), ...attrs(3, 4)]));
    const body = ld(1, ld(1, Buffer.concat(attrs(1, 7))), ld(2, scope, ld(2, spanFields(event, link))));
    const result = decode(body, 'protobuf', { maxAttributesPerSpan: 3 });
    const row = result.rows[0];
    expect(Object.keys(JSON.parse(row.resourceAttributes))).toEqual(['a0', 'a1', 'a2']);
    expect(Object.keys(JSON.parse(row.scopeAttributes))).toHaveLength(3);
    expect(JSON.parse(row.events)[0]).toMatchObject({ droppedAttributesCount: 2 });
    expect(JSON.parse(row.links)[0]).toMatchObject({ droppedAttributesCount: 3 });
    expect(result.sanitized).toEqual({ attributes_dropped: 4 + 1 + 2 + 3 });
  });

  it('keeps the first maxEventsPerSpan events and maxLinksPerSpan links, adding the rest to the dropped counts', () => {
    const n = 100_000;
    const events = Array.from({ length: n }, (_, i) => ld(11, ld(2, `e${i}`)));
    const links = Array.from({ length: 200 }, () => ld(13, ld(1, Buffer.alloc(16, 2))));
    const pb = decode(requestOf([spanFields(...events, varintField(12, 1), ...links, varintField(14, 2))]), 'protobuf');
    const json = decode(
      jsonRequestOf([
        jsonSpan({
          events: Array.from({ length: n }, (_, i) => ({ name: `e${i}` })),
          droppedEventsCount: 1,
          links: Array.from({ length: 200 }, () => ({ traceId: '02'.repeat(16) })),
          droppedLinksCount: 2,
        }),
      ]),
      'json',
    );
    for (const result of [pb, json]) {
      const row = result.rows[0];
      expect(JSON.parse(row.events)).toHaveLength(128);
      expect(JSON.parse(row.events)[127].name).toBe('e127');
      expect(JSON.parse(row.links)).toHaveLength(128);
      expect(row.droppedEventsCount).toBe(1 + n - 128);
      expect(row.droppedLinksCount).toBe(2 + 72);
      expect(result.sanitized).toEqual({ events_dropped: n - 128, links_dropped: 72 });
    }
  });

  it('caps a dropped count at 2^31 - 1 so it fits a PostgreSQL integer', () => {
    const result = decode(requestOf([spanFields(varintField(10, 4294967295))]), 'protobuf');
    expect(result.rows[0].droppedAttributesCount).toBe(2147483647);
  });
});
