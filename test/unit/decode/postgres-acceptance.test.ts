/**
 * The rows decode produces from hostile input must be accepted by PostgreSQL as they are: every
 * string as text (no NUL, valid UTF-8) and every JSON column as jsonb. Checked against the real
 * test PostgreSQL (no table needed: a cast of query parameters).
 */
import { describe, expect, it } from 'vitest';
import type { SpanRow } from '../../../server/decode/types.js';
import { adminQuery } from '../../helpers/db.js';
import { encodeWithProtobufjs } from '../../helpers/otlp-protobufjs.js';
import {
  NOW_NS,
  decode,
  jsonRequestOf,
  jsonSpan,
  keyValue,
  ld,
  requestOf,
  spanFields,
  stringValue,
} from './decode-helpers.js';

const DIRTY = [
  Buffer.from([0x61, 0x00, 0xff, 0xed, 0xa0, 0x80, 0x62]),
  Buffer.from('\u0000'),
  Buffer.from([0xc0, 0xaf]),
];

function hostileRows(): SpanRow[] {
  const pbSpans = DIRTY.map((d, i) =>
    spanFields(
      ld(2, Buffer.from(`0000000000000${i}a1`, 'hex')),
      ld(5, d),
      ld(3, d),
      ld(9, keyValue(d, stringValue(d))),
      ld(9, keyValue('arr', ld(5, ld(1, stringValue(d)), ld(1, ld(6, ld(1, keyValue(d, stringValue(d)))))))),
      ld(11, ld(2, d)),
      ld(13, Buffer.concat([ld(1, d), ld(3, d)])),
      ld(15, ld(2, d)),
    ),
  );
  const protobufRows = decode(
    requestOf(pbSpans, ld(1, keyValue('service.name', stringValue(DIRTY[0])))),
    'protobuf',
  ).rows;
  const lone = 'x\ud800\u0000\udfffy';
  const jsonRows = decode(
    jsonRequestOf([
      jsonSpan({
        name: lone,
        traceState: lone,
        attributes: [
          {
            key: lone,
            value: {
              kvlistValue: { values: [{ key: lone, value: { arrayValue: { values: [{ stringValue: lone }] } } }] },
            },
          },
        ],
        events: [{ name: lone, attributes: [{ key: lone, value: { stringValue: lone } }] }],
        links: [{ traceId: lone, traceState: lone }],
        status: { message: lone },
      }),
    ]),
    'json',
  ).rows;
  const extremes = decode(
    encodeWithProtobufjs({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  traceId: Buffer.alloc(16, 9),
                  spanId: Buffer.alloc(8, 9),
                  startTimeUnixNano: NOW_NS.toString(),
                  endTimeUnixNano: NOW_NS.toString(),
                  attributes: [
                    { key: 'intMax', value: { intValue: '9223372036854775807' } },
                    { key: 'intMin', value: { intValue: '-9223372036854775808' } },
                    { key: 'two', value: { doubleValue: 2 } },
                    { key: 'tiny', value: { doubleValue: 5e-324 } },
                    { key: 'huge', value: { doubleValue: 1.7976931348623157e308 } },
                    { key: 'nan', value: { doubleValue: NaN } },
                  ],
                },
              ],
            },
          ],
        },
      ],
    }),
    'protobuf',
  ).rows;
  return [...protobufRows, ...jsonRows, ...extremes];
}

describe('PostgreSQL accepts decoded rows from hostile input', () => {
  it('casts every string to text and every JSON column to jsonb', async () => {
    const rows = hostileRows();
    expect(rows).toHaveLength(DIRTY.length + 2);
    const texts = rows.flatMap((r) => [
      r.name,
      r.traceState,
      r.statusMessage,
      r.serviceName,
      r.scopeName,
      r.scopeVersion,
    ]);
    const jsons = rows.flatMap((r) => [r.attributes, r.resourceAttributes, r.scopeAttributes, r.events, r.links]);
    const result = await adminQuery(
      'SELECT (SELECT count(*) FROM unnest($1::text[]) AS t(x) WHERE x IS NOT NULL)::int AS texts, ' +
        '(SELECT count(*) FROM unnest($2::text[]) AS j(x) WHERE x::jsonb IS NOT NULL)::int AS jsons',
      [texts, jsons],
    );
    expect(result.rows[0]).toEqual({ texts: texts.length, jsons: jsons.length });
  });

  it('keeps int64 extremes exact and integral doubles distinguishable from ints in jsonb', async () => {
    const row = hostileRows().at(-1)!;
    const result = await adminQuery(
      "SELECT a->>'intMax' AS max, a->>'intMin' AS min, a->>'two' AS two, a->>'nan' AS nan, a->'huge' IS NOT NULL AS huge FROM (SELECT $1::jsonb AS a) s",
      [row.attributes],
    );
    expect(result.rows[0]).toEqual({
      max: '9223372036854775807',
      min: '-9223372036854775808',
      two: '2.0',
      nan: 'NaN',
      huge: true,
    });
  });
});
