/**
 * tracehouse's own Prometheus metrics. The registry is injected (never the global one), so every
 * buildApp() in tests has its own. Names use base units and `_total`, as the OTel Collector and
 * Tempo do. Accounting identity, per tenant:
 *   spans_received_total = spans_accepted_total + spans_rejected_total + spans_refused_total
 *                          + spans_sampled_out_total
 * (sampled-out spans are neither stored nor rejected: the client is told 200, they were handled).
 * The span-derived metrics (traces_spanmetrics_*, traces_service_graph_*) are in span-metrics.ts.
 */
import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import { AUTH_FAILURE_REASONS } from '../auth/failures.js';
import { SANITIZE_KINDS } from '../decode/types.js';

/** Why spans of a well-formed request were not stored and the client should retry. */
export type RefuseReason = 'queue_full' | 'storage_unavailable' | 'shutting_down' | 'rate_limited';
export const REFUSE_REASONS: readonly RefuseReason[] = [
  'queue_full',
  'storage_unavailable',
  'shutting_down',
  'rate_limited',
];

/** What became of one WebSocket frame (docs/websocket-protocol.md). A closed list. */
export type WsFrameOutcome = 'committed' | 'rejected' | 'refused' | 'protocol_error' | 'too_large';
export const WS_FRAME_OUTCOMES: readonly WsFrameOutcome[] = [
  'committed',
  'rejected',
  'refused',
  'protocol_error',
  'too_large',
];

/** Rejects decided after decode (permanent, not retried). Joined with decode's RejectReason. */
export type StorageRejectReason = 'storage_rejected_data';

export interface Metrics {
  registry: Registry;
  spansReceived: Counter<'tenant' | 'transport'>;
  spansAccepted: Counter<'tenant' | 'transport'>;
  spansRejected: Counter<'tenant' | 'transport' | 'reason'>;
  spansRefused: Counter<'tenant' | 'transport' | 'reason'>;
  spansDuplicate: Counter<'tenant'>;
  spansSampledOut: Counter<'tenant' | 'transport'>;
  valuesSanitized: Counter<'kind'>;
  requestsRejected: Counter<'transport' | 'code'>;
  requestsRefused: Counter<'transport' | 'reason'>;
  queueSpans: Gauge;
  queueBytes: Gauge;
  queueCapacitySpans: Gauge;
  batchSpans: Histogram;
  flushDuration: Histogram<'outcome'>;
  storageErrors: Counter<'kind'>;
  storageWrites: Counter<'path'>;
  partitionsCreated: Counter;
  partitionsDropped: Counter;
  httpRequestDuration: Histogram<'method' | 'route' | 'status_code'>;
  wsConnections: Gauge;
  wsFrames: Counter<'outcome'>;
  wsCloses: Counter<'code'>;
  authFailures: Counter<'reason'>;
  rateLimitFallbacks: Counter;
  queryCacheHits: Counter<'kind'>;
  queryCacheMisses: Counter<'kind'>;
  queryCacheErrors: Counter<'kind'>;
  queryCacheFallbacks: Counter<'kind'>;
  queryCacheUpdatesDropped: Counter;
}

export function createMetrics(registry: Registry): Metrics {
  const registers = [registry];
  collectDefaultMetrics({ register: registry, prefix: 'tracehouse_' });
  const metrics: Metrics = {
    registry,
    spansReceived: new Counter({
      name: 'tracehouse_spans_received_total',
      help: 'Spans in well-formed export requests.',
      labelNames: ['tenant', 'transport'],
      registers,
    }),
    spansAccepted: new Counter({
      name: 'tracehouse_spans_accepted_total',
      help: 'Spans committed to PostgreSQL and acknowledged (duplicates included).',
      labelNames: ['tenant', 'transport'],
      registers,
    }),
    spansRejected: new Counter({
      name: 'tracehouse_spans_rejected_total',
      help: 'Spans permanently rejected (partial success or 400), by reason.',
      labelNames: ['tenant', 'transport', 'reason'],
      registers,
    }),
    spansRefused: new Counter({
      name: 'tracehouse_spans_refused_total',
      help: 'Spans refused with a retryable status (503/429), by reason.',
      labelNames: ['tenant', 'transport', 'reason'],
      registers,
    }),
    spansDuplicate: new Counter({
      name: 'tracehouse_spans_duplicate_total',
      help: 'Accepted spans that were already stored (client retries absorbed by the idempotency key).',
      labelNames: ['tenant'],
      registers,
    }),
    spansSampledOut: new Counter({
      name: 'tracehouse_spans_sampled_out_total',
      help: 'Spans dropped by server-side sampling (SAMPLING_RATE, SAMPLING_OVERRIDES); answered 200, not stored.',
      labelNames: ['tenant', 'transport'],
      registers,
    }),
    valuesSanitized: new Counter({
      name: 'tracehouse_values_sanitized_total',
      help: 'Values changed before storage (invalid UTF-8, NUL, truncation, dropped attributes…).',
      labelNames: ['kind'],
      registers,
    }),
    requestsRejected: new Counter({
      name: 'tracehouse_requests_rejected_total',
      help: 'Whole requests rejected before their spans could be counted, by error code.',
      labelNames: ['transport', 'code'],
      registers,
    }),
    requestsRefused: new Counter({
      name: 'tracehouse_requests_refused_total',
      help: 'Requests refused with 503 or 429 before their spans were decoded (overload, storage down, draining, rate limit).',
      labelNames: ['transport', 'reason'],
      registers,
    }),
    queueSpans: new Gauge({
      name: 'tracehouse_queue_spans',
      help: 'Spans admitted and not yet committed.',
      registers,
    }),
    queueBytes: new Gauge({
      name: 'tracehouse_queue_bytes',
      help: 'Row bytes admitted and not yet committed.',
      registers,
    }),
    queueCapacitySpans: new Gauge({
      name: 'tracehouse_queue_capacity_spans',
      help: 'The queue limit in spans.',
      registers,
    }),
    batchSpans: new Histogram({
      name: 'tracehouse_batch_spans',
      help: 'Spans per committed batch.',
      buckets: [1, 16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384],
      registers,
    }),
    flushDuration: new Histogram({
      name: 'tracehouse_batch_flush_duration_seconds',
      help: 'Time to write and commit one batch.',
      labelNames: ['outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    storageErrors: new Counter({
      name: 'tracehouse_storage_errors_total',
      help: 'Failed batch writes, by kind (retryable, data, other).',
      labelNames: ['kind'],
      registers,
    }),
    storageWrites: new Counter({
      name: 'tracehouse_storage_writes_total',
      help:
        'Committed batch writes, by path: copy (straight into spans) or staged (a span was already stored: ' +
        'deduplicated through the staging table).',
      labelNames: ['path'],
      registers,
    }),
    partitionsCreated: new Counter({
      name: 'tracehouse_partitions_created_total',
      help: 'Daily span partitions created by maintenance.',
      registers,
    }),
    partitionsDropped: new Counter({
      name: 'tracehouse_partitions_dropped_total',
      help: 'Daily span partitions dropped by retention.',
      registers,
    }),
    httpRequestDuration: new Histogram({
      name: 'tracehouse_http_request_duration_seconds',
      help: 'HTTP request latency, by route and status code (ingest includes the commit).',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    wsConnections: new Gauge({
      name: 'tracehouse_websocket_connections',
      help: 'Open WebSocket ingest connections.',
      registers,
    }),
    wsFrames: new Counter({
      name: 'tracehouse_websocket_frames_total',
      help: 'WebSocket frames by outcome (committed, rejected, refused, protocol_error, too_large).',
      labelNames: ['outcome'],
      registers,
    }),
    wsCloses: new Counter({
      name: 'tracehouse_websocket_closes_total',
      help: 'Closed WebSocket ingest connections, by close code (other: codes outside the documented list).',
      labelNames: ['code'],
      registers,
    }),
    authFailures: new Counter({
      name: 'tracehouse_auth_failures_total',
      help: 'Requests refused by authentication (401), authorization (403) or an unreachable JWKS (503), by reason.',
      labelNames: ['reason'],
      registers,
    }),
    rateLimitFallbacks: new Counter({
      name: 'tracehouse_rate_limit_fallback_total',
      help: 'Rate-limit decisions taken in-process on the local share because Redis was down or slow.',
      registers,
    }),
    queryCacheHits: new Counter({
      name: 'tracehouse_query_cache_hits_total',
      help: 'Query lookups answered by the cache, by kind (trace, trace_window, operations).',
      labelNames: ['kind'],
      registers,
    }),
    queryCacheMisses: new Counter({
      name: 'tracehouse_query_cache_misses_total',
      help: 'Query lookups the cache did not have, answered by PostgreSQL, by kind.',
      labelNames: ['kind'],
      registers,
    }),
    queryCacheErrors: new Counter({
      name: 'tracehouse_query_cache_errors_total',
      help: 'Failed query cache commands (lookup, store, or ingest update: kind="update"), by kind.',
      labelNames: ['kind'],
      registers,
    }),
    queryCacheFallbacks: new Counter({
      name: 'tracehouse_query_cache_fallbacks_total',
      help: 'Query lookups answered by PostgreSQL because the cache was down, slow or failed, by kind.',
      labelNames: ['kind'],
      registers,
    }),
    queryCacheUpdatesDropped: new Counter({
      name: 'tracehouse_query_cache_updates_dropped_total',
      help: 'Ingest updates of the query cache dropped (Redis down or too much pending work); the cache generation moves instead.',
      registers,
    }),
  };
  initLabels(metrics);
  return metrics;
}

/** Makes every closed-list series visible at 0, so rate() and alerts work before the first event. */
function initLabels(metrics: Metrics): void {
  for (const kind of SANITIZE_KINDS) metrics.valuesSanitized.inc({ kind }, 0);
  for (const kind of ['retryable', 'data', 'other']) metrics.storageErrors.inc({ kind }, 0);
  for (const path of ['copy', 'staged']) metrics.storageWrites.inc({ path }, 0);
  for (const outcome of WS_FRAME_OUTCOMES) metrics.wsFrames.inc({ outcome }, 0);
  for (const reason of AUTH_FAILURE_REASONS) metrics.authFailures.inc({ reason }, 0);
  for (const kind of ['trace', 'trace_window', 'operations']) {
    for (const counter of [metrics.queryCacheHits, metrics.queryCacheMisses, metrics.queryCacheFallbacks]) {
      counter.inc({ kind }, 0);
    }
  }
  for (const kind of ['trace', 'operations', 'update']) metrics.queryCacheErrors.inc({ kind }, 0);
}
