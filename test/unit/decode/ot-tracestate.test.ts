import { describe, expect, it } from 'vitest';
import {
  adjustedCountForThreshold,
  parseOtTraceState,
  sdkSamplingWeight,
} from '../../../server/decode/ot-tracestate.js';
import { decodeExportRequest } from '../../../server/decode/index.js';
import { buildRequest } from '../../helpers/otlp-fixtures.js';

const LIMITS = {
  maxAnyValueDepth: 32,
  maxAttributeValueBytes: 4096,
  maxAttributesPerSpan: 128,
  maxEventsPerSpan: 128,
  maxLinksPerSpan: 128,
};

describe('tracestate ot=th: (OpenTelemetry consistent probability sampling)', () => {
  it('reads th as 56 bits padded with trailing zeros, and rv as 14 hex digits', () => {
    expect(parseOtTraceState('ot=th:8')).toEqual({ threshold: 0x80000000000000n });
    expect(parseOtTraceState('ot=th:c')).toEqual({ threshold: 0xc0000000000000n });
    expect(parseOtTraceState('ot=th:0')).toEqual({ threshold: 0n });
    expect(parseOtTraceState('vendor=x, ot=rv:0123456789abcd;th:fd70a4')).toEqual({
      randomness: 0x0123456789abcdn,
      threshold: 0xfd70a400000000n,
    });
  });

  it('turns a threshold into an adjusted count 2^56 / (2^56 − T)', () => {
    expect(sdkSamplingWeight('ot=th:0')).toBe(1); // 100 %
    expect(sdkSamplingWeight('ot=th:8')).toBe(2); // 50 %
    expect(sdkSamplingWeight('ot=th:c')).toBe(4); // 25 %
    expect(sdkSamplingWeight('congo=t61rcWkgMzE,ot=th:e')).toBe(8); // 12.5 %, another vendor first
    expect(sdkSamplingWeight('ot=th:fd70a4')).toBeCloseTo(100, 2); // the specification's 1 % example
    expect(adjustedCountForThreshold(2n ** 56n - 1n)).toBe(2 ** 56);
  });

  it('ignores absent or invalid values (weight 1), as the specification asks', () => {
    for (const state of [
      '',
      'rojo=00f067aa0ba902b7',
      'ot=th:',
      'ot=th:G',
      'ot=th:123456789abcdef',
      'ot=th:8X',
      'ot=p:8',
      'xot=th:8',
      'ot=TH:8',
    ]) {
      expect(sdkSamplingWeight(state), state).toBe(1);
    }
    expect(parseOtTraceState('ot=rv:123')).toEqual({}); // rv needs exactly 14 digits
  });

  it('stores the weight on every decoded span of both encodings', () => {
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const spans = [
      { traceState: 'ot=th:c', spanId: '00000000000000a1' },
      { traceState: 'vendor=1', spanId: '00000000000000a2' },
      { traceState: undefined, spanId: '00000000000000a3' },
    ].map((s) => ({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: s.spanId,
      traceState: s.traceState,
      name: 'op',
      startTimeUnixNano: nowNs,
      endTimeUnixNano: nowNs + 1000n,
    }));
    const { protobuf, json } = buildRequest({ spans });
    const window = { minStartUnixNano: nowNs - 10n ** 12n, maxStartUnixNano: nowNs + 10n ** 12n };
    for (const [body, format] of [
      [protobuf, 'protobuf'],
      [Buffer.from(json), 'json'],
    ] as const) {
      const { rows } = decodeExportRequest(body, format, { limits: LIMITS, window });
      expect(rows.map((r) => r.samplingWeight)).toEqual([4, 1, 1]);
    }
  });
});
