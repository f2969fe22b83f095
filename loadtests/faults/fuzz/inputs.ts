/**
 * The fuzz inputs of each decoder target, as a pure function of (run seed, input index): a run can
 * be replayed, and an input that hangs or kills the decoder is rebuilt from its index alone. The
 * corpus of valid encodings (the SDK's serializers, protobufjs with unknown fields, hand-made
 * edge cases) is built from a fixed instant, so it is the same in every process.
 */
import type { DecodeOptions, WireFormat } from '../../../server/decode/types.js';
import { buildRequest, realisticSpans } from '../../../test/helpers/otlp-fixtures.js';
import { encodeWithProtobufjs } from '../../../test/helpers/otlp-protobufjs.js';
import { generateProtobuf, type GenerateOptions } from './generate.js';
import { generateJson, mutateJsonText } from './generate-json.js';
import { createRng, inputSeed, int, mapWire, mutate, pick, randomBytes, type Rng, type WireMap } from './mutate.js';
import { anyInt, anyString, encodeRequest, keyValue } from './otlp-wire.js';

/** The instant the corpus and the decode window are built around (2026-09-21). */
export const FUZZ_NOW_MS = 1_790_000_000_000;
const NOW_NS = BigInt(FUZZ_NOW_MS) * 1_000_000n;
const DAY_NS = 86_400n * 1_000_000_000n;

export const FUZZ_DECODE_OPTIONS: DecodeOptions = {
  limits: {
    maxAnyValueDepth: 32,
    maxAttributeValueBytes: 4096,
    maxAttributesPerSpan: 128,
    maxEventsPerSpan: 128,
    maxLinksPerSpan: 128,
  },
  window: { minStartUnixNano: NOW_NS - 7n * DAY_NS, maxStartUnixNano: NOW_NS + 600n * 1_000_000_000n },
};

export const GENERATE: GenerateOptions = { nowMs: FUZZ_NOW_MS, maxDepth: FUZZ_DECODE_OPTIONS.limits.maxAnyValueDepth };

export interface Corpus {
  protobuf: Buffer[];
  maps: WireMap[];
  json: string[];
}

export function buildCorpus(nowMs = FUZZ_NOW_MS): Corpus {
  const requests = [1, 3, 8].map((n, i) => {
    const spans = realisticSpans(n, { nowMs, seed: 11 + i });
    spans[0].attributes = {
      ...spans[0].attributes,
      nested: [[1, { a: [true, 'x', new Uint8Array([1, 2])] }]],
      big: 2 ** 70,
    };
    return buildRequest({ spans });
  });
  const startNs = BigInt(nowMs) * 1_000_000n - 1_000_000n;
  const withUnknown = encodeWithProtobufjs(
    {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  traceId: Buffer.alloc(16, 3),
                  spanId: Buffer.alloc(8, 4),
                  startTimeUnixNano: startNs.toString(),
                  endTimeUnixNano: (startNs + 10n).toString(),
                  attributes: [{ key: 'i', value: { intValue: '-9223372036854775808' } }],
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
  const handMade = encodeRequest([
    {
      resourceAttributes: [keyValue('service.name', anyString('fuzz'))],
      spans: [
        {
          traceId: Buffer.alloc(16, 7),
          spanId: Buffer.alloc(8, 9),
          name: Buffer.from([0x61, 0x00, 0xff]),
          startTimeUnixNano: startNs,
          endTimeUnixNano: startNs + 5n,
          attributes: Array.from({ length: 20 }, (_, i) => keyValue(`k${i}`, anyInt(i))),
          events: [{ timeUnixNano: startNs, name: 'e' }],
          links: [{ traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 2) }],
          status: { code: 2, message: 'boom' },
        },
      ],
    },
  ]);
  const protobuf = [...requests.map((r) => r.protobuf), withUnknown, handMade];
  return { protobuf, maps: protobuf.map((body) => mapWire(body)), json: requests.map((r) => r.json) };
}

/** How input `index` of a run was made, for the report of a failing input. */
export type InputKind = 'random' | 'mutated' | 'generated' | 'generated+mutated';

/**
 * Generated requests come in families of FAMILY inputs sharing one generated base (member 0 is
 * the base, the others mutations of it): generating costs more than decoding, so this keeps the
 * run fast while every input stays a function of (run seed, index).
 */
const FAMILY = 4;
let cachedBase: { key: string; body: Buffer; map?: WireMap } | undefined;

function generatedBase(
  format: WireFormat,
  runSeed: number,
  family: number,
  options: GenerateOptions,
): { body: Buffer; map?: WireMap } {
  const key = `${format}:${runSeed}:${family}:${options.nowMs}`;
  if (cachedBase?.key !== key) {
    const rng = createRng(inputSeed(runSeed ^ 0x5bd1e995, family));
    const body = format === 'protobuf' ? generateProtobuf(rng, options) : Buffer.from(generateJson(rng, options));
    cachedBase = { key, body, map: format === 'protobuf' ? mapWire(body) : undefined };
  }
  return cachedBase;
}

/** Input `index` of a run; `generate` moves the generated timestamps (default: around FUZZ_NOW_MS). */
export function makeInput(
  format: WireFormat,
  corpus: Corpus,
  runSeed: number,
  index: number,
  generate: GenerateOptions = GENERATE,
): { body: Buffer; kind: InputKind } {
  const rng = createRng(inputSeed(runSeed, index));
  const r = rng();
  if (r < 0.1) {
    if (format === 'json' && rng() < 0.5) return { body: Buffer.from(randomJsonish(rng)), kind: 'random' };
    return { body: randomBytes(rng, 512), kind: 'random' };
  }
  if (r < 0.5) {
    if (format === 'protobuf') {
      const i = int(rng, corpus.protobuf.length);
      return { body: mutate(rng, corpus.protobuf[i], corpus.maps[i], corpus.protobuf), kind: 'mutated' };
    }
    const body = Buffer.from(mutateJsonText(rng, pick(rng, corpus.json)));
    return { body: rng() < 0.15 ? mutate(rng, body, undefined, [body]) : body, kind: 'mutated' };
  }
  const base = generatedBase(format, runSeed, Math.floor(index / FAMILY), generate);
  if (index % FAMILY === 0) return { body: base.body, kind: 'generated' };
  if (format === 'protobuf') {
    return { body: mutate(rng, base.body, base.map, corpus.protobuf), kind: 'generated+mutated' };
  }
  const text = mutateJsonText(rng, base.body.toString('utf8'));
  return { body: Buffer.from(text), kind: 'generated+mutated' };
}

function randomJsonish(rng: Rng): string {
  const alphabet = '{}[]:,"0123456789.-eE truefalsnl\\u';
  let out = '';
  for (let n = int(rng, 200); n > 0; n--) out += alphabet[int(rng, alphabet.length)];
  return out;
}
