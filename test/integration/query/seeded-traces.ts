/**
 * A seeded data set for the search tests: 48 three-span traces over the last 3.5 days (so over
 * four or five UTC day partitions), ingested through POST /v1/traces, and an oracle that says which
 * traces a search must return, in which order, from the same description.
 *
 * Each trace: a root server span in service A (http.route, http.response.status_code; status error
 * when the code is 500), a client child in A calling B, and a server child in B (db.system).
 */
import type { FastifyInstance } from 'fastify';
import { createRng, type FixtureResource, type FixtureSpan } from '../../helpers/otlp-fixtures.js';
import { ingest, NS_PER_MS } from './query-fixtures.js';

export interface SeedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  service: string;
  name: string;
  kind: number;
  startNs: bigint;
  durationNs: bigint;
  attributes: Record<string, string | number>;
  status: 0 | 1 | 2;
}

export const SERVICES = ['frontend', 'orders', 'payments'] as const;
const OPERATIONS: Record<string, string[]> = {
  frontend: ['GET /home', 'GET /cart', 'POST /checkout'],
  orders: ['list orders', 'create order'],
  payments: ['charge card', 'refund'],
};
const ROUTES = ['/home', '/cart', '/checkout'];
const DB = ['postgresql', 'redis'];

const hex = (rng: () => number, bytes: number): string =>
  Array.from({ length: bytes }, () =>
    Math.floor(rng() * 256)
      .toString(16)
      .padStart(2, '0'),
  ).join('');

/** The traces, newest first in generation order not guaranteed; times relative to `nowMs`. */
export function seedTraces(nowMs: number, count = 48): SeedSpan[][] {
  const rng = createRng(20_260_101);
  const traces: SeedSpan[][] = [];
  const spanMs = (3.5 * 86_400_000) / count;
  for (let i = 0; i < count; i++) {
    const a = SERVICES[i % 3];
    const b = SERVICES[(i + 1 + (i % 2)) % 3];
    // Spread over 3.5 days, at least two minutes from now, each trace at its own instant.
    const startMs = nowMs - 120_000 - Math.floor(i * spanMs) - Math.floor(rng() * 1000);
    const startNs = BigInt(startMs) * NS_PER_MS + BigInt(i);
    const traceId = hex(rng, 16);
    const rootId = hex(rng, 8);
    const statusCode = i % 5 === 0 ? 500 : 200;
    const rootDurationMs = BigInt(20 + ((i * 37) % 400));
    const root: SeedSpan = {
      traceId,
      spanId: rootId,
      service: a,
      name: OPERATIONS[a][i % OPERATIONS[a].length],
      kind: 2,
      startNs,
      durationNs: rootDurationMs * NS_PER_MS,
      attributes: { 'http.route': ROUTES[i % 3], 'http.response.status_code': statusCode },
      status: statusCode === 500 ? 2 : 0,
    };
    const client: SeedSpan = {
      traceId,
      spanId: hex(rng, 8),
      parentSpanId: rootId,
      service: a,
      name: `call ${b}`,
      kind: 3,
      startNs: startNs + 2n * NS_PER_MS,
      durationNs: (rootDurationMs / 2n) * NS_PER_MS,
      attributes: { 'peer.service': b },
      status: 0,
    };
    const server: SeedSpan = {
      traceId,
      spanId: hex(rng, 8),
      parentSpanId: client.spanId,
      service: b,
      name: OPERATIONS[b][i % OPERATIONS[b].length],
      kind: 2,
      startNs: startNs + 3n * NS_PER_MS,
      durationNs: (rootDurationMs / 3n) * NS_PER_MS,
      attributes: { 'db.system': DB[i % 2] },
      status: 0,
    };
    traces.push([root, client, server]);
  }
  return traces;
}

const resources = new Map<string, FixtureResource>();
function resourceOf(service: string): FixtureResource {
  let resource = resources.get(service);
  if (resource === undefined) {
    resource = { attributes: { 'service.name': service, 'deployment.environment': 'test' } };
    resources.set(service, resource);
  }
  return resource;
}

export function toFixtureSpan(span: SeedSpan): FixtureSpan {
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    parentSpanId: span.parentSpanId,
    name: span.name,
    kind: span.kind,
    startTimeUnixNano: span.startNs,
    endTimeUnixNano: span.startNs + span.durationNs,
    attributes: span.attributes,
    status: span.status === 2 ? { code: 2, message: 'failed' } : { code: 0 },
    resource: resourceOf(span.service),
  };
}

export async function ingestSeed(app: FastifyInstance, traces: SeedSpan[][]): Promise<void> {
  const spans = traces.flat().map(toFixtureSpan);
  for (let i = 0; i < spans.length; i += 50) await ingest(app, spans.slice(i, i + 50));
}

/**
 * The oracle: trace ids with a span that starts in [fromNs, toNs] and passes `match`, ordered by
 * the start of their latest such span, newest first, at most `limit`.
 */
export function expectedTraces(
  traces: SeedSpan[][],
  options: {
    fromNs: bigint;
    toNs: bigint;
    match: (span: SeedSpan) => boolean;
    trace?: (spans: SeedSpan[]) => boolean;
    limit?: number;
  },
): string[] {
  const hits: Array<{ traceId: string; last: bigint }> = [];
  for (const spans of traces) {
    if (options.trace && !options.trace(spans)) continue;
    let last: bigint | undefined;
    for (const span of spans) {
      const startUs = span.startNs / 1000n;
      if (startUs < options.fromNs / 1000n || startUs > options.toNs / 1000n || !options.match(span)) continue;
      if (last === undefined || startUs > last) last = startUs;
    }
    if (last !== undefined) hits.push({ traceId: spans[0].traceId, last });
  }
  hits.sort((x, y) => (x.last === y.last ? x.traceId.localeCompare(y.traceId) : x.last > y.last ? -1 : 1));
  return hits.slice(0, options.limit ?? 1000).map((h) => h.traceId);
}

export function traceDurationNs(spans: SeedSpan[]): bigint {
  const first = spans.reduce((m, s) => (s.startNs < m ? s.startNs : m), spans[0].startNs);
  const last = spans.reduce((m, s) => (s.startNs + s.durationNs > m ? s.startNs + s.durationNs : m), 0n);
  return last - first;
}
