/**
 * Issue #3, "a stream of at least 10,000 frames from several concurrent connections: every span
 * stored once, every frame acked once" — once through the project's client (WsSpanExporter with
 * real OpenTelemetry ReadableSpans), once through raw connections that count acks per sequence id
 * and mix binary (protobuf) and text (OTLP/JSON) frames.
 */
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WsSpanExporter } from '../../../client/ws-span-exporter.js';
import { useTestDatabase } from '../../helpers/db.js';
import { realisticSpans, toReadableSpans } from '../../helpers/otlp-fixtures.js';
import { spanKey } from '../../helpers/otlp-load.js';
import { counterValue, startTestServer, type TestServer } from '../../helpers/server.js';
import { compareAcknowledged, readStoredSpans } from '../../helpers/stored-spans.js';
import { RawWsClient, binaryFrame, textFrame, wsUrl } from '../../helpers/ws-client.js';
import { ExportLoad } from '../../helpers/ws-export-load.js';

const db = useTestDatabase();
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer(db.connectionString, {}, { listen: true });
});
afterAll(async () => {
  await server?.close();
});

async function expectStoredOnce(acknowledged: Set<string>): Promise<void> {
  const stored = await readStoredSpans((text) => db.query(text));
  const diff = compareAcknowledged(acknowledged, stored);
  expect(diff.missing).toEqual([]);
  expect(diff.duplicated).toEqual([]);
  expect(stored.summaryMismatches).toEqual([]);
}

describe('a stream of 10 000 frames', () => {
  it('through 5 WsSpanExporters: every export succeeds, every frame is acked once, every span stored once', async () => {
    const EXPORTERS = 5;
    const EXPORTS = 2000;
    const committedBefore = await counterValue(server.metrics, 'tracehouse_websocket_frames_total', {
      outcome: 'committed',
    });
    const exporters = Array.from(
      { length: EXPORTERS },
      () => new WsSpanExporter({ url: wsUrl(server.url), WebSocket }),
    );
    const loads = exporters.map(
      (exporter) => new ExportLoad(exporter, { exports: EXPORTS, spansPerExport: 4, concurrency: 32 }),
    );
    const startedAt = Date.now();
    try {
      await Promise.all(loads.map((load) => load.run()));
    } finally {
      await Promise.all(exporters.map((exporter) => exporter.shutdown()));
    }
    const seconds = (Date.now() - startedAt) / 1000;
    console.info(`${EXPORTERS * EXPORTS} exports (${EXPORTERS * EXPORTS * 4} spans) in ${seconds.toFixed(1)} s`);

    for (const [i, load] of loads.entries()) {
      expect({ succeeded: load.succeeded, failed: load.failed, errors: load.errors }, `exporter ${i}`).toEqual({
        succeeded: EXPORTS,
        failed: 0,
        errors: [],
      });
      const { stats } = exporters[i];
      // One frame per export, one ack per frame, nothing resent, no ack for a frame not in flight.
      expect({
        sent: stats.framesSent,
        acks: stats.acks,
        unexpected: stats.unexpectedAcks,
        retries: stats.retries,
      }).toEqual({
        sent: EXPORTS,
        acks: EXPORTS,
        unexpected: 0,
        retries: 0,
      });
    }
    const acknowledged = new Set(loads.flatMap((load) => [...load.acknowledged]));
    expect(acknowledged.size).toBe(EXPORTERS * EXPORTS * 4);
    await expectStoredOnce(acknowledged);
    const committed = await counterValue(server.metrics, 'tracehouse_websocket_frames_total', { outcome: 'committed' });
    expect(committed - committedBefore).toBe(EXPORTERS * EXPORTS);
  });

  it('through 4 raw connections mixing binary and text frames: exactly one 200 ack per sequence id', async () => {
    const CONNECTIONS = 4;
    const FRAMES = 2500;
    const WINDOW = 48;
    const acknowledged = new Set<string>();
    const clients = await Promise.all(
      Array.from({ length: CONNECTIONS }, () => RawWsClient.connect(wsUrl(server.url))),
    );
    try {
      await Promise.all(
        clients.map(async (client, c) => {
          const keys = new Map<number, string[]>();
          let next = 1;
          const sendNext = (): void => {
            if (next > FRAMES) return;
            const seq = next++;
            const spans = realisticSpans(3, { nowMs: Date.now() });
            keys.set(
              seq,
              spans.map((span) => spanKey(span.traceId, span.spanId)),
            );
            const readable = toReadableSpans({ spans });
            client.send(
              seq % 2 === 0
                ? textFrame(seq, new TextDecoder().decode(JsonTraceSerializer.serializeRequest(readable)))
                : binaryFrame(seq, ProtobufTraceSerializer.serializeRequest(readable)!),
            );
          };
          client.socket.on('message', (data) => {
            const { seq, status } = JSON.parse(String(data)) as { seq: number; status: number };
            if (status === 200) for (const key of keys.get(seq) ?? []) acknowledged.add(key);
            sendNext();
          });
          for (let i = 0; i < WINDOW; i++) sendNext();
          await client.waitFor(() => client.acks.length >= FRAMES, 40_000, `${FRAMES} acks on connection ${c}`);
          // Let a stray duplicate ack arrive before counting.
          await new Promise((resolve) => setTimeout(resolve, 50));
          expect(client.acks.length, `acks on connection ${c}`).toBe(FRAMES);
          expect(client.acks.filter((ack) => ack.status !== 200 || ack.accepted !== 3)).toEqual([]);
          for (let seq = 1; seq <= FRAMES; seq++) expect(client.ackCounts.get(seq), `ack count of ${c}/${seq}`).toBe(1);
        }),
      );
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
    expect(acknowledged.size).toBe(CONNECTIONS * FRAMES * 3);
    await expectStoredOnce(acknowledged);
  });
});
