import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { SpanRow } from '../../../server/decode/types.js';
import { LATENCY_BUCKETS_S, OVERFLOW, SpanMetrics } from '../../../server/ops/span-metrics.js';

const MS = 1_000_000n;
let counter = 0;

function id(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  out.writeUInt32BE(++counter, bytes - 4);
  out[0] = 1;
  return out;
}

function span(overrides: Partial<SpanRow> = {}): SpanRow {
  return {
    traceId: id(16),
    spanId: id(8),
    parentSpanId: null,
    traceState: '',
    flags: 1,
    name: 'GET /orders',
    kind: 2,
    serviceName: 'orders',
    startTimeUnixNano: 1_000n * MS,
    endTimeUnixNano: 1_003n * MS, // 3 ms
    statusCode: 0,
    statusMessage: '',
    attributes: '{}',
    sharedAttributes: '{}',
    resourceAttributes: '{}',
    scopeName: '',
    scopeVersion: '',
    scopeAttributes: '{}',
    events: '[]',
    links: '[]',
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
    samplingWeight: 1,
    sizeBytes: 100,
    ...overrides,
  };
}

const CONFIG = { maxSeries: 100, maxEdges: 10, serviceGraphWaitMs: 10_000, serviceGraphMaxPending: 1000 };

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The registry's text exposition, parsed (every sample line). */
async function scrape(registry: Registry): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (const line of (await registry.metrics()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

const sum = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);

describe('span RED metrics', () => {
  it("counts calls and durations per service, span name, kind and status, weighted, under Tempo's names", async () => {
    const registry = new Registry();
    const metrics = new SpanMetrics(registry, CONFIG);
    metrics.record('acme', [
      span(),
      span({ samplingWeight: 4, endTimeUnixNano: 1_200n * MS }), // 200 ms, stands for 4
      span({ statusCode: 2, kind: 3, name: 'SELECT' }),
    ]);
    const samples = await scrape(registry);
    const server = { tenant: 'acme', service: 'orders', span_name: 'GET /orders', span_kind: 'SPAN_KIND_SERVER' };
    expect(sum(samples, 'traces_spanmetrics_calls_total', { ...server, status_code: 'STATUS_CODE_UNSET' })).toBe(5);
    expect(
      sum(samples, 'traces_spanmetrics_calls_total', {
        span_kind: 'SPAN_KIND_CLIENT',
        status_code: 'STATUS_CODE_ERROR',
      }),
    ).toBe(1);
    expect(sum(samples, 'traces_spanmetrics_latency_count', server)).toBe(5);
    expect(sum(samples, 'traces_spanmetrics_latency_sum', server)).toBeCloseTo(0.003 + 4 * 0.2, 9);
    expect(sum(samples, 'traces_spanmetrics_latency_bucket', { ...server, le: '0.005' })).toBe(1);
    expect(sum(samples, 'traces_spanmetrics_latency_bucket', { ...server, le: '0.25' })).toBe(5);
    expect(sum(samples, 'traces_spanmetrics_latency_bucket', { ...server, le: '+Inf' })).toBe(5);
    const les = samples.filter(
      (s) => s.name === 'traces_spanmetrics_latency_bucket' && s.labels.span_kind === 'SPAN_KIND_SERVER',
    );
    expect(les.map((s) => s.labels.le)).toEqual([...LATENCY_BUCKETS_S.map(String), '+Inf']);
  });

  it('keeps 10k distinct span names within the series cap, the rest in the overflow series', async () => {
    const registry = new Registry();
    const metrics = new SpanMetrics(registry, { ...CONFIG, maxSeries: 1000 });
    for (let batch = 0; batch < 10; batch++) {
      metrics.record(
        'acme',
        Array.from({ length: 1000 }, (_, i) => span({ name: `GET /orders/${batch * 1000 + i}` })),
      );
    }
    const samples = await scrape(registry);
    const calls = samples.filter((s) => s.name === 'traces_spanmetrics_calls_total');
    expect(calls.length).toBeLessThanOrEqual(1001); // the cap + one overflow series (one kind, one status)
    expect(calls.reduce((total, s) => total + s.value, 0)).toBe(10_000); // nothing lost
    expect(sum(samples, 'traces_spanmetrics_calls_total', { span_name: OVERFLOW, service: OVERFLOW })).toBe(9000);
    expect(sum(samples, 'tracehouse_span_metrics_overflow_total', { family: 'spanmetrics' })).toBe(9000);
    expect(sum(samples, 'tracehouse_span_metrics_series', { family: 'spanmetrics' })).toBe(1001);
    // Every histogram line belongs to one of those series: memory and exposition are bounded alike.
    expect(samples.filter((s) => s.name === 'traces_spanmetrics_latency_bucket').length).toBe(
      1001 * (LATENCY_BUCKETS_S.length + 1),
    );
    // A name seen before the cap was reached keeps its own series.
    metrics.record('acme', [span({ name: 'GET /orders/5' })]);
    expect(sum(await scrape(registry), 'traces_spanmetrics_calls_total', { span_name: 'GET /orders/5' })).toBe(2);
  });

  it('keeps apart label sets whose values would join to the same text, and starts over after a registry reset', async () => {
    const registry = new Registry();
    const metrics = new SpanMetrics(registry, CONFIG);
    metrics.record('acme', [
      span({ serviceName: 'a\u0001b', name: 'c' }),
      span({ serviceName: 'a', name: 'b\u0001c' }),
    ]);
    metrics.record('acme', [span({ serviceName: 'a', name: 'b\u0001c' })]);
    let samples = await scrape(registry);
    expect(sum(samples, 'traces_spanmetrics_calls_total', { service: 'a\u0001b', span_name: 'c' })).toBe(1);
    expect(sum(samples, 'traces_spanmetrics_calls_total', { service: 'a', span_name: 'b\u0001c' })).toBe(2);
    expect(sum(samples, 'tracehouse_span_metrics_series', { family: 'spanmetrics' })).toBe(2);

    registry.resetMetrics();
    metrics.record('acme', [span({ serviceName: 'a', name: 'b\u0001c' })]);
    samples = await scrape(registry);
    expect(sum(samples, 'traces_spanmetrics_calls_total')).toBe(1);
    expect(sum(samples, 'tracehouse_span_metrics_series', { family: 'spanmetrics' })).toBe(1);
  });

  it('turns off with SPAN_METRICS_MAX_SERIES=0', async () => {
    const registry = new Registry();
    new SpanMetrics(registry, { ...CONFIG, maxSeries: 0 }).record('acme', [span()]);
    expect(sum(await scrape(registry), 'traces_spanmetrics_calls_total')).toBe(0);
  });
});

describe('service graph', () => {
  function pair(options: { failed?: boolean; weight?: number; messaging?: boolean } = {}): [SpanRow, SpanRow] {
    const traceId = id(16);
    const client = span({
      traceId,
      kind: options.messaging ? 4 : 3,
      serviceName: 'frontend',
      name: 'GET /orders',
      statusCode: options.failed ? 2 : 0,
      samplingWeight: options.weight ?? 1,
    });
    const server = span({
      traceId,
      parentSpanId: client.spanId,
      kind: options.messaging ? 5 : 2,
      serviceName: 'orders',
      samplingWeight: options.weight ?? 1,
      endTimeUnixNano: 1_002n * MS,
    });
    return [client, server];
  }

  it('counts a client span and its server child as one request, in whichever order and batch they arrive', async () => {
    const registry = new Registry();
    const metrics = new SpanMetrics(registry, CONFIG);
    const [c1, s1] = pair();
    const [c2, s2] = pair({ failed: true, weight: 10 });
    const [c3, s3] = pair({ messaging: true });
    metrics.record('acme', [c1, s1]); // same batch
    metrics.record('acme', [s2]); // server first
    metrics.record('acme', [c2]);
    metrics.record('acme', [c3]);
    metrics.record('acme', [s3, s3]); // a retried half is one request
    const samples = await scrape(registry);
    const edge = { tenant: 'acme', client: 'frontend', server: 'orders' };
    expect(sum(samples, 'traces_service_graph_request_total', { ...edge, connection_type: '' })).toBe(11);
    expect(sum(samples, 'traces_service_graph_request_failed_total', { ...edge, connection_type: '' })).toBe(10);
    expect(sum(samples, 'traces_service_graph_request_total', { ...edge, connection_type: 'messaging_system' })).toBe(
      1,
    );
    expect(sum(samples, 'traces_service_graph_request_server_seconds_count', edge)).toBe(12);
    expect(
      sum(samples, 'traces_service_graph_request_client_seconds_sum', { ...edge, connection_type: '' }),
    ).toBeCloseTo(0.003 * 11, 9);
  });

  it('counts halves whose other half never came as unpaired once they expire, and bounds the waiting ones', async () => {
    let now = 0;
    const registry = new Registry();
    const metrics = new SpanMetrics(
      registry,
      { ...CONFIG, serviceGraphWaitMs: 1000, serviceGraphMaxPending: 3 },
      () => now,
    );
    metrics.record('acme', [pair()[0], pair()[1], pair()[0], pair()[0], pair()[1]]); // 3 wait, 2 dropped
    let samples = await scrape(registry);
    expect(sum(samples, 'tracehouse_service_graph_pending_spans')).toBe(3);
    expect(sum(samples, 'traces_service_graph_dropped_spans_total')).toBe(2);
    now = 1500;
    metrics.record('acme', []);
    samples = await scrape(registry);
    expect(sum(samples, 'traces_service_graph_unpaired_spans_total', { side: 'client' })).toBe(2);
    expect(sum(samples, 'traces_service_graph_unpaired_spans_total', { side: 'server' })).toBe(1);
    expect(sum(samples, 'tracehouse_service_graph_pending_spans')).toBe(0);
  });

  it('caps the edges too', async () => {
    const registry = new Registry();
    const metrics = new SpanMetrics(registry, { ...CONFIG, maxEdges: 5 });
    for (let i = 0; i < 50; i++) {
      const [client, server] = pair();
      metrics.record('acme', [client, { ...server, serviceName: `orders-${i}` }]);
    }
    const samples = await scrape(registry);
    expect(samples.filter((s) => s.name === 'traces_service_graph_request_total')).toHaveLength(6);
    expect(sum(samples, 'traces_service_graph_request_total', { client: OVERFLOW, server: OVERFLOW })).toBe(45);
    expect(sum(samples, 'tracehouse_span_metrics_overflow_total', { family: 'service_graph' })).toBe(45);
  });
});
