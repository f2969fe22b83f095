/** Small builders of SpanRow values for the storage tests (no protobuf involved). */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import type { SpanRow } from '../../../server/decode/types.js';

export const silentLog = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** 2030-01-15T10:00:00Z in unix nanoseconds: a day no other test file writes to by accident. */
export const BASE_NS = BigInt(Date.UTC(2030, 0, 15, 10)) * 1_000_000n;
export const NS_PER_MS = 1_000_000n;
export const NS_PER_DAY = 86_400_000n * NS_PER_MS;

export function traceId(): Buffer {
  const id = randomBytes(16);
  id[0] |= 1; // never all zero
  return id;
}

export function spanId(): Buffer {
  const id = randomBytes(8);
  id[0] |= 1;
  return id;
}

export function makeRow(overrides: Partial<SpanRow> = {}): SpanRow {
  const start = overrides.startTimeUnixNano ?? BASE_NS;
  return {
    traceId: traceId(),
    spanId: spanId(),
    parentSpanId: spanId(),
    traceState: '',
    flags: 1,
    name: 'GET /api/items',
    kind: 2,
    serviceName: 'checkout',
    startTimeUnixNano: start,
    endTimeUnixNano: start + 1_500_000n,
    statusCode: 0,
    statusMessage: '',
    attributes: '{"http.method":"GET","http.status_code":200}',
    sharedAttributes: '{}',
    resourceAttributes: '{"service.name":"checkout","host.name":"node-1"}',
    scopeName: '@opentelemetry/instrumentation-http',
    scopeVersion: '0.52.0',
    scopeAttributes: '{}',
    events: '[]',
    links: '[]',
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
    samplingWeight: 1,
    sizeBytes: 600,
    ...overrides,
  };
}

/** `count` spans of one trace: the first is the root, the others its children, 1 ms apart. */
export function makeTrace(count: number, overrides: Partial<SpanRow> = {}): SpanRow[] {
  const trace = traceId();
  const root = makeRow({ traceId: trace, parentSpanId: null, name: 'root', ...overrides });
  const rows = [root];
  for (let i = 1; i < count; i++) {
    rows.push(
      makeRow({
        traceId: trace,
        parentSpanId: root.spanId,
        name: `child-${i}`,
        ...overrides,
        startTimeUnixNano: root.startTimeUnixNano + BigInt(i) * NS_PER_MS,
        endTimeUnixNano: root.startTimeUnixNano + BigInt(i) * NS_PER_MS + 500_000n,
      }),
    );
  }
  return rows;
}

export function shuffle<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
