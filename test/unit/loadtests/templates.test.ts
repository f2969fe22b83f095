import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../server/config.js';
import { decodeExportRequest } from '../../../server/decode/index.js';
import { SPAN_MARK, TRACE_MARK, requestIds, traceIdHex } from '../../../loadtests/load/ids.js';
import { buildTemplates, SPANS_PER_REQUEST, SPANS_PER_TRACE } from '../../../loadtests/load/templates.js';
import { REQUEST_TIME_STEP_NS, requestShiftNs } from '../../../loadtests/load/times.js';

const TAG = 0x1234abcd;
const [template] = buildTemplates(1);
const now = Date.now();
const options = {
  limits: DEFAULTS.decode,
  window: {
    minStartUnixNano: BigInt(now - 86_400_000) * 1_000_000n,
    maxStartUnixNano: BigInt(now + 3_600_000) * 1_000_000n,
  },
};

const keysOf = (body: Buffer, format: 'protobuf' | 'json'): string[] =>
  decodeExportRequest(body, format, options).rows.map(
    (r) => `${r.traceId.toString('hex')}:${r.spanId.toString('hex')}`,
  );

describe('load test request templates', () => {
  it('patches every id of a protobuf body so that span i of request r decodes with the ids of (r, i)', () => {
    const decoded = decodeExportRequest(template.protobuf.patched(TAG, 77), 'protobuf', options);
    expect(decoded.rows).toHaveLength(SPANS_PER_REQUEST);
    expect(decoded.spanCount).toBe(SPANS_PER_REQUEST);
    const ids = requestIds(TAG, 77, SPANS_PER_REQUEST / SPANS_PER_TRACE, SPANS_PER_REQUEST);
    const byId = new Map(decoded.rows.map((row) => [row.spanId.toString('hex'), row]));
    for (let i = 0; i < SPANS_PER_REQUEST; i++) {
      const row = byId.get(ids.spanHex.slice(i * 16, i * 16 + 16))!;
      const t = Math.floor(i / SPANS_PER_TRACE);
      expect(row.traceId.toString('hex')).toBe(traceIdHex(TAG, 77, t));
      expect(row.traceId.readUInt32BE(4)).toBe(77);
      expect(row.traceId.readUInt16BE(14)).toBe(TRACE_MARK);
      expect(row.spanId.readUInt16BE(6)).toBe(SPAN_MARK);
      // Children point at their own trace's root in the same request.
      const rootHex = ids.spanHex.slice(t * SPANS_PER_TRACE * 16, t * SPANS_PER_TRACE * 16 + 16);
      expect(row.parentSpanId?.toString('hex') ?? null).toBe(i % SPANS_PER_TRACE === 0 ? null : rootHex);
    }
  });

  it('gives OTLP/JSON bodies the same keys as protobuf bodies of the same request number', () => {
    const json = keysOf(template.json.patched(TAG, 5), 'json');
    expect(json).toHaveLength(SPANS_PER_REQUEST);
    expect(new Set(json)).toEqual(new Set(keysOf(template.protobuf.patched(TAG, 5), 'protobuf')));
  });

  it('never repeats a key across requests, run tags, or within a request', () => {
    const keys = [
      ...keysOf(template.protobuf.patched(TAG, 1), 'protobuf'),
      ...keysOf(template.protobuf.patched(TAG, 2), 'protobuf'),
      ...keysOf(template.protobuf.patched(TAG + 1, 1), 'protobuf'),
    ];
    expect(new Set(keys).size).toBe(3 * SPANS_PER_REQUEST);
  });

  it('changes only id and time bytes: the body keeps its length and everything else', () => {
    const patched = template.protobuf.patched(TAG, 9);
    expect(patched.length).toBe(template.protobuf.body.length);
    let differing = 0;
    for (let k = 0; k < patched.length; k++) if (patched[k] !== template.protobuf.body[k]) differing++;
    // 512 span ids + 512 trace ids + 480 parent ids, and a start, an end and event times of 8 bytes each, at most.
    const events = template.spans.reduce((n, s) => n + (s.events?.length ?? 0), 0);
    expect(differing).toBeLessThanOrEqual(512 * 8 + 512 * 16 + 480 * 8 + (2 * 512 + events) * 8);
    expect(differing).toBeGreaterThan(512 * 8);
  });

  it('moves every time of request r by r × the step, in protobuf and OTLP/JSON alike, keeping durations', () => {
    const shift = requestShiftNs(41);
    expect(shift).toBe(41n * REQUEST_TIME_STEP_NS);
    for (const format of ['protobuf', 'json'] as const) {
      const rows = decodeExportRequest(template[format].patched(TAG, 41), format, options).rows;
      const ids = requestIds(TAG, 41, SPANS_PER_REQUEST / SPANS_PER_TRACE, SPANS_PER_REQUEST);
      const index = new Map(rows.map((row) => [row.spanId.toString('hex'), row]));
      template.spans.forEach((span, i) => {
        const row = index.get(ids.spanHex.slice(i * 16, i * 16 + 16))!;
        expect(row.startTimeUnixNano).toBe(span.startTimeUnixNano + shift);
        expect(row.endTimeUnixNano).toBe(span.endTimeUnixNano + shift);
        const events = JSON.parse(row.events) as Array<{ timeUnixNano: string }>;
        expect(events.map((e) => BigInt(e.timeUnixNano))).toEqual(
          (span.events ?? []).map((e) => e.timeUnixNano + shift),
        );
      });
    }
  });

  it('never repeats a start time (to the microsecond) between requests of one template', () => {
    const startsOf = (r: number): number[] =>
      decodeExportRequest(template.protobuf.patched(TAG, r), 'protobuf', options).rows.map((row) =>
        Number(row.startTimeUnixNano / 1000n),
      );
    const starts = [...startsOf(1), ...startsOf(2), ...startsOf(3)];
    expect(new Set(starts).size).toBe(starts.length);
  });

  it('builds spans like real traffic: 10 attributes, a resource of 8, an event on some spans', () => {
    const { spans } = template;
    expect(spans.every((s) => Object.keys(s.attributes ?? {}).length === 10)).toBe(true);
    expect(Object.keys(spans[0].resource!.attributes)).toHaveLength(8);
    const withEvent = spans.filter((s) => (s.events ?? []).length > 0).length;
    expect(withEvent).toBeGreaterThan(SPANS_PER_REQUEST * 0.15);
    expect(withEvent).toBeLessThan(SPANS_PER_REQUEST * 0.5);
  });
});
