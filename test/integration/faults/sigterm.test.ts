/**
 * Fault catalog row 15 (reference/reliability.md), scaled to a test: the real `tracehouse serve`
 * process gets SIGTERM during steady ingest from real OpenTelemetry exporters (protobuf, through
 * BatchSpanProcessors) and a raw fetch sender. It must drain and exit 0 before DRAIN_TIMEOUT_MS,
 * and every span a client saw acknowledged must be in PostgreSQL exactly once. Three trials, each a
 * fresh process on the same database, so the last check covers all of them.
 */
import http from 'node:http';
import { context, trace, SpanKind, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDistBuilt } from '../../helpers/build-dist.js';
import { useTestDatabase } from '../../helpers/db.js';
import { buildRequest, realisticSpans } from '../../helpers/otlp-fixtures.js';
import { OtlpLoad, spanKey, waitUntil } from '../../helpers/otlp-load.js';
import { ExportLedger, RecordingExporter } from '../../helpers/recording-exporter.js';
import { compareAcknowledged, readStoredSpans } from '../../helpers/stored-spans.js';
import { spawnTracehouse, type LogLine, type TracehouseProcess } from '../../helpers/tracehouse-process.js';

const DRAIN_TIMEOUT_MS = 10_000;
const TRIALS = 3;
const PROVIDERS = 4;
const SPANS_PER_TICK = 40; // per provider, every TICK_MS: 4 × 40 / 20 ms = 8 000 spans/s
const TICK_MS = 20;
const MAX_SPANS_PER_PROVIDER = 12_000; // bound: at most 48 000 exporter spans per trial
const EXPORT_TIMEOUT_MS = 3000; // the exporter's own deadline (retries included), keeps the tail short
const DRAIN_LOG = 'draining: /ready is now 503';

const db = useTestDatabase();
const processes: TracehouseProcess[] = [];
const allAcknowledged = new Set<string>();

beforeAll(async () => {
  const build = await ensureDistBuilt();
  if (build.diagnostics) console.warn(`tsc reported problems but emitted dist/:\n${build.diagnostics.slice(0, 2000)}`);
});

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop()));
});

/** Producers of real SDK spans: BatchSpanProcessor → RecordingExporter → OTLPTraceExporter (protobuf). */
function startProducers(url: string, ledger: ExportLedger): { stop: () => void; shutdown: () => Promise<void> } {
  const providers = Array.from({ length: PROVIDERS }, (_, i) => {
    const exporter = new OTLPTraceExporter({ url: `${url}/v1/traces`, timeoutMillis: EXPORT_TIMEOUT_MS });
    return new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': `sigterm-producer-${i}` }),
      spanProcessors: [
        new BatchSpanProcessor(new RecordingExporter(exporter, ledger), {
          maxQueueSize: 8192,
          maxExportBatchSize: 512,
          scheduledDelayMillis: 20,
          exportTimeoutMillis: EXPORT_TIMEOUT_MS * 2,
        }),
      ],
    });
  });
  const tracers = providers.map((provider) => provider.getTracer('sigterm-test', '1.0.0'));
  const produced = new Array<number>(PROVIDERS).fill(0);
  const timer = setInterval(() => {
    tracers.forEach((tracer, i) => {
      if (produced[i] >= MAX_SPANS_PER_PROVIDER) return;
      produceTrace(tracer, SPANS_PER_TICK);
      produced[i] += SPANS_PER_TICK;
    });
  }, TICK_MS);
  const stop = (): void => clearInterval(timer);
  return {
    stop,
    shutdown: async () => {
      stop();
      // The final flush fails once the server is gone; the ledger has recorded each export's outcome.
      await Promise.all(providers.map((provider) => provider.shutdown().catch(() => undefined)));
    },
  };
}

function produceTrace(tracer: Tracer, spans: number): void {
  const root = tracer.startSpan('GET /orders', { kind: SpanKind.SERVER, attributes: { 'http.route': '/orders' } });
  const parent = trace.setSpan(context.active(), root);
  for (let i = 1; i < spans; i++) {
    const child = tracer.startSpan(
      `SELECT orders ${i}`,
      { kind: SpanKind.CLIENT, attributes: { 'db.rows': i } },
      parent,
    );
    child.end();
  }
  root.end();
}

function tally(values: Array<string | number>): string {
  const counts = new Map<string | number, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return JSON.stringify(Object.fromEntries(counts));
}

interface SlowRequest {
  spanKeys: string[];
  /** Sends the rest of the body. */
  finish(): void;
  response: Promise<{ status: number } | { error: string }>;
  close(): void;
}

/**
 * A keep-alive client whose request body is still arriving when SIGTERM lands, and which then goes
 * quiet: the drain must answer it (it was accepted) and must not wait for the idle connection.
 */
function beginSlowRequest(url: string): SlowRequest {
  const spans = realisticSpans(50, { nowMs: Date.now() });
  const body = buildRequest({ spans }).protobuf;
  const agent = new http.Agent({ keepAlive: true });
  const request = http.request(`${url}/v1/traces`, {
    method: 'POST',
    agent,
    headers: { 'content-type': 'application/x-protobuf', 'content-length': String(body.length) },
  });
  const response = new Promise<{ status: number } | { error: string }>((resolve) => {
    request.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    });
    request.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
  });
  request.write(body.subarray(0, body.length >> 1));
  return {
    spanKeys: spans.map((span) => spanKey(span.traceId, span.spanId)),
    finish: () => request.end(body.subarray(body.length >> 1)),
    response,
    close: () => agent.destroy(),
  };
}

function findLog(logs: LogLine[], msg: string): LogLine | undefined {
  return logs.find((line) => line.msg === msg);
}

describe('SIGTERM during steady ingest', () => {
  it.each(Array.from({ length: TRIALS }, (_, i) => ({ trial: i + 1 })))(
    'trial $trial: drains, exits 0 before the deadline, and stores every acknowledged span exactly once',
    async ({ trial }) => {
      const server = await spawnTracehouse({
        DATABASE_URL: db.connectionString,
        LOG_LEVEL: 'info',
        DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS),
      });
      processes.push(server);
      await server.waitReady(30_000);

      const ledger = new ExportLedger();
      const producers = startProducers(server.url, ledger);
      const raw = new OtlpLoad({
        url: `${server.url}/v1/traces`,
        concurrency: 2,
        spansPerRequest: 100,
        pauseMs: 5,
        maxRequests: 2000,
        attemptTimeoutMs: DRAIN_TIMEOUT_MS + 5000,
      });
      raw.start();
      let sigtermAt = 0;
      let exit;
      let slow: SlowRequest | undefined;
      let slowResponse;
      try {
        const acknowledged = (): number => ledger.acknowledged.size + raw.acknowledgedSince(0) * 100;
        await waitUntil(() => acknowledged() >= 4000, 20_000, '4000 acknowledged spans before SIGTERM');
        await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 700)); // a random point of steady ingest
        slow = beginSlowRequest(server.url);
        await new Promise((resolve) => setTimeout(resolve, 100));

        sigtermAt = Date.now();
        server.child.kill('SIGTERM');
        await waitUntil(() => findLog(server.logs, DRAIN_LOG) !== undefined, 5000, 'the drain to start');
        slow.finish();
        slowResponse = await slow.response;
        exit = await server.waitExit(DRAIN_TIMEOUT_MS + 5000);
      } finally {
        slow?.close();
        producers.stop();
        raw.stop();
        await producers.shutdown();
        await raw.settled(DRAIN_TIMEOUT_MS + 10_000);
      }

      // The process drained and exited cleanly, within the drain deadline.
      expect(exit, 'tracehouse exited after SIGTERM').toBeDefined();
      expect({ code: exit!.code, signal: exit!.signal }).toEqual({ code: 0, signal: null });
      const drainMs = exit!.at - sigtermAt;
      expect(drainMs).toBeLessThan(DRAIN_TIMEOUT_MS);
      const logs = server.logs;
      expect(findLog(logs, 'shutting down')).toMatchObject({ signal: 'SIGTERM' });
      const drainStarted = findLog(logs, DRAIN_LOG);
      expect(drainStarted, 'the drain is logged').toBeDefined();
      expect(findLog(logs, 'stopped'), 'the end of the drain is logged').toBeDefined();
      expect(
        logs.filter((line) => /deadline/.test(line.msg ?? '')),
        'nothing was cut off by the drain deadline',
      ).toEqual([]);
      expect(
        logs.filter((line) => line.level >= 50),
        'no error logs',
      ).toEqual([]);

      // The request whose body was still arriving when the drain began was answered with a commit,
      // and its connection, idle afterwards, did not hold up the exit.
      expect(slowResponse).toEqual({ status: 200 });

      // Clients never saw a 500: raw requests got 200 (committed), 503, or a connection error once
      // the listener was gone; the exporters failed only with retryable outcomes.
      const drainAt = Math.min(sigtermAt, drainStarted!.time);
      const rawAttempts = raw.attempts;
      expect(rawAttempts.filter((a) => ![200, 503, 0].includes(a.status))).toEqual([]);
      const afterDrain = rawAttempts.filter((a) => a.startedAt >= drainAt);
      const exportFailures = ledger.exports.filter((e) => e.code !== undefined && e.code !== 0);
      expect(exportFailures.filter((e) => typeof e.errorCode === 'number')).toEqual([]); // an HTTP status the exporter does not retry

      // The trial proves something: spans were acknowledged before SIGTERM, and the load was still
      // running at SIGTERM (besides the slow request, in flight by construction).
      const rawAckedBefore = raw.requests.filter(
        (r) => r.acknowledgedAt !== undefined && r.acknowledgedAt < sigtermAt,
      ).length;
      const ackedBefore = ledger.acknowledgedBefore(sigtermAt) + rawAckedBefore * 100;
      const rawInFlight = rawAttempts.filter((a) => a.startedAt < sigtermAt && a.finishedAt >= sigtermAt);
      const exportsInFlight = ledger.exports.filter(
        (e) => e.startedAt < sigtermAt && (e.finishedAt ?? Infinity) >= sigtermAt,
      );
      const inFlightAcknowledged =
        rawInFlight.filter((a) => a.status === 200).length + exportsInFlight.filter((e) => e.code === 0).length;
      expect(ackedBefore).toBeGreaterThan(0);
      expect(rawInFlight.length + exportsInFlight.length + afterDrain.length).toBeGreaterThan(0);

      // Every acknowledged span, of this trial and the earlier ones, is stored exactly once.
      for (const key of ledger.acknowledged.keys()) allAcknowledged.add(key);
      for (const key of raw.acknowledgedKeys()) allAcknowledged.add(key);
      for (const key of slow!.spanKeys) allAcknowledged.add(key);
      const stored = await readStoredSpans((text) => db.query(text));
      const diff = compareAcknowledged(allAcknowledged, stored);
      console.info(
        `[trial ${trial}] exit after ${drainMs} ms; acked before SIGTERM ${ackedBefore} spans; in flight at SIGTERM ` +
          `${rawInFlight.length + exportsInFlight.length} (${inFlightAcknowledged} acked); raw statuses ${tally(rawAttempts.map((a) => a.status))}, ` +
          `after the drain began ${tally(afterDrain.map((a) => `${a.status}${a.retryAfter ? '+Retry-After' : ''}`))}; ` +
          `exports ${ledger.exports.length} (${exportFailures.length} failed: ${tally(exportFailures.map((e) => String(e.errorCode ?? e.errorMessage)))}); ` +
          `acknowledged so far ${diff.acknowledged}, stored ${stored.counts.size}`,
      );
      expect(diff.missing).toEqual([]);
      expect(diff.duplicated).toEqual([]);
      expect(stored.summaryMismatches).toEqual([]);
    },
  );
});
