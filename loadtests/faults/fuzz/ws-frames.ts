/**
 * What the WebSocket fuzzer sends: frames whose envelope is right and whose OTLP body is a decoder
 * fuzz input (inputs.ts), fresh valid requests that commit, and envelope faults, each with the
 * close code docs/websocket-protocol.md prescribes.
 */
import { isUtf8 } from 'node:buffer';
import { buildRequest, realisticSpans } from '../../../test/helpers/otlp-fixtures.js';
import { buildCorpus, makeInput, type Corpus } from './inputs.js';
import { createRng, inputSeed, int, mutate, pick, type Rng } from './mutate.js';
import type { GenerateOptions } from './generate.js';

export interface FrameSource {
  corpus: Corpus;
  generate: GenerateOptions;
  runSeed: number;
}

const DAY_MS = 86_400_000;

/** Inputs dated a month back: their spans are rejected per span, so most frames need no commit. */
export function frameSource(runSeed: number, nowMs = Date.now()): FrameSource {
  const past = nowMs - 30 * DAY_MS;
  return { corpus: buildCorpus(past), generate: { nowMs: past, maxDepth: 32 }, runSeed };
}

export interface OutgoingFrame {
  data: Buffer;
  binary: boolean;
  kind: string;
  /** A text frame that is not UTF-8 closes the connection (1007, RFC 6455) instead of being acked. */
  closeCode?: number;
}

/** Share of frames that carry a fresh, valid request (possibly mutated), so the commit path runs. */
const FRESH_SHARE = 0.05;

/** The frame for input `index` with sequence id `seq`: protobuf in binary frames, JSON in text. */
export function makeFrame(source: FrameSource, index: number, seq: number): OutgoingFrame {
  const rng = createRng(inputSeed(source.runSeed ^ 0x2f6b, index));
  const binary = rng() < 0.6;
  let body: Buffer;
  let kind: string;
  if (rng() < FRESH_SHARE) {
    const request = buildRequest({ spans: realisticSpans(1 + int(rng, 4), { nowMs: Date.now() }) });
    body = binary ? request.protobuf : Buffer.from(request.json);
    if (rng() < 0.5) body = mutate(rng, body, undefined, [body]);
    kind = 'fresh';
  } else {
    const input = makeInput(binary ? 'protobuf' : 'json', source.corpus, source.runSeed, index, source.generate);
    body = input.body;
    kind = input.kind;
  }
  if (!binary && !isUtf8(body)) {
    // RFC 6455 closes the connection (1007) for such a text frame; keep one in ten as that fault
    // and send the others as the UTF-8 text they decode to, so reconnects stay rare.
    if (rng() < 0.1) return { data: envelope(seq, body, false), binary, kind, closeCode: 1007 };
    body = Buffer.from(body.toString('utf8'));
  }
  return { data: envelope(seq, body, binary), binary, kind };
}

export function envelope(seq: number | bigint, body: Buffer, binary: boolean): Buffer {
  if (!binary) return Buffer.concat([Buffer.from(`${seq}\n`), body]);
  const head = Buffer.alloc(8);
  head.writeBigUInt64BE(BigInt(seq));
  return Buffer.concat([head, body]);
}

export interface EnvelopeFault {
  name: string;
  /** Frames sent in order on an idle connection; the server must close with `closeCode`. */
  frames: Array<{ data: Buffer; binary: boolean }>;
  closeCode: number;
  /** Connect without the tracehouse.otlp.v1 subprotocol instead of sending frames. */
  noSubprotocol?: boolean;
}

/** A frame the server cannot read (1007, 1008, 1009), or a connection without the subprotocol (1002). */
export function makeFault(rng: Rng, seq: number, maxFrameBytes: number): EnvelopeFault {
  const valid = buildRequest({ spans: realisticSpans(3, { nowMs: Date.now() }) }).protobuf;
  const faults: Array<() => EnvelopeFault> = [
    () => ({ name: 'short-binary', frames: [{ data: Buffer.alloc(int(rng, 8), 7), binary: true }], closeCode: 1007 }),
    () => ({
      name: 'seq-over-2^53',
      frames: [{ data: envelope(2n ** 53n + BigInt(int(rng, 1000)), valid, true), binary: true }],
      closeCode: 1007,
    }),
    () => ({
      name: 'text-without-seq',
      frames: [{ data: Buffer.from(pick(rng, ['{"resourceSpans":[]}', '', '\n{}', 'x'.repeat(40)])), binary: false }],
      closeCode: 1007,
    }),
    () => ({
      name: 'text-bad-seq',
      frames: [
        { data: Buffer.from(pick(rng, ['12a\n{}', '-1\n{}', ' 7\n{}', '99999999999999999\n{}'])), binary: false },
      ],
      closeCode: 1007,
    }),
    () => ({
      name: 'text-invalid-utf8',
      frames: [
        {
          data: Buffer.concat([Buffer.from(`${seq}\n{"a":"`), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
          binary: false,
        },
      ],
      closeCode: 1007,
    }),
    () => ({
      name: 'reused-seq',
      frames: [
        { data: envelope(seq, valid, true), binary: true },
        { data: envelope(seq, valid, true), binary: true },
      ],
      closeCode: 1008,
    }),
    () => ({
      name: 'over-max-frame',
      frames: [{ data: envelope(seq, Buffer.alloc(maxFrameBytes + 1, 0x0a), true), binary: true }],
      closeCode: 1009,
    }),
    () => ({ name: 'no-subprotocol', frames: [], closeCode: 1002, noSubprotocol: true }),
  ];
  return pick(rng, faults)();
}
