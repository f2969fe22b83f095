import { describe, expect, it } from 'vitest';
import { AttributeList, formatDouble } from '../../../server/decode/any-value.js';
import { truncateUtf8 } from '../../../server/decode/sanitize.js';
import { decode, keyValue, ld, requestOf, spanFields, stringValue } from './decode-helpers.js';

describe('formatDouble', () => {
  it('writes integral doubles with a .0 suffix so they stay distinguishable from ints', () => {
    expect(formatDouble(2)).toBe('2.0');
    expect(formatDouble(-17)).toBe('-17.0');
    expect(formatDouble(-0)).toBe('-0.0');
    expect(formatDouble(1e21)).toBe('1000000000000000000000.0');
    expect(formatDouble(-1.7976931348623157e308)).toMatch(/^-179769313486231570\d+\.0$/);
  });

  it('writes other finite doubles in their shortest round-trip form', () => {
    for (const v of [0.1, -2.5, 1e-7, 5e-324, 123456.789]) {
      expect(formatDouble(v)).toBe(String(v));
      expect(JSON.parse(formatDouble(v))).toBe(v);
    }
  });

  it('writes NaN and the infinities as JSON strings', () => {
    expect([NaN, Infinity, -Infinity].map(formatDouble)).toEqual(['"NaN"', '"Infinity"', '"-Infinity"']);
  });
});

describe('AttributeList', () => {
  const build = (pairs: [string, string][], max = 100) => {
    const list = new AttributeList(max);
    for (const [k, v] of pairs) if (list.admitNext()) list.push(JSON.stringify(k), v);
    return list;
  };

  it('writes a JSON object in insertion order', () => {
    expect(
      build([
        ['a', '1'],
        ['b', '"x"'],
      ]).toJson(),
    ).toBe('{"a":1,"b":"x"}');
    expect(build([]).toJson()).toBe('{}');
  });

  it('keeps the last value of a duplicate key at its first position, for small and large lists', () => {
    expect(
      build([
        ['a', '1'],
        ['b', '2'],
        ['a', '3'],
      ]).toJson(),
    ).toBe('{"a":3,"b":2}');
    const many: [string, string][] = Array.from({ length: 40 }, (_, i) => [`k${i % 20}`, String(i)]);
    expect(JSON.parse(build(many).toJson())).toEqual(
      Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, 20 + i])),
    );
  });

  it('admits only the first max pairs and reports the rest as dropped', () => {
    const list = build(
      [
        ['a', '1'],
        ['b', '2'],
        ['c', '3'],
      ],
      2,
    );
    expect(list.toJson()).toBe('{"a":1,"b":2}');
    expect(list.dropped).toBe(1);
    list.reset();
    expect(list.toJson()).toBe('{}');
    expect(list.dropped).toBe(0);
  });
});

describe('truncateUtf8', () => {
  it('cuts at the last whole character that fits, never inside a surrogate pair', () => {
    expect(truncateUtf8('abc', 2)).toBe('ab');
    expect(truncateUtf8('aé', 2)).toBe('a');
    expect(truncateUtf8('a😀b', 4)).toBe('a');
    expect(truncateUtf8('a😀b', 5)).toBe('a😀');
    expect(truncateUtf8('€€', 5)).toBe('€');
    expect(truncateUtf8('', 0)).toBe('');
  });
});

describe('short-string memo', () => {
  it('returns the same strings for repeated bytes, across requests', () => {
    const body = requestOf([
      spanFields(ld(9, keyValue('k€y', stringValue('välue')))),
      spanFields(ld(9, keyValue('k€y', stringValue('välue')))),
    ]);
    const first = decode(body, 'protobuf');
    const second = decode(body, 'protobuf');
    for (const row of [...first.rows, ...second.rows]) expect(row.attributes).toBe('{"k€y":"välue"}');
  });

  it('never memoizes a sanitized string, so every occurrence is counted', () => {
    const dirty = Buffer.from([0x6b, 0xff]);
    const body = requestOf([spanFields(ld(5, dirty), ld(9, keyValue(dirty, stringValue(dirty))))]);
    expect(decode(body, 'protobuf').sanitized).toEqual({ invalid_utf8: 3 });
    expect(decode(body, 'protobuf').sanitized).toEqual({ invalid_utf8: 3 });
  });

  it('tells apart strings of equal length and different bytes', () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `key-${i.toString(36).padStart(4, '0')}`);
    const body = requestOf([spanFields(...keys.map((k) => ld(9, keyValue(k, stringValue(k)))))]);
    const attributes = JSON.parse(decode(body, 'protobuf', { maxAttributesPerSpan: 10_000 }).rows[0].attributes);
    expect(Object.entries(attributes)).toEqual(keys.map((k) => [k, k]));
  });
});
