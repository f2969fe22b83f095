import { describe, expect, it } from 'vitest';
import { parseAttributes, parseStoredJson, valueToText } from '../../../server/query/any-value.js';
import { stringifyExact } from '../../../server/query/exact-json.js';

describe('stored JSON reader', () => {
  it('keeps int64 digits exact and tells ints from doubles as the stored forms do', () => {
    expect(parseAttributes('{"a": 9223372036854775807, "b": 2.0, "c": -0.0000001, "d": 12, "e": 1e-7}')).toEqual([
      { key: 'a', value: { type: 'int', value: '9223372036854775807' } },
      { key: 'b', value: { type: 'double', value: 2 } },
      { key: 'c', value: { type: 'double', value: -1e-7 } },
      { key: 'd', value: { type: 'int', value: '12' } },
      { key: 'e', value: { type: 'double', value: 1e-7 } },
    ]);
  });

  it('reads strings with escapes, booleans, null, arrays and nested objects', () => {
    expect(
      parseStoredJson('{"s": "a\\"b\\u00e9\\n", "t": true, "n": null, "arr": [1, "x", [false]], "kv": {"k": 1.5}}'),
    ).toEqual({
      type: 'kvlist',
      values: [
        { key: 's', value: { type: 'string', value: 'a"bé\n' } },
        { key: 't', value: { type: 'bool', value: true } },
        { key: 'n', value: { type: 'empty' } },
        {
          key: 'arr',
          value: {
            type: 'array',
            values: [
              { type: 'int', value: '1' },
              { type: 'string', value: 'x' },
              { type: 'array', values: [{ type: 'bool', value: false }] },
            ],
          },
        },
        { key: 'kv', value: { type: 'kvlist', values: [{ key: 'k', value: { type: 'double', value: 1.5 } }] } },
      ],
    });
  });

  it('refuses malformed text instead of guessing', () => {
    for (const text of ['{"a": }', '{"a": 1', '[1 2]', '"open', '{} x']) {
      expect(() => parseStoredJson(text)).toThrow(/malformed/);
    }
  });

  it('shows scalars as text the way Jaeger tags and tag values do', () => {
    expect(valueToText({ type: 'int', value: '9007199254740993' })).toBe('9007199254740993');
    expect(valueToText(parseStoredJson('["a", 9007199254740993, {"k": true}]'))).toBe(
      '["a","9007199254740993",{"k":true}]',
    );
  });
});

describe('exact JSON output', () => {
  it('writes bigints as bare exact digits and leaves look-alike strings alone', () => {
    expect(stringifyExact({ v: 9223372036854775807n, s: '\\u0000#1', n: [1, -5n] })).toBe(
      '{"v":9223372036854775807,"s":"\\\\u0000#1","n":[1,-5]}',
    );
  });
});
