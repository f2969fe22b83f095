/**
 * The real OpenTelemetry JS exporters (protobuf and JSON, with and without gzip) send through a
 * BatchSpanProcessor; every span is read back from PostgreSQL and compared field by field with
 * what the SDK recorded, nanoseconds included.
 */
import { SpanKind, SpanStatusCode, context, trace, type Link } from '@opentelemetry/api';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { CompressionAlgorithm } from '@opentelemetry/otlp-exporter-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/db.js';
import { counterValue, startTestServer, type TestServer } from '../../helpers/server.js';

const db = useTestDatabase();
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer(db.connectionString, {}, { listen: true });
});
afterAll(async () => {
  await server?.close();
});

type ExporterCase = { name: string; make: (url: string) => SpanExporter };

const cases: ExporterCase[] = [
  { name: 'protobuf', make: (url) => new ProtoExporter({ url }) },
  { name: 'protobuf + gzip', make: (url) => new ProtoExporter({ url, compression: CompressionAlgorithm.GZIP }) },
  { name: 'json', make: (url) => new JsonExporter({ url }) },
  { name: 'json + gzip', make: (url) => new JsonExporter({ url, compression: CompressionAlgorithm.GZIP }) },
];

const SDK_TO_OTLP_KIND: Record<SpanKind, number> = {
  [SpanKind.INTERNAL]: 1,
  [SpanKind.SERVER]: 2,
  [SpanKind.CLIENT]: 3,
  [SpanKind.PRODUCER]: 4,
  [SpanKind.CONSUMER]: 5,
};

function hrToNanos([seconds, nanos]: [number, number]): bigint {
  return BigInt(seconds) * 1_000_000_000n + BigInt(nanos);
}

/** Produces a small trace with every feature the SDK can express, through the given exporter. */
async function produceTrace(exporter: SpanExporter, label: string): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': `svc-${label}`, 'host.name': 'box', 'process.pid': 4242 }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 50 }), new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('exporter-test', '1.2.3');
  const nowS = Math.floor(Date.now() / 1000);
  const root = tracer.startSpan('GET /checkout', {
    kind: SpanKind.SERVER,
    startTime: [nowS - 2, 123_456_789],
    attributes: { 'http.route': '/checkout', 'http.status_code': 200, ratio: 0.25, ok: true, tags: ['a', 'b'] },
  });
  root.addEvent('cache miss', { key: 'user:1', attempt: 2 }, [nowS - 2, 500_000_001]);
  const rootContext = root.spanContext();
  for (let i = 0; i < 30; i += 1) {
    const links: Link[] = i === 0 ? [{ context: rootContext, attributes: { 'link.reason': 'follows' } }] : [];
    const child = tracer.startSpan(
      `db query ${i}`,
      { kind: i % 2 === 0 ? SpanKind.CLIENT : SpanKind.INTERNAL, startTime: [nowS - 2, 200_000_000 + i * 7], links },
      trace.setSpan(context.active(), root),
    );
    child.setAttribute('db.rows', i);
    child.setAttribute('db.statement', `SELECT ${i} -- ünïcödé`);
    if (i === 3) child.setStatus({ code: SpanStatusCode.ERROR, message: 'timeout' });
    child.end([nowS - 1, 999_999_999 - i]);
  }
  root.setStatus({ code: SpanStatusCode.OK });
  root.end([nowS - 1, 1]);
  await provider.forceFlush();
  const finished = memory.getFinishedSpans(); // shutdown() empties the in-memory exporter
  await provider.shutdown();
  return finished;
}

function expectedAttributes(attributes: ReadableSpan['attributes']): Record<string, unknown> {
  return Object.fromEntries(Object.entries(attributes));
}

describe.each(cases)('real $name exporter', ({ name, make }) => {
  it('stores every span, attribute, event and link exactly as the SDK recorded them', async () => {
    const sent = await produceTrace(make(`${server.url}/v1/traces`), name.replace(/\W+/g, '-'));
    expect(sent).toHaveLength(31);
    const traceId = Buffer.from(sent[0].spanContext().traceId, 'hex');
    const { rows } = await db.query(
      `SELECT encode(span_id, 'hex') AS span_id, encode(parent_span_id, 'hex') AS parent_span_id, trace_state, flags,
              name, kind, service_name, start_time_unix_nano::text AS start_ns,
              (start_time_unix_nano + duration_ns)::text AS end_ns, duration_ns::text AS duration_ns, (extract(epoch from start_time) * 1000000)::bigint::text AS start_us,
              status_code, status_message, coalesce(a.attributes || s.attributes, s.attributes) AS attributes,
              r.attributes AS resource_attributes, r.scope_name, r.scope_version, events, links,
              dropped_attributes_count, dropped_events_count, dropped_links_count
         FROM spans s JOIN resources r USING (tenant, resource_id)
         LEFT JOIN attribute_sets a USING (tenant, attribute_set_id)
        WHERE tenant = 'default' AND trace_id = $1`,
      [traceId],
    );
    expect(rows).toHaveLength(sent.length);
    const byId = new Map(rows.map((row) => [row.span_id as string, row]));
    for (const span of sent) {
      expect(byId.has(span.spanContext().spanId), span.name).toBe(true);
      const row = byId.get(span.spanContext().spanId)!;
      const startNs = hrToNanos(span.startTime);
      const endNs = hrToNanos(span.endTime);
      expect(row.name).toBe(span.name);
      expect(row.kind).toBe(SDK_TO_OTLP_KIND[span.kind]);
      expect(row.service_name).toBe(`svc-${name.replace(/\W+/g, '-')}`);
      expect(row.start_ns).toBe(String(startNs));
      expect(row.end_ns).toBe(String(endNs));
      expect(row.duration_ns).toBe(String(endNs - startNs));
      expect(row.start_us).toBe(String(startNs / 1000n));
      expect(row.parent_span_id).toBe(span.parentSpanContext?.spanId ?? null);
      expect(row.flags & 0xff).toBe(span.spanContext().traceFlags);
      expect(row.status_code).toBe(span.status.code);
      expect(row.status_message).toBe(span.status.message ?? '');
      expect(row.attributes).toEqual(expectedAttributes(span.attributes));
      expect(row.resource_attributes).toMatchObject({ 'host.name': 'box', 'process.pid': 4242 });
      expect(row.scope_name).toBe('exporter-test');
      expect(row.scope_version).toBe('1.2.3');
      // Stored events and links leave out the fields at their OTLP default (migrations/000007).
      const events = (row.events as object[]).map((e) => ({ attributes: {}, droppedAttributesCount: 0, ...e }));
      const links = (row.links as object[]).map((l) => ({
        traceState: '',
        flags: 0,
        attributes: {},
        droppedAttributesCount: 0,
        ...l,
      }));
      for (const stored of [...row.events, ...row.links] as Array<{
        attributes?: object;
        droppedAttributesCount?: number;
      }>) {
        expect(stored.droppedAttributesCount).not.toBe(0);
        expect(stored.attributes).not.toEqual({});
      }
      expect(events).toEqual(
        span.events.map((event) => ({
          timeUnixNano: String(hrToNanos(event.time)),
          name: event.name,
          attributes: event.attributes ?? {},
          droppedAttributesCount: event.droppedAttributesCount ?? 0,
        })),
      );
      expect(links).toEqual(
        span.links.map((link) => ({
          traceId: link.context.traceId,
          spanId: link.context.spanId,
          traceState: link.context.traceState?.serialize() ?? '',
          flags: expect.any(Number),
          attributes: link.attributes ?? {},
          droppedAttributesCount: link.droppedAttributesCount ?? 0,
        })),
      );
      expect(row.dropped_attributes_count).toBe(span.droppedAttributesCount);
      expect(row.dropped_events_count).toBe(span.droppedEventsCount);
      expect(row.dropped_links_count).toBe(span.droppedLinksCount);
    }

    const summary = await db.query(
      `SELECT span_count::int, error_count::int, root_service_name, root_span_name,
              first_start_unix_nano::text AS first_ns, last_end_unix_nano::text AS last_ns
         FROM traces WHERE tenant = 'default' AND trace_id = $1`,
      [traceId],
    );
    const root = sent.find((span) => !span.parentSpanContext)!;
    expect(summary.rows).toEqual([
      {
        span_count: 31,
        error_count: 1,
        root_service_name: `svc-${name.replace(/\W+/g, '-')}`,
        root_span_name: 'GET /checkout',
        first_ns: String(hrToNanos(root.startTime)),
        last_ns: String(sent.map((span) => hrToNanos(span.endTime)).reduce((a, b) => (a > b ? a : b))),
      },
    ]);
  });
});

it('counts every received span as accepted when nothing was rejected or refused', async () => {
  const received = await counterValue(server.metrics, 'tracehouse_spans_received_total');
  const accepted = await counterValue(server.metrics, 'tracehouse_spans_accepted_total');
  expect(received).toBe(31 * cases.length);
  expect(accepted).toBe(received);
});
