/**
 * Query traffic next to ingest: a second autocannon instance on the read API, rotating over
 *   trace by id   GET /api/traces/{id}  (Jaeger v1) for a trace of an acknowledged request
 *   Jaeger search GET /api/traces?service=…&tags={"http.route":"/api/cart"}&minDuration=100ms&limit=20
 *   Tempo search  GET /api/search?q={resource.service.name="…" && span.http.route="/api/cart"}&limit=20
 * Each kind gets its own latency list and status counts. A trace by id that answers 404 although
 * its request was acknowledged is counted: acknowledged data must be readable.
 */
import autocannon from 'autocannon';
import { traceIdHex } from './ids.js';
import type { Ledger } from './ledger.js';
import { SPANS_PER_REQUEST, SPANS_PER_TRACE, TEMPLATE_SERVICES } from './templates.js';

export type QueryKind = 'trace-by-id' | 'jaeger-search' | 'tempo-search';
export const QUERY_KINDS: QueryKind[] = ['trace-by-id', 'jaeger-search', 'tempo-search'];

export interface QueryStats {
  latencies: number[]; // ms, sorted at the end
  statuses: Record<number, number>;
}

export interface QueryLoadResult {
  byKind: Record<QueryKind, QueryStats>;
  /** Trace-by-id answers 404 for a trace whose request had been acknowledged. */
  acknowledgedNotFound: number;
}

export interface QueryLoadOptions {
  url: string;
  connections: number;
  requestsPerS: number;
  seconds: number;
}

const ROTATION: QueryKind[] = ['trace-by-id', 'jaeger-search', 'trace-by-id', 'tempo-search'];

function searchPath(kind: QueryKind, n: number): string {
  const service = TEMPLATE_SERVICES[n % TEMPLATE_SERVICES.length];
  if (kind === 'jaeger-search') {
    const tags = encodeURIComponent(JSON.stringify({ 'http.route': '/api/cart' }));
    return `/api/traces?service=${service}&tags=${tags}&minDuration=100ms&limit=20`;
  }
  const q = encodeURIComponent(`{resource.service.name="${service}" && span.http.route="/api/cart"}`);
  return `/api/search?q=${q}&limit=20`;
}

/** A random acknowledged request (up to 20 tries); undefined while none is. */
function acknowledgedRequest(ledger: Ledger): number | undefined {
  for (let i = 0; i < 20 && ledger.taken > 0; i++) {
    const r = 1 + Math.floor(Math.random() * ledger.taken);
    if (ledger.isAcknowledged(r)) return r;
  }
  return undefined;
}

export async function runQueryLoad(ledger: Ledger, options: QueryLoadOptions): Promise<QueryLoadResult> {
  const byKind = Object.fromEntries(
    QUERY_KINDS.map((k): [QueryKind, QueryStats] => [k, { latencies: [], statuses: {} }]),
  ) as Record<QueryKind, QueryStats>;
  let acknowledgedNotFound = 0;
  let n = 0;
  await new Promise<void>((resolve, reject) => {
    autocannon(
      {
        url: options.url,
        connections: options.connections,
        overallRate: options.requestsPerS,
        duration: options.seconds,
        timeout: 30,
        requests: [
          {
            method: 'GET',
            setupRequest(req, context) {
              let kind = ROTATION[n++ % ROTATION.length];
              let path: string;
              const r = kind === 'trace-by-id' ? acknowledgedRequest(ledger) : undefined;
              if (r !== undefined) {
                const t = Math.floor(Math.random() * (SPANS_PER_REQUEST / SPANS_PER_TRACE));
                path = `/api/traces/${traceIdHex(ledger.tag, r, t)}`;
              } else {
                if (kind === 'trace-by-id') kind = 'jaeger-search';
                path = searchPath(kind, n);
              }
              context.kind = kind;
              context.sentAt = performance.now();
              return { ...req, path };
            },
            onResponse(status, _body, context) {
              const stats = byKind[context.kind as QueryKind];
              stats.latencies.push(performance.now() - (context.sentAt as number));
              stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
              if (context.kind === 'trace-by-id' && status === 404) acknowledgedNotFound++;
            },
          },
        ],
      },
      (err) => (err ? reject(err) : resolve()),
    );
  });
  for (const stats of Object.values(byKind)) stats.latencies.sort((a, b) => a - b);
  return { byKind, acknowledgedNotFound };
}
