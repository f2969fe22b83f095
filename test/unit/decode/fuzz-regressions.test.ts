/**
 * Replays what the fault suite's fuzzers save (loadtests/faults/fuzz/: decoder-fuzz.ts and
 * ws-fuzz.ts write every input that crashed, hung or broke the decode contract to
 * test/unit/decode/fixtures/fuzz/), and runs a seeded sample of the same generated inputs, through
 * the decode oracle: a consistent result or a documented 400 code, within a bounded time.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFrame } from '../../../server/receive/ws-envelope.js';
import { FIXTURE_DIR } from '../../../loadtests/faults/fuzz/decoder-fuzz.js';
import { buildCorpus, FUZZ_DECODE_OPTIONS, makeInput } from '../../../loadtests/faults/fuzz/inputs.js';
import { encodeRequest } from '../../../loadtests/faults/fuzz/otlp-wire.js';
import { decodeExportRequest } from '../../../server/decode/index.js';
import { decodeAndCheck, type OracleVerdict } from '../../helpers/decode-oracle.js';

const MAX_MS_PER_INPUT = 2000;

function timedCheck(body: Buffer, format: 'protobuf' | 'json'): { verdict: OracleVerdict; ms: number } {
  const started = performance.now();
  const verdict = decodeAndCheck(body, format, FUZZ_DECODE_OPTIONS);
  return { verdict, ms: performance.now() - started };
}

describe('saved fuzz findings', () => {
  const files = existsSync(FIXTURE_DIR) ? readdirSync(FIXTURE_DIR) : [];

  const replay = (file: string): void => {
    const data = readFileSync(path.join(FIXTURE_DIR, file));
    const bodies: Array<{ body: Buffer; format: 'protobuf' | 'json' }> = [];
    if (file.endsWith('.frame')) {
      for (const isBinary of [true, false]) {
        const frame = parseFrame(data, isBinary);
        if (frame.ok) bodies.push({ body: frame.body, format: frame.format });
      }
    } else {
      bodies.push({ body: data, format: file.endsWith('.json') ? 'json' : 'protobuf' });
    }
    for (const { body, format } of bodies) {
      const { verdict, ms } = timedCheck(body, format);
      expect(verdict.kind === 'violation' ? verdict.problem : 'ok').toBe('ok');
      expect(ms).toBeLessThan(MAX_MS_PER_INPUT);
    }
  };
  it('has saved findings to replay (the fuzzers found two; they stay as regressions)', () => {
    expect(files.length).toBeGreaterThan(0);
  });
  it.each(files)('decodes %s within the contract', replay);
});

describe('a seeded sample of the fuzz inputs', () => {
  const corpus = buildCorpus();

  for (const format of ['protobuf', 'json'] as const) {
    it(`decodes 1500 generated and mutated ${format} inputs to rows or a documented 400, never anything else`, () => {
      const outcomes: Record<string, number> = {};
      for (let index = 0; index < 1500; index++) {
        const { body, kind } = makeInput(format, corpus, 42, index);
        const { verdict, ms } = timedCheck(body, format);
        if (verdict.kind === 'violation') throw new Error(`input ${index} (${kind}): ${verdict.problem}`);
        expect(ms).toBeLessThan(MAX_MS_PER_INPUT);
        outcomes[verdict.kind] = (outcomes[verdict.kind] ?? 0) + 1;
      }
      expect(outcomes.ok).toBeGreaterThan(100);
      expect(outcomes.error).toBeGreaterThan(100);
    });
  }
});

describe('the end-time overflow the WebSocket fuzzer found', () => {
  it('rejects a span ending past 2^63 - 1 ns with end_time_too_new and stores the others', () => {
    const start = FUZZ_DECODE_OPTIONS.window.maxStartUnixNano - 1_000_000n;
    const span = (id: number, end: bigint) => ({
      traceId: Buffer.alloc(16, 1),
      spanId: Buffer.alloc(8, id),
      name: `span-${id}`,
      startTimeUnixNano: start,
      endTimeUnixNano: end,
    });
    const body = encodeRequest([{ spans: [span(1, 2n ** 63n), span(2, 2n ** 64n - 1n), span(3, 2n ** 63n - 1n)] }]);
    const decoded = decodeExportRequest(body, 'protobuf', FUZZ_DECODE_OPTIONS);
    expect(decoded.rejected).toEqual({ end_time_too_new: 2 });
    expect(decoded.rows.map((row) => row.name)).toEqual(['span-3']);
    expect(decoded.rejectMessage).toBe('2 spans rejected: 2 end_time_too_new');
  });

  it('does the same for OTLP/JSON, where int64 strings are parsed exactly', () => {
    const start = FUZZ_DECODE_OPTIONS.window.maxStartUnixNano - 1_000_000n;
    const span = (id: string, end: string) =>
      `{"traceId":"${'01'.repeat(16)}","spanId":"${id.repeat(8)}","name":"s","startTimeUnixNano":"${start}","endTimeUnixNano":"${end}"}`;
    const body = `{"resourceSpans":[{"scopeSpans":[{"spans":[${span('0a', '9223372036854775808')},${span('0b', String(start + 1n))}]}]}]}`;
    const decoded = decodeExportRequest(Buffer.from(body), 'json', FUZZ_DECODE_OPTIONS);
    expect(decoded.rejected).toEqual({ end_time_too_new: 1 });
    expect(decoded.rows).toHaveLength(1);
  });
});
