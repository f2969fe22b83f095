/**
 * Issue #8 / fault catalog row 17 (reference/reliability.md): a rolling restart of three real
 * `tracehouse serve` processes behind the real nginx (production nginx.conf, test rendering) under
 * steady load. Each instance in turn gets SIGTERM, drains and exits 0; a replacement starts on the
 * same port and becomes ready before the next one is stopped. The load is real OpenTelemetry SDK
 * spans through BatchSpanProcessors and the OTLP protobuf exporter (with its own retries), plus the
 * WebSocket exporter, all through nginx over TLS.
 *
 * Checked: every status nginx answered on /v1/traces was 200 or retryable (502/503/504, never a
 * 4xx or 500); every export that failed did so with a retryable error, and its spans, sent again
 * afterwards as an application's retry would, were accepted; at the end every span produced is
 * stored exactly once; and after the restart all three replacements take traffic.
 */
import { context, trace, SpanKind, type Tracer } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { type ClientOptions } from 'ws';
import { WsSpanExporter } from '../../../client/ws-span-exporter.js';
import { ensureDistBuilt } from '../../helpers/build-dist.js';
import { useTestDatabase } from '../../helpers/db.js';
import { renderNginxConfig, startNginx, type RunningNginx } from '../../helpers/nginx.js';
import { spanKey, waitUntil } from '../../helpers/otlp-load.js';
import { ExportLedger, RecordingExporter } from '../../helpers/recording-exporter.js';
import { compareAcknowledged, readStoredSpans } from '../../helpers/stored-spans.js';
import { spawnTracehouse, type ProcessExit, type TracehouseProcess } from '../../helpers/tracehouse-process.js';
import { ExportLoad } from '../../helpers/ws-export-load.js';

const SHUTDOWN_DELAY_MS = 1000;
const DRAIN_TIMEOUT_MS = 10_000;
const PROVIDERS = 3;
const SPANS_PER_TICK = 20; // per provider every TICK_MS: 3 × 20 / 25 ms = 2 400 spans/s
const TICK_MS = 25;
const RETRYABLE_STATUSES = new Set([200, 502, 503, 504]);

const db = useTestDatabase();
const instances: TracehouseProcess[] = [];
const everyProcess: TracehouseProcess[] = [];
let nginx: RunningNginx;

function spawnInstance(port?: number): Promise<TracehouseProcess> {
  return spawnTracehouse({
    DATABASE_URL: db.connectionString,
    LOG_LEVEL: 'info',
    SHUTDOWN_DELAY_MS: String(SHUTDOWN_DELAY_MS),
    DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS),
    ...(port === undefined ? {} : { PORT: String(port) }),
  }).then((instance) => {
    everyProcess.push(instance);
    return instance;
  });
}

beforeAll(async () => {
  await ensureDistBuilt();
  instances.push(...(await Promise.all([0, 1, 2].map(() => spawnInstance()))));
  await Promise.all(instances.map((instance) => instance.waitReady(30_000)));
  nginx = await startNginx(await renderNginxConfig(instances.map((instance) => instance.port)));
});

afterAll(async () => {
  await nginx?.stop();
  await Promise.all(everyProcess.map((instance) => instance.stop()));
});

/** Records the key of every span the application ends: what must be stored in the end. */
class ProducedSpans implements SpanProcessor {
  readonly keys = new Set<string>();
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    this.keys.add(spanKey(span.spanContext().traceId, span.spanContext().spanId));
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Keeps the spans of every export that failed, so the test can send them again afterwards. */
class KeepFailures implements SpanExporter {
  readonly failed: Array<{ spans: ReadableSpan[]; error?: Error }> = [];
  constructor(readonly inner: SpanExporter) {}
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) this.failed.push({ spans, error: result.error });
      done(result);
    });
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

function trustingWebSocket(ca: string): typeof WebSocket {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[], options: ClientOptions = {}) {
      super(url, protocols, { ca, perMessageDeflate: false, ...options });
    }
  } as typeof WebSocket;
}

function produceTrace(tracer: Tracer, spans: number): void {
  const root = tracer.startSpan('POST /checkout', { kind: SpanKind.SERVER });
  const parent = trace.setSpan(context.active(), root);
  for (let i = 1; i < spans; i++) tracer.startSpan(`charge ${i}`, { kind: SpanKind.CLIENT }, parent).end();
  root.end();
}

function tally(values: Array<string | number | undefined>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[String(value)] = (counts[String(value)] ?? 0) + 1;
  return counts;
}

describe('rolling restart of three instances behind nginx under steady load', () => {
  it('clients see only retryable errors, and every span produced is stored exactly once', async () => {
    const ca = nginx.rendered.caCert;
    const url = `${nginx.url()}/v1/traces`;
    const ledger = new ExportLedger();
    const produced = new ProducedSpans();
    const keepers: KeepFailures[] = [];
    const providers = Array.from({ length: PROVIDERS }, (_, i) => {
      const keeper = new KeepFailures(new OTLPTraceExporter({ url, httpAgentOptions: { ca, keepAlive: true } }));
      keepers.push(keeper);
      return new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': `rolling-${i}` }),
        spanProcessors: [
          produced,
          new BatchSpanProcessor(new RecordingExporter(keeper, ledger), {
            maxQueueSize: 200_000,
            maxExportBatchSize: 256,
            scheduledDelayMillis: 20,
          }),
        ],
      });
    });
    const tracers = providers.map((provider) => provider.getTracer('rolling-restart'));
    const ticker = setInterval(() => tracers.forEach((tracer) => produceTrace(tracer, SPANS_PER_TICK)), TICK_MS);

    let wsStopped = false;
    const wsExporter = new WsSpanExporter({
      url: `${nginx.url().replace('https', 'wss')}/v1/traces/ws`,
      WebSocket: trustingWebSocket(ca),
      reconnectDelayMs: 100,
      maxReconnectDelayMs: 1000,
    });
    const wsLoad = new ExportLoad(wsExporter, {
      exports: 1_000_000,
      spansPerExport: 10,
      concurrency: 4,
      stopWhen: () => wsStopped,
    });
    const wsRun = wsLoad.run();

    const exits: Array<ProcessExit & { drainMs: number; port: number }> = [];
    const restartTimes: number[] = [];
    let lastReadyLogIndex = 0;
    try {
      await waitUntil(() => ledger.acknowledged.size >= 2000, 20_000, '2000 acknowledged spans before the restart');
      for (let i = 0; i < instances.length; i++) {
        const old = instances[i];
        const startedAt = Date.now();
        old.child.kill('SIGTERM');
        const exit = await old.waitExit(SHUTDOWN_DELAY_MS + DRAIN_TIMEOUT_MS + 5000);
        expect(exit, `instance ${i} exited after SIGTERM`).toBeDefined();
        exits.push({ ...exit!, drainMs: exit!.at - startedAt, port: old.port });
        const replacement = await spawnInstance(old.port);
        await replacement.waitReady(30_000);
        instances[i] = replacement;
        restartTimes.push(Date.now() - startedAt);
        const ackedNow = ledger.acknowledged.size;
        await waitUntil(() => ledger.acknowledged.size >= ackedNow + 1000, 20_000, 'ingest to go on after a restart');
      }
      // Past nginx's fail_timeout (5 s) every replacement is back in the rotation.
      lastReadyLogIndex = (await nginx.accessLog()).length;
      await new Promise((resolve) => setTimeout(resolve, 6000));
    } finally {
      clearInterval(ticker);
      wsStopped = true;
      await Promise.all(providers.map((provider) => provider.shutdown().catch(() => undefined)));
      await wsRun;
      await wsExporter.shutdown();
    }

    // An application retries what its exporter gave up on: send those spans again, through nginx.
    const failed = keepers.flatMap((keeper) => keeper.failed);
    const resender = new RecordingExporter(new OTLPTraceExporter({ url, httpAgentOptions: { ca } }), ledger);
    for (const { spans } of failed) {
      const code = await new Promise<ExportResultCode>((resolve) => resender.export(spans, (r) => resolve(r.code)));
      expect(code, 'a resent export').toBe(ExportResultCode.SUCCESS);
    }
    await resender.shutdown();

    // Every instance drained and exited cleanly, before its deadline.
    for (const exit of exits) {
      expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
      expect(exit.drainMs).toBeLessThan(SHUTDOWN_DELAY_MS + DRAIN_TIMEOUT_MS);
    }
    const errorLogs = everyProcess.flatMap((p) => p.logs.filter((line) => line.level >= 50));
    expect(errorLogs, 'no error logs').toEqual([]);

    // Clients saw only retryable answers: nginx's log of every attempt, and the exporters' verdicts.
    const log = await nginx.accessLog();
    const ingest = log.filter((line) => line.uri === '/v1/traces');
    const statuses = tally(ingest.map((line) => line.status as number));
    expect(ingest.filter((line) => !RETRYABLE_STATUSES.has(line.status as number))).toEqual([]);
    const exportFailures = ledger.exports.filter((e) => e.code !== undefined && e.code !== ExportResultCode.SUCCESS);
    // An OTLPExporterError with a numeric code is an HTTP status the exporter does not retry.
    expect(exportFailures.filter((e) => typeof e.errorCode === 'number')).toEqual([]);
    expect({ failed: wsLoad.failed, errors: wsLoad.errors }).toEqual({ failed: 0, errors: [] });

    // Nothing lost, nothing doubled: every span produced (HTTP) or acknowledged (WebSocket) is stored once.
    const stored = await readStoredSpans((text) => db.query(text));
    const notAcknowledged = [...produced.keys].filter((key) => !ledger.acknowledged.has(key));
    expect(notAcknowledged.slice(0, 10)).toEqual([]);
    const diff = compareAcknowledged([...produced.keys, ...wsLoad.acknowledged], stored);
    expect(diff.missing).toEqual([]);
    expect(diff.duplicated).toEqual([]);
    expect(stored.summaryMismatches).toEqual([]);
    expect(stored.counts.size).toBe(produced.keys.size + wsLoad.acknowledged.size);

    // After the restart all three replacements took traffic through nginx.
    const upstreamsAfter = new Set(log.slice(lastReadyLogIndex).map((line) => line.upstream));
    expect([...upstreamsAfter].sort()).toEqual(instances.map((i) => `127.0.0.1:${i.port}`).sort());

    console.info(
      `[rolling restart] drains ${exits.map((e) => e.drainMs).join('/')} ms, restarts ${restartTimes.join('/')} ms; ` +
        `spans produced ${produced.keys.size} (HTTP) + ${wsLoad.acknowledged.size} (WebSocket), stored ${stored.counts.size}; ` +
        `nginx /v1/traces statuses ${JSON.stringify(statuses)}; upstream statuses ` +
        `${JSON.stringify(tally(ingest.map((l) => l.upstream_status as string)))}; exports ${ledger.exports.length}, ` +
        `failed after the exporter's retries ${exportFailures.length} ${JSON.stringify(tally(exportFailures.map((e) => e.errorMessage)))} ` +
        `(resent: ${failed.length}); WebSocket: ${wsLoad.succeeded} exports, ${wsExporter.stats.connections} connections, ` +
        `close codes ${JSON.stringify(wsExporter.stats.closeCodes)}, ${wsExporter.stats.framesSent - wsExporter.stats.acks} frames resent`,
    );
  }, 120_000);
});
