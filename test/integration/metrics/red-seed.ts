/**
 * Seeded traffic for the RED rollup and dashboard tests: two tenants, a frontend calling an api
 * that queries a database, over SEED_MINUTES minutes, with ~10 % errors, durations from 0.2 ms to
 * 40 s (every bucket, +Inf included) and sampling weights 1, 2, 4 and 10. Written through the real
 * span writer in several batches, some concurrently (different sessions, so different writer slots),
 * one of them replayed. Expected figures are computed here from the rows, independently of SQL.
 */
import type { SpanRow } from '../../../server/decode/types.js';
import { RED_BUCKET_BOUNDS_NS } from '../../../server/storage/red-sql.js';
import type { Storage } from '../../../server/storage/types.js';
import { createRng } from '../../helpers/otlp-fixtures.js';

export const SEED_MINUTES = 20;
const MINUTE_MS = 60_000;
const NS_PER_MS = 1_000_000n;

export interface SeedSpan {
  tenant: string;
  row: SpanRow;
}

export interface Seed {
  /** The first minute of the seeded traffic (ms, a whole minute). */
  startMs: number;
  /** One past the last minute. */
  endMs: number;
  spans: SeedSpan[];
}

const WEIGHTS = [1, 1, 1, 2, 4, 10];
const DURATIONS_MS = [0.2, 0.7, 1.8, 3, 7, 12, 30, 70, 180, 400, 900, 2000, 4000, 8000, 20_000, 40_000];

function hexId(rng: () => number, bytes: number): Buffer {
  const id = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) id[i] = Math.floor(rng() * 256);
  id[0] |= 1;
  return id;
}

function makeRow(fields: Partial<SpanRow> & Pick<SpanRow, 'traceId' | 'name' | 'kind' | 'serviceName'>): SpanRow {
  return {
    spanId: Buffer.alloc(8),
    parentSpanId: null,
    traceState: '',
    flags: 1,
    startTimeUnixNano: 0n,
    endTimeUnixNano: 0n,
    statusCode: 0,
    statusMessage: '',
    attributes: '{}',
    sharedAttributes: '{}',
    resourceAttributes: `{"service.name":${JSON.stringify(fields.serviceName)}}`,
    scopeName: 'seed',
    scopeVersion: '1',
    scopeAttributes: '{}',
    events: '[]',
    links: '[]',
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
    samplingWeight: 1,
    sizeBytes: 300,
    ...fields,
  };
}

/** Spans of `traces` traces of one tenant: frontend GET / → client GET /api → api GET /api → client SELECT. */
export function seedSpans(tenant: string, traces: number, startMs: number, seed: number): SeedSpan[] {
  const rng = createRng(seed);
  const out: SeedSpan[] = [];
  for (let t = 0; t < traces; t++) {
    const traceId = hexId(rng, 16);
    const weight = WEIGHTS[Math.floor(rng() * WEIGHTS.length)];
    const atMs = startMs + Math.floor(rng() * SEED_MINUTES * MINUTE_MS);
    const start = BigInt(atMs) * NS_PER_MS + BigInt(Math.floor(rng() * 1_000_000));
    const failed = rng() < 0.1;
    const duration = (i: number) => BigInt(Math.round(DURATIONS_MS[(t + i) % DURATIONS_MS.length] * 1e6));
    const ids = [0, 1, 2, 3].map(() => hexId(rng, 8));
    const spans: SpanRow[] = [
      makeRow({ traceId, spanId: ids[0], name: 'GET /', kind: 2, serviceName: 'frontend', statusCode: failed ? 2 : 1 }),
      makeRow({
        traceId,
        spanId: ids[1],
        parentSpanId: ids[0],
        name: 'GET /api',
        kind: 3,
        serviceName: 'frontend',
        statusCode: failed ? 2 : 0,
      }),
      makeRow({
        traceId,
        spanId: ids[2],
        parentSpanId: ids[1],
        name: 'GET /api',
        kind: 2,
        serviceName: 'api',
        statusCode: failed ? 2 : 0,
      }),
      makeRow({
        traceId,
        spanId: ids[3],
        parentSpanId: ids[2],
        name: t % 3 === 0 ? 'INSERT orders' : 'SELECT orders',
        kind: 3,
        serviceName: 'api',
      }),
    ];
    spans.forEach((row, i) => {
      row.startTimeUnixNano = start + BigInt(i) * 1000n;
      row.endTimeUnixNano = row.startTimeUnixNano + duration(i);
      row.samplingWeight = weight;
      row.traceState = weight === 2 ? 'ot=th:8' : '';
      out.push({ tenant, row });
    });
  }
  return out;
}

/** Writes the seed through the span writer: in batches, four at a time, and one batch twice. */
export async function writeSeed(storage: Storage, nowMs: number): Promise<Seed> {
  const startMs = Math.floor(nowMs / MINUTE_MS) * MINUTE_MS - (SEED_MINUTES + 5) * MINUTE_MS;
  const spans = [...seedSpans('acme', 400, startMs, 0xacce), ...seedSpans('globex', 50, startMs, 0x910b)];
  const batches: { tenant: string; rows: SpanRow[] }[] = [];
  for (let i = 0; i < spans.length; i += 100) {
    const chunk = spans.slice(i, i + 100);
    for (const tenant of new Set(chunk.map((s) => s.tenant))) {
      batches.push({ tenant, rows: chunk.filter((s) => s.tenant === tenant).map((s) => s.row) });
    }
  }
  for (let i = 0; i < batches.length; i += 4) {
    await Promise.all(batches.slice(i, i + 4).map((batch) => storage.writer.write([batch])));
  }
  const replay = await storage.writer.write([batches[1]]);
  if (replay.inserted !== 0) throw new Error('a replayed batch inserted rows');
  return { startMs, endMs: startMs + SEED_MINUTES * MINUTE_MS, spans };
}

export interface RedExpectation {
  spans: number;
  calls: number;
  durationSumMs: number;
  durationMaxMs: number;
  buckets: number[]; // cumulative, +Inf last
}

export const minuteOf = (row: SpanRow): number =>
  Math.floor(Number(row.startTimeUnixNano / NS_PER_MS) / MINUTE_MS) * MINUTE_MS;
export const durationNs = (row: SpanRow): number => Number(row.endTimeUnixNano - row.startTimeUnixNano);

/** The expected red_minute content per tenant|minute|service|name|kind|status, from the rows. */
export function expectedRed(spans: SeedSpan[]): Map<string, RedExpectation> {
  const out = new Map<string, RedExpectation>();
  for (const { tenant, row } of spans) {
    const key = [tenant, minuteOf(row), row.serviceName, row.name, row.kind, row.statusCode].join('|');
    let e = out.get(key);
    if (!e) {
      e = {
        spans: 0,
        calls: 0,
        durationSumMs: 0,
        durationMaxMs: 0,
        buckets: new Array(RED_BUCKET_BOUNDS_NS.length + 1).fill(0),
      };
      out.set(key, e);
    }
    const ns = durationNs(row);
    e.spans += 1;
    e.calls += row.samplingWeight;
    e.durationSumMs += (row.samplingWeight * ns) / 1e6;
    e.durationMaxMs = Math.max(e.durationMaxMs, ns / 1e6);
    RED_BUCKET_BOUNDS_NS.forEach((bound, i) => {
      if (ns <= bound) e!.buckets[i] += row.samplingWeight;
    });
    e.buckets[RED_BUCKET_BOUNDS_NS.length] += row.samplingWeight;
  }
  return out;
}

/** Prometheus-style quantile of cumulative buckets (bounds in ms), as tracehouse_histogram_quantile. */
export function quantileMs(q: number, buckets: number[]): number | null {
  const bounds = RED_BUCKET_BOUNDS_NS.map((ns) => ns / 1e6);
  const total = buckets[buckets.length - 1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (let i = 0; i < bounds.length; i++) {
    if (buckets[i] >= rank) {
      if (buckets[i] === below) return bounds[i];
      return lower + ((bounds[i] - lower) * (rank - below)) / (buckets[i] - below);
    }
    lower = bounds[i];
    below = buckets[i];
  }
  return bounds[bounds.length - 1];
}

export function addBuckets(a: number[], b: number[]): number[] {
  return a.map((x, i) => x + b[i]);
}
