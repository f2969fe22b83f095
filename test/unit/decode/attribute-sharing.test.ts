import { describe, expect, it } from 'vitest';
import { appendToSetKey, AttributeSharing } from '../../../server/decode/attribute-sharing.js';
import { decodeExportRequest } from '../../../server/decode/index.js';
import { buildRequest, realisticSpans } from '../../helpers/otlp-fixtures.js';
import { decodeOptions, NOW_MS } from './decode-helpers.js';

const LIMITS = { maxKeys: 3, maxValuesPerKey: 2, maxValueChars: 10 };

describe('AttributeSharing', () => {
  it('shares a key while it has shown at most maxValuesPerKey values, then keeps it inline for good', () => {
    const sharing = new AttributeSharing(LIMITS);
    const get = sharing.pairId('"m"', '"GET"');
    const put = sharing.pairId('"m"', '"PUT"');
    expect(get).toBeGreaterThanOrEqual(0);
    expect(put).toBeGreaterThanOrEqual(0);
    expect(put).not.toBe(get);
    expect(sharing.pairId('"m"', '"GET"')).toBe(get);
    expect(sharing.pairId('"m"', '"POST"')).toBe(-1); // a third value
    expect(sharing.pairId('"m"', '"GET"')).toBe(-1); // inline from now on
  });

  it('keeps values longer than maxValueChars inline without counting them against the key', () => {
    const sharing = new AttributeSharing(LIMITS);
    expect(sharing.pairId('"ua"', `"${'x'.repeat(20)}"`)).toBe(-1);
    expect(sharing.pairId('"ua"', `"${'y'.repeat(20)}"`)).toBe(-1);
    expect(sharing.pairId('"ua"', '"curl"')).toBeGreaterThanOrEqual(0);
  });

  it('tracks at most maxKeys keys; later keys stay inline', () => {
    const sharing = new AttributeSharing(LIMITS);
    for (const key of ['"a"', '"b"', '"c"']) expect(sharing.pairId(key, '1')).toBeGreaterThanOrEqual(0);
    expect(sharing.pairId('"d"', '1')).toBe(-1);
    expect(sharing.trackedKeys).toBe(3);
  });

  it('tells sets apart by their pairs and their order', () => {
    const sharing = new AttributeSharing();
    const a = sharing.pairId('"a"', '1');
    const b = sharing.pairId('"b"', '2');
    const ab = appendToSetKey(appendToSetKey('', a), b);
    expect(appendToSetKey(appendToSetKey('', b), a)).not.toBe(ab);
    expect(appendToSetKey('', 0x1_0001)).not.toBe(appendToSetKey('', 0x0_0001));
    sharing.rememberSet(ab, '{"a":1,"b":2}');
    expect(sharing.setText(ab)).toBe('{"a":1,"b":2}');
    expect(sharing.setText(appendToSetKey('', a))).toBeUndefined();
  });
});

describe('decoding with attribute sharing', () => {
  const spans = realisticSpans(400, { nowMs: NOW_MS, seed: 7 });
  const { protobuf, json } = buildRequest({ spans });
  const whole = decodeExportRequest(protobuf, 'protobuf', decodeOptions()).rows;

  for (const [format, body] of [
    ['protobuf', protobuf],
    ['json', Buffer.from(json)],
  ] as const) {
    it(`splits each span's ${format} attributes into two maps with no common key whose union is the whole`, () => {
      const rows = decodeExportRequest(body, format, { ...decodeOptions(), sharing: new AttributeSharing() }).rows;
      expect(rows).toHaveLength(whole.length);
      let shared = 0;
      rows.forEach((row, i) => {
        const own = JSON.parse(row.attributes) as Record<string, unknown>;
        const set = JSON.parse(row.sharedAttributes) as Record<string, unknown>;
        expect(Object.keys(own).filter((key) => key in set)).toEqual([]);
        expect({ ...set, ...own }).toEqual(JSON.parse(whole[i].attributes));
        shared += Object.keys(set).length;
      });
      // Method, route, status code, address, port, user agent, flags and item count repeat few
      // values; url.full and the sampling ratio do not.
      const last = rows.at(-1)!;
      expect(Object.keys(JSON.parse(last.attributes)).sort()).toEqual(['app.sampling.ratio', 'url.full']);
      expect(shared).toBeGreaterThan(rows.length * 7);
      // Rows of one set share one string.
      const texts = new Map<string, string>();
      for (const row of rows) {
        const known = texts.get(row.sharedAttributes);
        if (known !== undefined) expect(Object.is(known, row.sharedAttributes)).toBe(true);
        else texts.set(row.sharedAttributes, row.sharedAttributes);
      }
    });
  }

  it('keeps the last value of a duplicate key, as without sharing', () => {
    const body = JSON.stringify({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  traceId: '0af7651916cd43dd8448eb211c80319c',
                  spanId: 'b7ad6b7169203331',
                  name: 'dup',
                  startTimeUnixNano: String(BigInt(NOW_MS) * 1_000_000n),
                  endTimeUnixNano: String(BigInt(NOW_MS) * 1_000_000n + 5n),
                  attributes: [
                    { key: 'k', value: { stringValue: 'first' } },
                    { key: 'x', value: { intValue: '1' } },
                    { key: 'k', value: { stringValue: 'last' } },
                  ],
                },
              ],
            },
          ],
        },
      ],
    });
    const [row] = decodeExportRequest(Buffer.from(body), 'json', {
      ...decodeOptions(),
      sharing: new AttributeSharing(),
    }).rows;
    expect(JSON.parse(row.sharedAttributes)).toEqual({ k: 'last', x: 1 });
    expect(row.attributes).toBe('{}');
  });
});
