import { describe, expect, it } from 'vitest';
import { buildRequest, realisticSpans } from '../../helpers/otlp-fixtures.js';
import {
  NOW_MS,
  decode,
  errorCodeOf,
  jsonRequestOf,
  jsonSpan,
  keyValue,
  ld,
  requestOf,
  spanFields,
  tag,
  varint,
} from './decode-helpers.js';

describe('whole-request protobuf errors (400 with a reason)', () => {
  it('answers an empty protobuf body with zero spans', () => {
    expect(decode(Buffer.alloc(0), 'protobuf')).toEqual({
      rows: [],
      spanCount: 0,
      rejected: {},
      rejectMessage: '',
      sanitized: {},
    });
  });

  it('rejects a truncated varint with TH_ERR_DECODE_BAD_PROTOBUF', () => {
    const err = errorCodeOf(() => decode(Buffer.from([0x0a, 0xff]), 'protobuf'));
    expect(err).toMatchObject({ code: 'TH_ERR_DECODE_BAD_PROTOBUF', httpStatus: 400 });
    expect(err.message).toMatch(/truncated varint at byte 2|truncated varint/);
  });

  it('rejects a body cut short anywhere inside a valid request', () => {
    const { protobuf } = buildRequest({ spans: realisticSpans(3, { nowMs: NOW_MS, seed: 1 }) });
    for (const cut of [1, 2, 10, Math.floor(protobuf.length / 2), protobuf.length - 1]) {
      expect(errorCodeOf(() => decode(protobuf.subarray(0, cut), 'protobuf')).code).toBe('TH_ERR_DECODE_BAD_PROTOBUF');
    }
  });

  it('rejects text sent as protobuf, a length past the end, and a bad wire type', () => {
    expect(errorCodeOf(() => decode('{"resourceSpans":[]}', 'protobuf')).code).toBe('TH_ERR_DECODE_BAD_PROTOBUF');
    expect(errorCodeOf(() => decode(Buffer.from([0x0a, 0x05, 0x0a]), 'protobuf')).message).toMatch(/runs past the end/);
    expect(errorCodeOf(() => decode(Buffer.from([0x0f]), 'protobuf')).message).toMatch(/invalid wire type 7/);
  });

  it('rejects a nested message whose last field overruns it', () => {
    // ResourceSpans of length 2 holding a field whose own length (5) crosses the ResourceSpans end.
    const body = Buffer.concat([tag(1, 2), varint(2), tag(3, 2), varint(5), Buffer.from('abcde')]);
    expect(errorCodeOf(() => decode(body, 'protobuf')).code).toBe('TH_ERR_DECODE_BAD_PROTOBUF');
  });

  it('refuses 10,000 nested protobuf groups with a 400, without recursing', () => {
    const body = Buffer.concat([Buffer.alloc(10_000, (1 << 3) | 3), Buffer.alloc(10_000, (1 << 3) | 4)]);
    const started = performance.now();
    expect(errorCodeOf(() => decode(body, 'protobuf')).message).toMatch(/group/);
    expect(performance.now() - started).toBeLessThan(100);
  });
});

/**
 * An AnyValue nested `levels` deep (array_value → ArrayValue.values → AnyValue …, or kvlist_value →
 * KeyValueList.values → KeyValue.value → AnyValue …). Every level is a prefix of the leaf, so the
 * prefixes are computed inside out from the sizes and concatenated once (no quadratic copying).
 */
function deepProtobufAnyValue(levels: number, kind: 'array' | 'kvlist'): Buffer {
  const leaf = ld(1, 'leaf'); // AnyValue{string_value}
  const prefixes: Buffer[] = [];
  let size = leaf.length;
  for (let i = 0; i < levels; i++) {
    let prefix: Buffer;
    if (kind === 'array') {
      const arrayValue = Buffer.concat([tag(1, 2), varint(size)]); // ArrayValue.values
      prefix = Buffer.concat([tag(5, 2), varint(arrayValue.length + size), arrayValue]);
    } else {
      const keyValuePrefix = Buffer.concat([tag(1, 2), varint(1), Buffer.from('k'), tag(2, 2), varint(size)]);
      const kvSize = keyValuePrefix.length + size;
      const listPrefix = Buffer.concat([tag(1, 2), varint(kvSize)]); // KeyValueList.values
      prefix = Buffer.concat([tag(6, 2), varint(listPrefix.length + kvSize), listPrefix, keyValuePrefix]);
    }
    prefixes.push(prefix);
    size += prefix.length;
  }
  return Buffer.concat([...prefixes.reverse(), leaf]);
}

function deepJsonAnyValue(levels: number, kind: 'array' | 'kvlist'): string {
  const open = kind === 'array' ? '{"arrayValue":{"values":[' : '{"kvlistValue":{"values":[{"key":"k","value":';
  const close = kind === 'array' ? ']}}' : '}]}}';
  return open.repeat(levels) + '{"stringValue":"leaf"}' + close.repeat(levels);
}

describe('AnyValue nesting deeper than maxAnyValueDepth', () => {
  for (const kind of ['array', 'kvlist'] as const) {
    for (const levels of [10_000, 100_000]) {
      it(`answers ${levels.toLocaleString('en')} nested ${kind}s in protobuf with TH_ERR_DECODE_TOO_DEEP, fast`, () => {
        const body = requestOf([spanFields(ld(9, keyValue('deep', deepProtobufAnyValue(levels, kind))))]);
        const started = performance.now();
        const err = errorCodeOf(() => decode(body, 'protobuf'));
        expect(err).toMatchObject({ code: 'TH_ERR_DECODE_TOO_DEEP', httpStatus: 400 });
        expect(performance.now() - started).toBeLessThan(100);
      });
    }

    it(`answers 10,000 nested ${kind}s in OTLP/JSON with TH_ERR_DECODE_TOO_DEEP, fast`, () => {
      const attr = `{"key":"deep","value":${deepJsonAnyValue(10_000, kind)}}`;
      const body = jsonRequestOf([jsonSpan({ attributes: ['@'] })]).replace('"@"', attr);
      const started = performance.now();
      expect(errorCodeOf(() => decode(body, 'json')).code).toBe('TH_ERR_DECODE_TOO_DEEP');
      expect(performance.now() - started).toBeLessThan(100);
    });
  }

  it('accepts nesting exactly at the limit and refuses one level more', () => {
    for (const format of ['protobuf', 'json'] as const) {
      const bodyAt = (levels: number) =>
        format === 'protobuf'
          ? requestOf([spanFields(ld(9, keyValue('d', deepProtobufAnyValue(levels, 'array'))))])
          : Buffer.from(
              jsonRequestOf([jsonSpan({ attributes: ['@'] })]).replace(
                '"@"',
                `{"key":"d","value":${deepJsonAnyValue(levels, 'array')}}`,
              ),
            );
      const ok = decode(bodyAt(4), format, { maxAnyValueDepth: 4 });
      expect(JSON.parse(ok.rows[0].attributes).d).toEqual([[[['leaf']]]]);
      expect(errorCodeOf(() => decode(bodyAt(5), format, { maxAnyValueDepth: 4 })).code).toBe('TH_ERR_DECODE_TOO_DEEP');
    }
  });

  it('ignores deep nesting in unknown JSON fields (never walked)', () => {
    const body = `{"resourceSpans":[],"somethingNew":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect(decode(body, 'json').spanCount).toBe(0);
  });
});

describe('whole-request JSON errors', () => {
  it("answers invalid JSON with TH_ERR_DECODE_BAD_JSON carrying the parser's reason", () => {
    const err = errorCodeOf(() => decode('{"resourceSpans": [', 'json'));
    expect(err).toMatchObject({ code: 'TH_ERR_DECODE_BAD_JSON', httpStatus: 400 });
    expect(err.message).toMatch(/^invalid JSON: .*(Unexpected end|JSON)/);
  });

  it('answers a body of the wrong shape with TH_ERR_DECODE_BAD_JSON naming the path', () => {
    const cases: [unknown, RegExp][] = [
      [[], /^request: expected an ExportTraceServiceRequest object/],
      [{ resourceSpans: {} }, /^resourceSpans: expected an array/],
      [
        { resourceSpans: [{ scopeSpans: [{ spans: [1] }] }] },
        /^resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]: expected a Span object/,
      ],
      [
        { resourceSpans: [{ scopeSpans: [{ spans: [jsonSpan({ name: 5 })] }] }] },
        /spans\[0\]\.name: expected a string/,
      ],
      [
        { resourceSpans: [{ scopeSpans: [{ spans: [jsonSpan({ kind: 'SPAN_KIND_BOGUS' })] }] }] },
        /spans\[0\]\.kind: expected an enum/,
      ],
      [
        { resourceSpans: [{ scopeSpans: [{ spans: [jsonSpan({ startTimeUnixNano: '12abc' })] }] }] },
        /startTimeUnixNano: expected a uint64/,
      ],
      [{ resourceSpans: [{ scopeSpans: [{ spans: [jsonSpan({ traceId: 12 })] }] }] }, /traceId: expected a string/],
      [
        {
          resourceSpans: [
            {
              scopeSpans: [
                {
                  spans: [
                    jsonSpan({ attributes: [{ key: 'a', value: { arrayValue: { values: [{ intValue: 1.5 }] } } }] }),
                  ],
                },
              ],
            },
          ],
        },
        /spans\[0\]\.attributes\[0\]\.value\.arrayValue\.values\[0\]\.intValue: expected an int64/,
      ],
      [
        { resourceSpans: [{ resource: { attributes: [{ key: 'a', value: { boolValue: 'yes' } }] } }] },
        /^resourceSpans\[0\]\.resource\.attributes\[0\]\.value\.boolValue: expected a boolean/,
      ],
      [
        { resourceSpans: [{ scopeSpans: [{ spans: [jsonSpan({ events: [{ name: [] }] })] }] }] },
        /spans\[0\]\.events\[0\]\.name: expected a string/,
      ],
    ];
    for (const [body, message] of cases) {
      const err = errorCodeOf(() => decode(JSON.stringify(body), 'json'));
      expect(err.code).toBe('TH_ERR_DECODE_BAD_JSON');
      expect(err.message).toMatch(message);
    }
  });

  it('answers an empty body, whitespace, a BOM and {} with zero spans', () => {
    for (const body of ['', '  \n', '\uFEFF{}', '{}', '{"resourceSpans":[]}', '{"resourceSpans":null}']) {
      expect(decode(body, 'json')).toEqual({ rows: [], spanCount: 0, rejected: {}, rejectMessage: '', sanitized: {} });
    }
  });
});

describe('JSON __proto__ and constructor keys', () => {
  const bodies: [string, string][] = [
    ['a top-level __proto__', '{"__proto__":{"polluted":true},"resourceSpans":[]}'],
    [
      'a __proto__ inside a span',
      jsonRequestOf([{ ...jsonSpan(), x: 1 }]).replace('"x":1', '"__proto__":{"polluted":true}'),
    ],
    [
      'a constructor key in an AnyValue',
      jsonRequestOf([
        jsonSpan({ attributes: [{ key: 'a', value: { constructor: { prototype: { polluted: true } } } }] }),
      ]),
    ],
    ['a \\u-escaped __proto__', '{"resourceSpans":[],"\\u005f_proto__":{"polluted":true}}'],
    ['a \\u-escaped constructor', '{"resourceSpans":[{"\\u0063onstructor":{}}]}'],
    [
      'a __proto__ in an unknown field deep down',
      `{"resourceSpans":[],"x":${'['.repeat(3000)}{"__proto__":{"polluted":true}}${']'.repeat(3000)}}`,
    ],
  ];
  for (const [what, body] of bodies) {
    it(`answers ${what} with TH_ERR_DECODE_FORBIDDEN_KEY and leaves Object.prototype untouched`, () => {
      const err = errorCodeOf(() => decode(body, 'json'));
      expect(err).toMatchObject({ code: 'TH_ERR_DECODE_FORBIDDEN_KEY', httpStatus: 400 });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('polluted');
    });
  }

  it('accepts "__proto__" and "constructor" as string values and as OTLP attribute keys', () => {
    const body = jsonRequestOf([
      jsonSpan({
        name: '__proto__',
        attributes: [
          { key: '__proto__', value: { stringValue: 'constructor' } },
          { key: 'constructor', value: { stringValue: '"__proto__":' } },
        ],
      }),
    ]);
    const result = decode(body, 'json');
    expect(result.rows[0].name).toBe('__proto__');
    expect(result.rows[0].attributes).toBe('{"__proto__":"constructor","constructor":"\\"__proto__\\":"}');
  });
});
