/**
 * Shared pieces of the query API tests: a trace recorded by the real OpenTelemetry SDK and sent by
 * a real exporter, ingestion of fixture spans through POST /v1/traces, and small HTTP helpers.
 */
import { SpanKind, SpanStatusCode, context, trace, type Link } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { buildRequest, type FixtureSpan } from '../../helpers/otlp-fixtures.js';

export const NS_PER_MS = 1_000_000n;

export function hrToNanos([seconds, nanos]: [number, number]): bigint {
  return BigInt(seconds) * 1_000_000_000n + BigInt(nanos);
}

/**
 * Records one trace with the SDK (a server root with typed attributes, an event and an error
 * child, a client child linking to the root, internal children) and exports it through `exporter`.
 * Returns the spans as the SDK recorded them.
 */
export async function produceTrace(exporter: SpanExporter, service: string): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'host.name': 'box-1', 'process.pid': 4242 }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 20 }), new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('query-test', '0.9.1');
  const nowS = Math.floor(Date.now() / 1000);
  const root = tracer.startSpan('GET /checkout', {
    kind: SpanKind.SERVER,
    startTime: [nowS - 5, 123_456_789],
    attributes: {
      'http.route': '/checkout',
      'http.response.status_code': 200,
      'app.big': 2 ** 60,
      'app.ratio': 0.25,
      'app.ok': true,
      'app.tags': ['a', 'b'],
    },
  });
  root.addEvent('cache miss', { 'cache.key': 'user:1', attempt: 2 }, [nowS - 5, 500_000_001]);
  const rootContext = root.spanContext();
  const child = (name: string, kind: SpanKind, offsetNs: number, links: Link[] = []) =>
    tracer.startSpan(
      name,
      { kind, startTime: [nowS - 5, 200_000_000 + offsetNs], links },
      trace.setSpan(context.active(), root),
    );
  const db = child('SELECT orders', SpanKind.CLIENT, 7, [
    { context: rootContext, attributes: { 'link.reason': 'retry' } },
  ]);
  db.setAttribute('db.rows', 42);
  db.end([nowS - 5, 900_000_000]);
  const failing = child('charge card', SpanKind.INTERNAL, 11);
  failing.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined' });
  failing.end([nowS - 4, 100_000_000]);
  for (let i = 0; i < 3; i++) child(`render ${i}`, SpanKind.INTERNAL, 100 + i).end([nowS - 4, 200_000_000 + i]);
  root.setStatus({ code: SpanStatusCode.OK });
  root.end([nowS - 4, 500_000_000]);
  await provider.forceFlush();
  const finished = memory.getFinishedSpans();
  await provider.shutdown();
  return finished;
}

/** Sends fixture spans through the real ingest route (OTLP protobuf) and expects a full 200. */
export async function ingest(app: FastifyInstance, spans: FixtureSpan[]): Promise<void> {
  const { protobuf } = buildRequest({ spans });
  const response = await app.inject({
    method: 'POST',
    url: '/v1/traces',
    headers: { 'content-type': 'application/x-protobuf' },
    payload: protobuf,
  });
  expect(response.statusCode, response.body).toBe(200);
  expect(response.body).not.toContain('rejected');
}

/** Response bodies are checked field by field against the documented shapes. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export async function getJson(
  app: FastifyInstance,
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Json }> {
  const response = await app.inject({ method: 'GET', url, headers });
  const type = String(response.headers['content-type'] ?? '');
  return { status: response.statusCode, body: type.includes('json') ? response.json() : response.body };
}
