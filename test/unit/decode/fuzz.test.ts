/**
 * Property: whatever the bytes, decodeExportRequest returns a consistent DecodedRequest or throws a
 * 400-class TracehouseError; never another exception, never TH_ERR_INTERNAL (a decoder bug), never
 * an unstorable row. Seeded, so a failure names its seed and input and can be replayed.
 */
import { describe, expect, it } from 'vitest';
import { decodeExportRequest } from '../../../server/decode/index.js';
import type { DecodedRequest, WireFormat } from '../../../server/decode/types.js';
import { isTracehouseError } from '../../../server/errors.js';
import { buildRequest, createRng, realisticSpans } from '../../helpers/otlp-fixtures.js';
import { encodeWithProtobufjs } from '../../helpers/otlp-protobufjs.js';
import { NOW_MS, NOW_NS, decodeOptions } from './decode-helpers.js';

const BUDGET_MS = 2500;
const ALLOWED = new Set([
  'TH_ERR_DECODE_BAD_PROTOBUF',
  'TH_ERR_DECODE_BAD_JSON',
  'TH_ERR_DECODE_TOO_DEEP',
  'TH_ERR_DECODE_FORBIDDEN_KEY',
]);
const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x0b, 0x0c, 0x0f, 0x22, 0x7b, 0x5b];
const JSON_TOKENS = [
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '"',
  '\\u0000',
  '\\ud800',
  '__proto__',
  'null',
  '-1',
  '1e999',
  '"intValue":"x"',
  '"arrayValue":{"values":[',
];

type Rng = () => number;
const int = (rng: Rng, n: number) => Math.floor(rng() * n);

function mutateBytes(rng: Rng, seed: Buffer, others: Buffer[]): Buffer {
  let out = Buffer.from(seed);
  const rounds = 1 + int(rng, 4);
  for (let r = 0; r < rounds && out.length > 0; r++) {
    const at = int(rng, out.length);
    switch (int(rng, 7)) {
      case 0:
        out[at] ^= 1 << int(rng, 8);
        break;
      case 1:
        out[at] = INTERESTING_BYTES[int(rng, INTERESTING_BYTES.length)];
        break;
      case 2:
        out = out.subarray(0, at);
        break;
      case 3: {
        const len = int(rng, 64);
        out = Buffer.concat([out.subarray(0, at), out.subarray(at, at + len), out.subarray(at)]);
        break;
      }
      case 4:
        out = Buffer.concat([
          out.subarray(0, at),
          Buffer.from(Array.from({ length: 1 + int(rng, 8) }, () => int(rng, 256))),
          out.subarray(at),
        ]);
        break;
      case 5:
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + int(rng, 16))]);
        break;
      default: {
        const other = others[int(rng, others.length)];
        const from = int(rng, other.length);
        out = Buffer.concat([out.subarray(0, at), other.subarray(from, from + int(rng, 200))]);
      }
    }
  }
  return out;
}

function mutateJson(rng: Rng, seed: string): string {
  let out = seed;
  const rounds = 1 + int(rng, 3);
  for (let r = 0; r < rounds && out.length > 0; r++) {
    const at = int(rng, out.length);
    const token = JSON_TOKENS[int(rng, JSON_TOKENS.length)];
    switch (int(rng, 4)) {
      case 0:
        out = out.slice(0, at) + token + out.slice(at);
        break;
      case 1:
        out = out.slice(0, at) + token + out.slice(at + 1 + int(rng, 8));
        break;
      case 2:
        out = out.slice(0, at) + out.slice(at + 1 + int(rng, 32));
        break;
      default: {
        // swap a value for another of a different type, keeping the text valid JSON more often
        const quote = out.indexOf('":', at);
        if (quote > 0) {
          out =
            out.slice(0, quote + 2) +
            ['1', '"x"', 'null', '[]', '{}', 'true', '-0.5', '"18446744073709551616"'][int(rng, 8)] +
            out.slice(quote + 2).replace(/^("(?:[^"\\]|\\.)*"|[^,}\]]*)/, '');
        }
      }
    }
  }
  return out;
}

function checkOne(body: Buffer, format: WireFormat, label: string): 'ok' | 'error' {
  let result: DecodedRequest;
  try {
    result = decodeExportRequest(body, format, decodeOptions({ maxAnyValueDepth: 8 }));
  } catch (err) {
    if (isTracehouseError(err) && ALLOWED.has(err.code)) return 'error';
    throw new Error(`${label}: unexpected ${String(err)} for ${format} body ${body.toString('base64').slice(0, 400)}`, {
      cause: err,
    });
  }
  const rejected = Object.values(result.rejected).reduce((a, b) => a + (b ?? 0), 0);
  if (result.spanCount !== result.rows.length + rejected) throw new Error(`${label}: spanCount does not add up`);
  for (const row of result.rows) {
    for (const text of [row.attributes, row.resourceAttributes, row.scopeAttributes, row.events, row.links]) {
      JSON.parse(text);
    }
    for (const text of [
      row.name,
      row.traceState,
      row.statusMessage,
      row.serviceName,
      row.scopeName,
      row.scopeVersion,
      row.attributes,
      row.events,
    ]) {
      if (text.includes('\u0000') || !text.isWellFormed()) throw new Error(`${label}: unstorable string in a row`);
    }
    if (row.traceId.length !== 16 || row.spanId.length !== 8) throw new Error(`${label}: stored an invalid id`);
    if (row.startTimeUnixNano < NOW_NS - 7n * 86_400_000_000_000n) {
      throw new Error(`${label}: stored a span outside the window`);
    }
  }
  return 'ok';
}

function seeds() {
  const spans = realisticSpans(6, { nowMs: NOW_MS, seed: 7 });
  spans[0].attributes = {
    ...spans[0].attributes,
    nested: [[1, { a: [true, 'x', new Uint8Array([1, 2])] }]],
    big: 2 ** 70,
    neg: -5,
  };
  const { protobuf, json } = buildRequest({ spans });
  const pbjs = encodeWithProtobufjs(
    {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  traceId: Buffer.alloc(16, 3),
                  spanId: Buffer.alloc(8, 4),
                  startTimeUnixNano: (NOW_NS - 5n).toString(),
                  endTimeUnixNano: NOW_NS.toString(),
                  attributes: [
                    { key: 'i', value: { intValue: '-9223372036854775808' } },
                    { key: 'k', value: { kvlistValue: { values: [{ key: 'z' }] } } },
                  ],
                  futureString: 'x',
                },
              ],
            },
          ],
        },
      ],
    },
    { withUnknownFields: true },
  );
  return { protobufSeeds: [protobuf, pbjs], jsonSeeds: [json] };
}

describe('fuzzing the decoder (seeded)', () => {
  const { protobufSeeds, jsonSeeds } = seeds();

  it('turns random byte buffers into a result or a 400, in both formats', () => {
    const rng = createRng(1);
    const deadline = performance.now() + BUDGET_MS / 2;
    let runs = 0;
    while (performance.now() < deadline) {
      const body = Buffer.from(Array.from({ length: int(rng, 300) }, () => int(rng, 256)));
      checkOne(body, 'protobuf', `random #${runs}`);
      checkOne(body, 'json', `random #${runs}`);
      runs++;
    }
    expect(runs).toBeGreaterThan(1000);
  });

  it('turns mutated valid protobuf bodies into a result or a 400', () => {
    const rng = createRng(2);
    const deadline = performance.now() + BUDGET_MS;
    const outcomes = { ok: 0, error: 0 };
    while (performance.now() < deadline) {
      const seed = protobufSeeds[int(rng, protobufSeeds.length)];
      outcomes[
        checkOne(mutateBytes(rng, seed, protobufSeeds), 'protobuf', `protobuf mutation ${outcomes.ok + outcomes.error}`)
      ]++;
    }
    expect(outcomes.ok + outcomes.error).toBeGreaterThan(1000);
    expect(outcomes.ok).toBeGreaterThan(0);
    expect(outcomes.error).toBeGreaterThan(0);
  });

  it('turns mutated valid OTLP/JSON bodies into a result or a 400', () => {
    const rng = createRng(3);
    const deadline = performance.now() + BUDGET_MS;
    const outcomes = { ok: 0, error: 0 };
    while (performance.now() < deadline) {
      const text = mutateJson(rng, jsonSeeds[0]);
      const body =
        rng() < 0.1
          ? mutateBytes(
              rng,
              Buffer.from(text),
              jsonSeeds.map((s) => Buffer.from(s)),
            )
          : Buffer.from(text);
      outcomes[checkOne(body, 'json', `json mutation ${outcomes.ok + outcomes.error}`)]++;
    }
    expect(outcomes.ok + outcomes.error).toBeGreaterThan(500);
    expect(outcomes.ok).toBeGreaterThan(0);
    expect(outcomes.error).toBeGreaterThan(0);
  });
});

describe('errors that are not decode errors', () => {
  it('turns a stack overflow (a depth limit set far too high) into TH_ERR_DECODE_TOO_DEEP', () => {
    let inner = Buffer.from([0x0a, 0x00]); // AnyValue{string_value: ''}
    const levels = 200_000;
    // AnyValue{array_value{values: inner}} × levels, built as prefixes (see malformed-input.test.ts)
    const prefixes: Buffer[] = [];
    let size = inner.length;
    const varint = (n: number) => {
      const out: number[] = [];
      while (n >= 0x80) {
        out.push((n & 0x7f) | 0x80);
        n = Math.floor(n / 128);
      }
      out.push(n);
      return Buffer.from(out);
    };
    for (let i = 0; i < levels; i++) {
      const array = Buffer.concat([Buffer.from([0x0a]), varint(size)]);
      const prefix = Buffer.concat([Buffer.from([0x2a]), varint(array.length + size), array]);
      prefixes.push(prefix);
      size += prefix.length;
    }
    inner = Buffer.concat([...prefixes.reverse(), inner]);
    const keyValue = Buffer.concat([Buffer.from([0x0a, 0x01, 0x6b, 0x12]), varint(inner.length), inner]);
    const span = Buffer.concat([Buffer.from([0x4a]), varint(keyValue.length), keyValue]);
    const scopeSpans = Buffer.concat([Buffer.from([0x12]), varint(span.length), span]);
    const resourceSpans = Buffer.concat([Buffer.from([0x12]), varint(scopeSpans.length), scopeSpans]);
    const body = Buffer.concat([Buffer.from([0x0a]), varint(resourceSpans.length), resourceSpans]);
    let caught: unknown;
    try {
      decodeExportRequest(body, 'protobuf', decodeOptions({ maxAnyValueDepth: 1_000_000 }));
    } catch (err) {
      caught = err;
    }
    expect(isTracehouseError(caught) && caught.code).toBe('TH_ERR_DECODE_TOO_DEEP');
  });
});
