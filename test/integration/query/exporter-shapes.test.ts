/**
 * Traces sent by the real OpenTelemetry exporters, read back through every query API, in the
 * shapes Grafana decodes: Jaeger v1 JSON, Jaeger api_v3 OTLP/JSON, Tempo protobuf (decoded with
 * protobufjs as TracesData and TraceByIDResponse), Tempo JSON, and the search answers. Every span
 * is compared with what the SDK recorded, nanoseconds and attribute types included.
 */
import { SpanKind } from '@opentelemetry/api';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/db.js';
import { createOtlpRoot, tracesDataType } from '../../helpers/otlp-protobufjs.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { getJson, hrToNanos, produceTrace, type Json } from './query-fixtures.js';

const db = useTestDatabase();
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer(db.connectionString, {}, { listen: true });
});
afterAll(async () => {
  await server?.close();
});

const OTLP_KIND: Record<SpanKind, number> = {
  [SpanKind.INTERNAL]: 1,
  [SpanKind.SERVER]: 2,
  [SpanKind.CLIENT]: 3,
  [SpanKind.PRODUCER]: 4,
  [SpanKind.CONSUMER]: 5,
};
const JAEGER_KIND: Record<SpanKind, string> = {
  [SpanKind.INTERNAL]: 'internal',
  [SpanKind.SERVER]: 'server',
  [SpanKind.CLIENT]: 'client',
  [SpanKind.PRODUCER]: 'producer',
  [SpanKind.CONSUMER]: 'consumer',
};

const root = createOtlpRoot();
const tracesData = tracesDataType(root);
const traceByIdResponse = new protobuf.Type('TraceByIDResponse').add(
  new protobuf.Field('trace', 1, 'opentelemetry.proto.trace.v1.TracesData'),
);
root.add(traceByIdResponse);

/** What OTLP/JSON (and protobufjs toObject with longs as strings) shows for an SDK attribute value. */
function otlpValue(value: unknown): Json {
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { intValue: BigInt(value).toString() } : { doubleValue: value };
  }
  if (Array.isArray(value)) return { arrayValue: { values: value.map(otlpValue) } };
  throw new Error(`unexpected attribute ${String(value)}`);
}

function otlpAttributes(attributes: Record<string, unknown>): Json[] {
  return Object.entries(attributes)
    .map(([key, value]) => ({ key, value: otlpValue(value) }))
    .sort((a, b) => a.key.localeCompare(b.key));
}

const byKey = (list: Json[] | undefined) => [...(list ?? [])].sort((a, b) => a.key.localeCompare(b.key));

/** The span as OTLP/JSON states it, built from what the SDK recorded. */
function expectedOtlpSpan(span: ReadableSpan): Json {
  const expected: Json = {
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
    name: span.name,
    kind: OTLP_KIND[span.kind],
    startTimeUnixNano: hrToNanos(span.startTime).toString(),
    endTimeUnixNano: hrToNanos(span.endTime).toString(),
    attributes: otlpAttributes(span.attributes),
    events: span.events.map((e) => ({
      timeUnixNano: hrToNanos(e.time).toString(),
      name: e.name,
      attributes: otlpAttributes(e.attributes ?? {}),
    })),
    links: span.links.map((l) => ({
      traceId: l.context.traceId,
      spanId: l.context.spanId,
      attributes: otlpAttributes(l.attributes ?? {}),
    })),
    status: { code: span.status.code, ...(span.status.message ? { message: span.status.message } : {}) },
  };
  if (span.parentSpanContext) expected.parentSpanId = span.parentSpanContext.spanId;
  return expected;
}

/** A decoded OTLP span (JSON, or protobufjs toObject with base64 bytes) in the comparable form. */
function normalizeOtlpSpan(span: Json, idsAreBase64: boolean): Json {
  const id = (value: string | undefined) =>
    value === undefined || value === ''
      ? undefined
      : idsAreBase64
        ? Buffer.from(value, 'base64').toString('hex')
        : value;
  const out: Json = {
    traceId: id(span.traceId),
    spanId: id(span.spanId),
    name: span.name,
    kind: span.kind,
    startTimeUnixNano: String(span.startTimeUnixNano),
    endTimeUnixNano: String(span.endTimeUnixNano),
    attributes: byKey(span.attributes),
    events: (span.events ?? []).map((e: Json) => ({
      timeUnixNano: String(e.timeUnixNano),
      name: e.name,
      attributes: byKey(e.attributes),
    })),
    links: (span.links ?? []).map((l: Json) => ({
      traceId: id(l.traceId),
      spanId: id(l.spanId),
      attributes: byKey(l.attributes),
    })),
    status: { code: span.status?.code ?? 0, ...(span.status?.message ? { message: span.status.message } : {}) },
  };
  const parent = id(span.parentSpanId);
  if (parent !== undefined) out.parentSpanId = parent;
  return out;
}

function spansOf(tracesDataObject: Json): Json[] {
  return tracesDataObject.resourceSpans.flatMap((rs: Json) => rs.scopeSpans.flatMap((ss: Json) => ss.spans));
}

function expectSameSpans(actual: Json[], sent: ReadableSpan[]): void {
  const expected = sent.map(expectedOtlpSpan).sort((a, b) => a.spanId.localeCompare(b.spanId));
  expect([...actual].sort((a, b) => a.spanId.localeCompare(b.spanId))).toEqual(expected);
}

/** OTLP/JSON text where event times are bare numbers (Jaeger v3): read them as exact strings. */
function parseWithExactEventTimes(text: string): Json {
  return JSON.parse(text.replace(/"timeUnixNano":(\d+)/g, '"timeUnixNano":"$1"'));
}

type ExporterCase = { name: string; make: (url: string) => SpanExporter };
const cases: ExporterCase[] = [
  { name: 'protobuf', make: (url) => new ProtoExporter({ url }) },
  { name: 'json', make: (url) => new JsonExporter({ url }) },
];

describe.each(cases)('a trace sent by the real $name exporter', ({ name, make }) => {
  const service = `shop-${name}`;
  let sent: ReadableSpan[];
  let traceId: string;

  beforeAll(async () => {
    sent = await produceTrace(make(`${server.url}/v1/traces`), service);
    traceId = sent[0].spanContext().traceId;
  });

  it('Jaeger v1 /api/traces/{id} answers Jaeger trace JSON with every span, tag type, reference and log', async () => {
    const response = await server.app.inject({ method: 'GET', url: `/api/traces/${traceId}` });
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain('"value":1152921504606846976'); // 2^60, exact int64
    const body = response.json();
    expect(body).toMatchObject({ total: 1, limit: 0, offset: 0, errors: null });
    const trace = body.data[0];
    expect(trace.traceID).toBe(traceId);
    expect(trace.spans).toHaveLength(sent.length);
    const process = trace.processes[trace.spans[0].processID];
    expect(process.serviceName).toBe(service);
    expect(process.tags).toEqual(
      expect.arrayContaining([
        { key: 'host.name', type: 'string', value: 'box-1' },
        { key: 'process.pid', type: 'int64', value: 4242 },
      ]),
    );
    expect(process.tags.find((t: Json) => t.key === 'service.name')).toBeUndefined();
    const rootSpan = sent.find((s) => !s.parentSpanContext)!;
    for (const span of sent) {
      const jaeger = trace.spans.find((s: Json) => s.spanID === span.spanContext().spanId);
      expect(jaeger, span.name).toBeDefined();
      expect(jaeger.traceID).toBe(traceId);
      expect(jaeger.operationName).toBe(span.name);
      expect(jaeger.flags).toBe(1);
      expect(jaeger.startTime).toBe(Number(hrToNanos(span.startTime) / 1000n));
      expect(jaeger.duration).toBe(Number((hrToNanos(span.endTime) - hrToNanos(span.startTime)) / 1000n));
      expect(jaeger.tags).toContainEqual({ key: 'span.kind', type: 'string', value: JAEGER_KIND[span.kind] });
      expect(jaeger.tags).toContainEqual({ key: 'otel.scope.name', type: 'string', value: 'query-test' });
      const refs = [
        ...(span.parentSpanContext
          ? [{ refType: 'CHILD_OF', traceID: traceId, spanID: span.parentSpanContext.spanId }]
          : []),
        ...span.links.map((l) => ({ refType: 'FOLLOWS_FROM', traceID: l.context.traceId, spanID: l.context.spanId })),
      ];
      expect(jaeger.references).toEqual(refs);
      const eventFirst = (a: Json, b: Json) =>
        a.key === 'event' ? -1 : b.key === 'event' ? 1 : a.key.localeCompare(b.key);
      const actualLogs = jaeger.logs.map((l: Json) => ({ ...l, fields: [...l.fields].sort(eventFirst) }));
      expect(actualLogs).toEqual(
        span.events.map((e) => ({
          timestamp: Number(hrToNanos(e.time) / 1000n),
          fields: [
            { key: 'event', type: 'string', value: e.name },
            ...Object.entries(e.attributes ?? {}).map(([key, value]) =>
              typeof value === 'number' ? { key, type: 'int64', value } : { key, type: 'string', value },
            ),
          ].sort(eventFirst),
        })),
      );
      if (span.status.code === 2) {
        expect(jaeger.tags).toEqual(
          expect.arrayContaining([
            { key: 'error', type: 'bool', value: true },
            { key: 'otel.status_code', type: 'string', value: 'ERROR' },
            { key: 'otel.status_description', type: 'string', value: 'card declined' },
          ]),
        );
      }
    }
    const jaegerRoot = trace.spans.find((s: Json) => s.spanID === rootSpan.spanContext().spanId);
    expect(jaegerRoot.tags).toEqual(
      expect.arrayContaining([
        { key: 'http.route', type: 'string', value: '/checkout' },
        { key: 'http.response.status_code', type: 'int64', value: 200 },
        { key: 'app.ratio', type: 'float64', value: 0.25 },
        { key: 'app.ok', type: 'bool', value: true },
        { key: 'app.tags', type: 'string', value: '["a","b"]' },
        { key: 'otel.status_code', type: 'string', value: 'OK' },
      ]),
    );
  });

  it('Jaeger api_v3 /api/v3/traces/{id} answers OTLP/JSON equal to what the SDK recorded', async () => {
    const response = await server.app.inject({ method: 'GET', url: `/api/v3/traces/${traceId}` });
    expect(response.statusCode).toBe(200);
    const rootEvent = sent.find((s) => s.events.length > 0)!.events[0];
    expect(response.body).toContain(`"timeUnixNano":${hrToNanos(rootEvent.time)}`); // Grafana decodes an int64
    const body = parseWithExactEventTimes(response.body);
    expect(body.result.resourceSpans).toHaveLength(1);
    const resource = body.result.resourceSpans[0].resource;
    expect(resource.attributes).toContainEqual({ key: 'service.name', value: { stringValue: service } });
    expect(body.result.resourceSpans[0].scopeSpans[0].scope).toEqual({ name: 'query-test', version: '0.9.1' });
    expectSameSpans(
      spansOf(body.result).map((s) => normalizeOtlpSpan(s, false)),
      sent,
    );
  });

  it('Tempo /api/v2/traces/{id} with Accept: application/protobuf decodes as TraceByIDResponse', async () => {
    const response = await server.app.inject({
      method: 'GET',
      url: `/api/v2/traces/${traceId}`,
      headers: { accept: 'application/protobuf' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/protobuf');
    const decoded = traceByIdResponse.toObject(traceByIdResponse.decode(response.rawPayload), {
      longs: String,
      bytes: String,
    });
    expectSameSpans(
      spansOf(decoded.trace).map((s) => normalizeOtlpSpan(s, true)),
      sent,
    );
  });

  it('Tempo /api/traces/{id} with Accept: application/protobuf decodes as TracesData (tempopb.Trace)', async () => {
    const response = await server.app.inject({
      method: 'GET',
      url: `/api/traces/${traceId}`,
      headers: { accept: 'application/protobuf' },
    });
    expect(response.statusCode).toBe(200);
    const decoded = tracesData.toObject(tracesData.decode(response.rawPayload), { longs: String, bytes: String });
    expect(decoded.resourceSpans[0].resource.attributes).toContainEqual({
      key: 'process.pid',
      value: { intValue: '4242' },
    });
    expectSameSpans(
      spansOf(decoded).map((s) => normalizeOtlpSpan(s, true)),
      sent,
    );
  });

  it('Tempo /api/v2/traces/{id} in JSON wraps OTLP/JSON in {"trace": …}', async () => {
    const { status, body } = await getJson(server.app, `/api/v2/traces/${traceId}`);
    expect(status).toBe(200);
    expectSameSpans(
      spansOf(body.trace).map((s) => normalizeOtlpSpan(s, false)),
      sent,
    );
  });

  it('finds the trace by search in Jaeger v1, Jaeger v3 and Tempo, in their shapes', async () => {
    const rootSpan = sent.find((s) => !s.parentSpanContext)!;
    const tags = encodeURIComponent(JSON.stringify({ 'http.route': '/checkout' }));
    const v1 = await getJson(server.app, `/api/traces?service=${service}&tags=${tags}&limit=20`);
    expect(v1.status).toBe(200);
    expect(v1.body.data.map((t: Json) => t.traceID)).toEqual([traceId]);
    expect(v1.body.data[0].spans).toHaveLength(sent.length);

    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const v3 = await server.app.inject({
      method: 'GET',
      url: `/api/v3/traces?query.service_name=${service}&query.start_time_min=${from}&query.start_time_max=${to}`,
    });
    expect(v3.statusCode).toBe(200);
    expectSameSpans(
      spansOf(parseWithExactEventTimes(v3.body).result).map((s) => normalizeOtlpSpan(s, false)),
      sent,
    );

    const q = encodeURIComponent(`{ resource.service.name = "${service}" && span.http.route = "/checkout" }`);
    const tempo = await getJson(server.app, `/api/search?q=${q}&limit=20&spss=3`);
    expect(tempo.status).toBe(200);
    const rootStart = hrToNanos(rootSpan.startTime);
    const lastEnd = sent.map((s) => hrToNanos(s.endTime)).reduce((a, b) => (a > b ? a : b));
    const spanSet = {
      spans: [
        {
          spanID: rootSpan.spanContext().spanId,
          name: 'GET /checkout',
          startTimeUnixNano: rootStart.toString(),
          durationNanos: (hrToNanos(rootSpan.endTime) - rootStart).toString(),
          attributes: [
            { key: 'service.name', value: { stringValue: service } },
            { key: 'http.route', value: { stringValue: '/checkout' } },
          ],
        },
      ],
      matched: 1,
    };
    expect(tempo.body).toEqual({
      traces: [
        {
          traceID: traceId,
          rootServiceName: service,
          rootTraceName: 'GET /checkout',
          startTimeUnixNano: rootStart.toString(),
          durationMs: Number((lastEnd - rootStart) / 1_000_000n),
          spanSet,
          spanSets: [spanSet],
          serviceStats: { [service]: { spanCount: sent.length, errorCount: 1 } },
        },
      ],
      metrics: { inspectedTraces: 1, inspectedBytes: '0', completedJobs: 1, totalJobs: 1 },
    });
  });

  it('lists the service and its operations in Jaeger v1 and v3', async () => {
    const services = await getJson(server.app, '/api/services');
    expect(services.body.data).toContain(service);
    expect((await getJson(server.app, '/api/v3/services')).body.services).toContain(service);
    const names = [...new Set(sent.map((s) => s.name))].sort();
    const operations = await getJson(server.app, `/api/services/${service}/operations`);
    expect([...operations.body.data].sort()).toEqual(names);
    const v1 = await getJson(server.app, `/api/operations?service=${service}&spanKind=server`);
    expect(v1.body.data).toEqual([{ name: 'GET /checkout', spanKind: 'server' }]);
    const v3 = await getJson(server.app, `/api/v3/operations?service=${service}`);
    expect(v3.body.operations).toContainEqual({ name: 'SELECT orders', spanKind: 'client' });
    expect(v3.body.operations).toHaveLength(names.length);
  });
});
