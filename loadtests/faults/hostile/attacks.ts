/**
 * The body attacks of the hostile-input scenario, each with the answer DESIGN.md's bad-input
 * policy prescribes: 413 for bodies over the limit (also after decompression), 400 for nesting
 * deeper than the limit, 200 for strings that need sanitizing and for a span with 100k attributes
 * (capped), 200 with partial success for out-of-window timestamps.
 */
import {
  badStringsJsonRequest,
  badStringsProtobufRequest,
  deepJsonRequest,
  deepProtobufRequest,
  extremeTimestampsRequest,
  manyAttributesRequest,
} from './bodies.js';
import { gzipBomb, postRaw, zeros, type RawAnswer } from './raw-http.js';

export interface AttackResult {
  id: string;
  expected: number;
  status: number;
  ms: number;
  /** Why the answer is wrong beyond its status; '' when right. */
  problem: string;
  /** The connection was reset before the answer could be read (tolerated for over-limit bodies). */
  reset: boolean;
}

/** Trace ids (hex) whose stored form the scenario checks afterwards. */
export interface StoredExpectations {
  badStringsProtobuf: { traceId: string; spans: number };
  badStringsJson: { traceId: string; spans: number };
  manyAttributes: { traceId: string; count: number };
  timestamps: { traceId: string };
}

interface Attack {
  id: string;
  expected: number;
  /**
   * Bodies over the limit: the server answers 413 and closes without reading the rest, so a client
   * still sending may get a reset (EPIPE / ECONNRESET) before it reads the 413. Counted, not failed.
   */
  resetTolerated?: boolean;
  send(): Promise<RawAnswer>;
  check?(answer: RawAnswer): string;
}

export const GIB = 1024 ** 3;
const MIB = 1024 ** 2;
const JSON_TYPE = { contentType: 'application/json' };
const GZIP = { 'content-encoding': 'gzip' };

/** Builds the attacks (bodies are made up front so building costs no attack time). */
export function buildAttacks(
  url: string,
  maxBodyBytes: number,
  bombWithLength: Buffer,
  attributeCount: number,
): { attacks: Attack[]; stored: StoredExpectations } {
  const pbStrings = badStringsProtobufRequest();
  const jsonStrings = badStringsJsonRequest();
  const many = manyAttributesRequest(attributeCount);
  const times = extremeTimestampsRequest();
  const over = maxBodyBytes + 4 * MIB;
  const attacks: Attack[] = [
    {
      id: 'gzip-bomb-1GiB-chunked',
      expected: 413,
      resetTolerated: true,
      send: () => postRaw(url, gzipBomb(GIB), { headers: GZIP }),
    },
    {
      id: 'gzip-bomb-1GiB-content-length',
      expected: 413,
      resetTolerated: true,
      send: () => postRaw(url, bombWithLength, { headers: GZIP }),
    },
    {
      id: 'over-limit-content-length',
      expected: 413,
      resetTolerated: true,
      // Refused on the header alone; the pause keeps the client from racing the server's close.
      send: () =>
        postRaw(url, zeros(over), {
          chunked: false,
          headers: { 'content-length': String(over) },
          pauseBeforeBodyMs: 100,
        }),
    },
    { id: 'over-limit-chunked', expected: 413, resetTolerated: true, send: () => postRaw(url, zeros(over)) },
    { id: 'nesting-10k-protobuf-array', expected: 400, send: () => postRaw(url, deepProtobufRequest(10_000, 'array')) },
    {
      id: 'nesting-10k-protobuf-kvlist',
      expected: 400,
      send: () => postRaw(url, deepProtobufRequest(10_000, 'kvlist')),
    },
    {
      id: 'nesting-10k-json-array',
      expected: 400,
      send: () => postRaw(url, Buffer.from(deepJsonRequest(10_000, 'array')), JSON_TYPE),
    },
    {
      id: 'nesting-10k-json-kvlist',
      expected: 400,
      send: () => postRaw(url, Buffer.from(deepJsonRequest(10_000, 'kvlist')), JSON_TYPE),
    },
    {
      id: 'bad-strings-protobuf',
      expected: 200,
      send: () => postRaw(url, pbStrings.body),
      check: (answer) => (partialSuccess(answer).rejected > 0 ? 'spans were rejected instead of sanitized' : ''),
    },
    {
      id: 'bad-strings-json',
      expected: 200,
      send: () => postRaw(url, Buffer.from(jsonStrings.body), JSON_TYPE),
      check: (answer) =>
        /rejectedSpans"?\s*:\s*"?[1-9]/.test(answer.body) ? 'spans were rejected instead of sanitized' : '',
    },
    {
      id: `attributes-${attributeCount}-on-one-span`,
      expected: 200,
      send: () => postRaw(url, many.body),
      check: (answer) => (partialSuccess(answer).rejected > 0 ? 'the span was rejected instead of capped' : ''),
    },
    {
      id: 'timestamps-0-and-2554',
      expected: 200,
      send: () => postRaw(url, times.body),
      check: (answer) => {
        const partial = partialSuccess(answer);
        return partial.rejected === 2 ? '' : `partial success rejected ${partial.rejected} spans, expected 2`;
      },
    },
  ];
  const hex = (id: Buffer): string => id.toString('hex');
  return {
    attacks,
    stored: {
      badStringsProtobuf: { traceId: hex(pbStrings.traceId), spans: pbStrings.spans },
      badStringsJson: { traceId: jsonStrings.traceId, spans: jsonStrings.spans },
      manyAttributes: { traceId: hex(many.traceId), count: attributeCount },
      timestamps: { traceId: hex(times.traceId) },
    },
  };
}

export async function runAttack(attack: Attack): Promise<AttackResult> {
  const answer = await attack.send();
  const reset = answer.status === 0 && /^(EPIPE|ECONNRESET)$/.test(answer.error ?? '');
  let problem =
    answer.status === attack.expected || (reset && attack.resetTolerated)
      ? ''
      : `answered ${answer.status}${answer.error ? ` (${answer.error})` : ''}`;
  if (problem === '' && !reset && attack.check) problem = attack.check(answer);
  return { id: attack.id, expected: attack.expected, status: answer.status, ms: answer.ms, problem, reset };
}

/** ExportTraceServiceResponse { partial_success = 1 { rejected_spans = 1; error_message = 2 } }. */
export function partialSuccess(answer: RawAnswer): { rejected: number; message: string } {
  const body = Buffer.from(answer.body, 'latin1');
  const result = { rejected: 0, message: '' };
  if (body.length < 2 || body[0] !== 0x0a) return result;
  let [length, at] = readVarint(body, 1);
  const end = Math.min(body.length, at + length);
  while (at < end) {
    const field = body[at++];
    if (field === 0x08) [result.rejected, at] = readVarint(body, at);
    else if (field === 0x12) {
      [length, at] = readVarint(body, at);
      result.message = body.subarray(at, at + length).toString('utf8');
      at += length;
    } else break;
  }
  return result;
}

function readVarint(body: Buffer, from: number): [number, number] {
  let value = 0;
  let at = from;
  for (let shift = 0; at < body.length && shift < 64; shift += 7) {
    const byte = body[at++];
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) break;
  }
  return [value, at];
}
