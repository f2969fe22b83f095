/**
 * The real `tracehouse serve` process under WsSpanExporters that keep streaming:
 * - SIGKILL mid-stream (fault catalog row 16, over WebSocket): restart on the same port; the
 *   exporters reconnect and resend every unacknowledged frame. No acknowledged span is lost and no
 *   span is stored twice (frames committed but not acked before the kill come back as duplicates,
 *   absorbed by the primary key).
 * - SIGTERM mid-stream (row 15): the instance acks what it admitted, closes with 1001 and exits 0;
 *   the exporters reconnect to the next instance (a new process on the same port, as nginx would
 *   send them elsewhere) and every export still succeeds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WsSpanExporter } from '../../../client/ws-span-exporter.js';
import { ensureDistBuilt } from '../../helpers/build-dist.js';
import { useTestDatabase } from '../../helpers/db.js';
import { waitUntil } from '../../helpers/otlp-load.js';
import { compareAcknowledged, readStoredSpans } from '../../helpers/stored-spans.js';
import { spawnTracehouse, type TracehouseProcess } from '../../helpers/tracehouse-process.js';
import { wsUrl } from '../../helpers/ws-client.js';
import { ExportLoad } from '../../helpers/ws-export-load.js';

const EXPORTERS = 3;
const EXPORTS_PER_EXPORTER = 800;
const SPANS_PER_EXPORT = 8;

const db = useTestDatabase();
const processes: TracehouseProcess[] = [];
const exporters: WsSpanExporter[] = [];

beforeAll(async () => {
  const build = await ensureDistBuilt();
  if (build.diagnostics) console.warn(`tsc reported problems but emitted dist/:\n${build.diagnostics.slice(0, 2000)}`);
});
afterAll(async () => {
  await Promise.all(exporters.map((exporter) => exporter.shutdown()));
  await Promise.all(processes.map((process) => process.stop()));
});

async function spawn(env: Record<string, string> = {}): Promise<TracehouseProcess> {
  const server = await spawnTracehouse({ DATABASE_URL: db.connectionString, LOG_LEVEL: 'info', ...env });
  processes.push(server);
  await server.waitReady(30_000);
  return server;
}

function startLoads(url: string): { loads: ExportLoad[]; exporters: WsSpanExporter[]; done: Promise<void> } {
  const mine = Array.from(
    { length: EXPORTERS },
    () =>
      new WsSpanExporter({
        url: wsUrl(url),
        WebSocket,
        timeoutMillis: 45_000, // outlives the restart: nothing is given up
        maxReconnectDelayMs: 400,
      }),
  );
  exporters.push(...mine);
  const loads = mine.map(
    (exporter) =>
      new ExportLoad(exporter, { exports: EXPORTS_PER_EXPORTER, spansPerExport: SPANS_PER_EXPORT, concurrency: 16 }),
  );
  return { loads, exporters: mine, done: Promise.all(loads.map((load) => load.run())).then(() => undefined) };
}

const succeeded = (loads: ExportLoad[]): number => loads.reduce((sum, load) => sum + load.succeeded, 0);

async function expectEveryAckStoredOnce(loads: ExportLoad[]): Promise<void> {
  const acknowledged = new Set(loads.flatMap((load) => [...load.acknowledged]));
  const stored = await readStoredSpans((text) => db.query(text));
  const diff = compareAcknowledged(acknowledged, stored);
  expect(diff.missing).toEqual([]);
  expect(diff.duplicated).toEqual([]);
  expect(stored.summaryMismatches).toEqual([]);
}

describe('WebSocket ingest across process faults', () => {
  it('SIGKILL mid-stream, restart on the same port: exporters resend, no acknowledged span lost, none stored twice', async () => {
    const first = await spawn();
    const { loads, exporters: mine, done } = startLoads(first.url);
    const total = EXPORTERS * EXPORTS_PER_EXPORTER;
    await waitUntil(() => succeeded(loads) >= total / 3, 30_000, 'a third of the exports acknowledged');
    const ackedBeforeKill = new Set(loads.flatMap((load) => [...load.acknowledged]));
    const pendingAtKill = mine.reduce((sum, exporter) => sum + exporter.pending, 0);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 500)); // reconnects fail meanwhile: nothing listens

    const second = await spawn({ PORT: String(first.port) });
    await done;
    const framesSent = mine.reduce((sum, exporter) => sum + exporter.stats.framesSent, 0);
    const metrics = await (await fetch(`${second.url}/metrics`)).text();
    const duplicates = /^tracehouse_spans_duplicate_total\{[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? '0';
    console.info(
      `SIGKILL with ${ackedBeforeKill.size} spans acked and ${pendingAtKill} exports pending; ` +
        `${framesSent - total} frames resent, ${duplicates} spans absorbed as duplicates by the restarted server; ` +
        `close codes ${JSON.stringify(mine.map((e) => e.stats.closeCodes))}`,
    );
    for (const load of loads) expect({ failed: load.failed, errors: load.errors }).toEqual({ failed: 0, errors: [] });
    expect(succeeded(loads)).toBe(total);
    expect(pendingAtKill).toBeGreaterThan(0); // the kill really landed mid-stream
    for (const exporter of mine) {
      expect(exporter.stats.connections).toBeGreaterThanOrEqual(2);
      expect(exporter.stats.unexpectedAcks).toBe(0);
    }
    expect(framesSent).toBeGreaterThan(total); // unacked frames were sent again
    await expectEveryAckStoredOnce(loads);
    for (const key of ackedBeforeKill) expect(loads.some((load) => load.acknowledged.has(key))).toBe(true);
    await second.stop();
  });

  it('SIGTERM mid-stream: acks what it admitted, closes with 1001, exits 0; exporters carry on with the next instance', async () => {
    const first = await spawn({ DRAIN_TIMEOUT_MS: '10000' });
    const { loads, exporters: mine, done } = startLoads(first.url);
    const total = EXPORTERS * EXPORTS_PER_EXPORTER;
    await waitUntil(() => succeeded(loads) >= total / 3, 30_000, 'a third of the exports acknowledged');
    first.child.kill('SIGTERM');
    const exit = await first.waitExit(15_000);
    expect(exit).toMatchObject({ code: 0, signal: null });
    const second = await spawn({ PORT: String(first.port) });
    await done;

    for (const load of loads) expect({ failed: load.failed, errors: load.errors }).toEqual({ failed: 0, errors: [] });
    expect(succeeded(loads)).toBe(total);
    for (const exporter of mine) {
      expect(exporter.stats.closeCodes[1001], 'the first instance said "going away"').toBe(1);
      expect(exporter.stats.unexpectedAcks).toBe(0);
    }
    const logs = first.logs;
    expect(
      logs.filter((line) => line.level >= 50),
      'no error logs',
    ).toEqual([]);
    expect(
      logs.filter((line) => /deadline/.test(line.msg ?? '')),
      'nothing cut off by the drain deadline',
    ).toEqual([]);
    await expectEveryAckStoredOnce(loads);
    await second.stop();
  });
});
