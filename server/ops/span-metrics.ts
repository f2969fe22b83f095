/**
 * Span-derived metrics on /metrics, under the names Grafana's Tempo service graph and APM table
 * query (as Tempo's metrics-generator writes them), computed from the spans of each request once
 * they are committed (receive/ingest.ts calls record()):
 *
 *   traces_spanmetrics_calls_total{tenant, service, span_name, span_kind, status_code}
 *   traces_spanmetrics_latency_{bucket,sum,count}{…same, le}             seconds
 *   traces_service_graph_request_total{tenant, client, server, connection_type}
 *   traces_service_graph_request_failed_total{…same}
 *   traces_service_graph_request_{server,client}_seconds_{bucket,sum,count}{…same, le}
 *   traces_service_graph_unpaired_spans_total{side}, traces_service_graph_dropped_spans_total
 *
 * Weighted: every counter and every histogram bucket, _count and _sum add the span's sampling
 * weight (capped-series.ts), so rates show true traffic under sampling. They count what was
 * acknowledged: a client's retry of a span already stored counts again, as in Tempo (how often:
 * tracehouse_spans_duplicate_total). PostgreSQL's red_minute counts each stored span exactly once.
 *
 * Service graph: a client (or producer) span and the server (or consumer) span whose parent it is
 * form one request from the client's service to the server's. The two halves usually arrive in
 * different requests, often at different instances: each half waits here for its other half for
 * serviceGraphWaitMs (at most serviceGraphMaxPending spans wait; more are dropped and counted). An
 * edge whose halves reach different instances is never paired (counted as unpaired when it expires):
 * behind a load balancer the Prometheus service graph undercounts, the SQL view service_graph_edges
 * does not (it joins stored spans).
 *
 * State: the capped series, and the bounded map of spans waiting for their other half, expired
 * oldest first (insertion order = expiry order, the wait being constant) whenever spans arrive.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { SpanMetricsConfig } from '../config.js';
import type { SpanRow } from '../decode/types.js';
import { ExpiryWalk } from '../expiry-walk.js';
import { RED_BUCKET_BOUNDS_NS } from '../storage/red-sql.js';
import { CappedSeries } from './capped-series.js';

export const OVERFLOW = '__overflow__';

/** Tempo's label values for OTLP SpanKind and StatusCode. */
export const SPAN_KIND_NAMES = [
  'SPAN_KIND_UNSPECIFIED',
  'SPAN_KIND_INTERNAL',
  'SPAN_KIND_SERVER',
  'SPAN_KIND_CLIENT',
  'SPAN_KIND_PRODUCER',
  'SPAN_KIND_CONSUMER',
] as const;
export const STATUS_CODE_NAMES = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'] as const;

/** Latency buckets in seconds: the same bounds as PostgreSQL's red_minute.duration_buckets. */
export const LATENCY_BUCKETS_S: readonly number[] = RED_BUCKET_BOUNDS_NS.map((ns) => ns / 1e9);

const KIND_SERVER = 2;
const KIND_CLIENT = 3;
const KIND_PRODUCER = 4;
const KIND_CONSUMER = 5;
const STATUS_ERROR = 2;

interface Half {
  client: boolean; // client/producer half, else server/consumer
  messaging: boolean;
  service: string;
  seconds: number;
  weight: number;
  failed: boolean;
  expiresAt: number;
}

export class SpanMetrics {
  readonly #config: SpanMetricsConfig;
  readonly #now: () => number;
  readonly #spans: CappedSeries;
  readonly #edges: CappedSeries;
  readonly #pending = new Map<string, Half>();
  readonly #pendingExpiry = new ExpiryWalk(this.#pending, (half: Half) => half.expiresAt);
  readonly #unpaired: Counter<'side'>;
  readonly #dropped: Counter;
  readonly #overflow: Counter<'family'>;

  constructor(registry: Registry, config: SpanMetricsConfig, now: () => number = Date.now) {
    this.#config = config;
    this.#now = now;
    const registers = [registry];
    this.#spans = new CappedSeries({
      registry,
      labelNames: ['tenant', 'service', 'span_name', 'span_kind', 'status_code'],
      families: [
        {
          kind: 'counter',
          name: 'traces_spanmetrics_calls_total',
          help: 'Spans committed, weighted by sampling, by service, span name, kind and status.',
        },
        {
          kind: 'histogram',
          name: 'traces_spanmetrics_latency',
          help: 'Span durations in seconds, weighted by sampling.',
          buckets: LATENCY_BUCKETS_S,
        },
      ],
      maxSeries: config.maxSeries,
      overflowValues: ([tenant, , , kind, status]) => [tenant, OVERFLOW, OVERFLOW, kind, status],
    });
    this.#edges = new CappedSeries({
      registry,
      labelNames: ['tenant', 'client', 'server', 'connection_type'],
      families: [
        {
          kind: 'counter',
          name: 'traces_service_graph_request_total',
          help: 'Requests between two services (client span → server span), weighted by sampling.',
        },
        {
          kind: 'counter',
          name: 'traces_service_graph_request_failed_total',
          help: 'Requests between two services where either span has status error, weighted by sampling.',
        },
        {
          kind: 'histogram',
          name: 'traces_service_graph_request_server_seconds',
          help: 'Server span durations of service graph requests, in seconds.',
          buckets: LATENCY_BUCKETS_S,
        },
        {
          kind: 'histogram',
          name: 'traces_service_graph_request_client_seconds',
          help: 'Client span durations of service graph requests, in seconds.',
          buckets: LATENCY_BUCKETS_S,
        },
      ],
      maxSeries: config.maxEdges,
      overflowValues: ([tenant, , , type]) => [tenant, OVERFLOW, OVERFLOW, type],
    });
    this.#unpaired = new Counter({
      name: 'traces_service_graph_unpaired_spans_total',
      help: 'Client or server spans whose other half did not arrive at this instance in time.',
      labelNames: ['side'],
      registers,
    });
    this.#dropped = new Counter({
      name: 'traces_service_graph_dropped_spans_total',
      help: 'Client or server spans not kept waiting for their other half: too many were waiting.',
      registers,
    });
    this.#overflow = new Counter({
      name: 'tracehouse_span_metrics_overflow_total',
      help: 'Spans (family spanmetrics) or requests (service_graph) recorded in the __overflow__ series past the label cap.',
      labelNames: ['family'],
      registers,
    });
    const spans = this.#spans;
    const edges = this.#edges;
    const pending = this.#pending;
    new Gauge({
      name: 'tracehouse_span_metrics_series',
      help: 'Label sets held by the span-derived metrics (the cap: SPAN_METRICS_MAX_SERIES, SERVICE_GRAPH_MAX_EDGES).',
      labelNames: ['family'],
      registers,
      collect() {
        this.set({ family: 'spanmetrics' }, spans.size);
        this.set({ family: 'service_graph' }, edges.size);
      },
    });
    new Gauge({
      name: 'tracehouse_service_graph_pending_spans',
      help: 'Client and server spans waiting for their other half.',
      registers,
      collect() {
        this.set(pending.size);
      },
    });
    for (const side of ['client', 'server']) this.#unpaired.inc({ side }, 0);
    for (const family of ['spanmetrics', 'service_graph']) this.#overflow.inc({ family }, 0);
  }

  /** Records the committed spans of one request of `tenant`. */
  record(tenant: string, rows: readonly SpanRow[]): void {
    if (this.#config.maxSeries === 0) return;
    const now = this.#now();
    this.#pendingExpiry.forget(now, (half) => this.#unpaired.inc({ side: half.client ? 'client' : 'server' }));
    const overflowBefore = this.#spans.overflowed;
    const edgesOverflowBefore = this.#edges.overflowed;
    for (const row of rows) {
      const seconds = Number(row.endTimeUnixNano - row.startTimeUnixNano) / 1e9;
      const weight = row.samplingWeight;
      const series = this.#spans.series([
        tenant,
        row.serviceName,
        row.name,
        SPAN_KIND_NAMES[row.kind] ?? SPAN_KIND_NAMES[0],
        STATUS_CODE_NAMES[row.statusCode] ?? STATUS_CODE_NAMES[0],
      ]);
      series.counters[0] += weight;
      series.histograms[0].observe(seconds, weight);
      if (row.kind >= KIND_SERVER) this.#pair(tenant, row, seconds, now);
    }
    const spill = this.#spans.overflowed - overflowBefore;
    if (spill > 0) this.#overflow.inc({ family: 'spanmetrics' }, spill);
    const edgeSpill = this.#edges.overflowed - edgesOverflowBefore;
    if (edgeSpill > 0) this.#overflow.inc({ family: 'service_graph' }, edgeSpill);
  }

  #pair(tenant: string, row: SpanRow, seconds: number, now: number): void {
    const client = row.kind === KIND_CLIENT || row.kind === KIND_PRODUCER;
    if (!client && row.parentSpanId === null) return; // a root server span has no client
    // The client's span id is the server's parent span id: both halves find the same key.
    const key = `${tenant}\u0000${row.traceId.toString('latin1')}${(client ? row.spanId : row.parentSpanId!).toString('latin1')}`;
    const half: Half = {
      client,
      messaging: row.kind === KIND_PRODUCER || row.kind === KIND_CONSUMER,
      service: row.serviceName,
      seconds,
      weight: row.samplingWeight,
      failed: row.statusCode === STATUS_ERROR,
      expiresAt: now + this.#config.serviceGraphWaitMs,
    };
    const other = this.#pending.get(key);
    if (other !== undefined && other.client !== client) {
      this.#pending.delete(key);
      this.#edge(tenant, client ? half : other, client ? other : half);
      return;
    }
    if (other !== undefined) return; // the same half again (a retry): keep the first
    if (this.#pending.size >= this.#config.serviceGraphMaxPending) {
      this.#dropped.inc();
      return;
    }
    this.#pending.set(key, half);
  }

  #edge(tenant: string, client: Half, server: Half): void {
    const type = client.messaging || server.messaging ? 'messaging_system' : '';
    const edge = this.#edges.series([tenant, client.service, server.service, type]);
    edge.counters[0] += server.weight;
    if (client.failed || server.failed) edge.counters[1] += server.weight;
    edge.histograms[0].observe(server.seconds, server.weight);
    edge.histograms[1].observe(client.seconds, client.weight);
  }
}
