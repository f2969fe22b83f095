/**
 * Fault catalog row 35 (reference/reliability.md): backup during live ingest, restore into a fresh
 * PostgreSQL database, through the real CLI. Real OpenTelemetry exporters keep ingesting into a
 * test server while `tracehouse backup` runs; `tracehouse restore` then loads the backup into an
 * empty database. Every span acknowledged before the backup started must be there, every partition's
 * count and checksum must match the manifest (checked again here, independently of restore's own
 * verification), nothing may appear that the source never held, and the restored database must
 * accept ingest at once with its partitions, indexes and summaries intact.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest, type Manifest } from '../../../server/ops/backup/manifest.js';
import { ensureDistBuilt } from '../../helpers/build-dist.js';
import { useTestDatabase } from '../../helpers/db.js';
import { waitUntil } from '../../helpers/otlp-load.js';
import { compareAcknowledged, readStoredSpans } from '../../helpers/stored-spans.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import {
  dayStart,
  ExportLedger,
  queryOnce,
  readPartitions,
  runTracehouse,
  startProducers,
  useExtraDatabases,
  useTempDirs,
  writeSpansAt,
} from './backup-helpers.js';

const source = useTestDatabase();
const tempDir = useTempDirs();
const extraDatabase = useExtraDatabases();
const servers: TestServer[] = [];

beforeAll(async () => {
  const build = await ensureDistBuilt();
  if (build.diagnostics) console.warn(`tsc reported problems but emitted dist/:\n${build.diagnostics.slice(0, 2000)}`);
});
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

const INDEXES = `
SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY tablename, indexname`;

describe('backup while a real exporter ingests, restore into a fresh database', () => {
  it('restores every span acknowledged before the backup, with matching counts and checksums, ready for ingest', async () => {
    const server = await startTestServer(source.connectionString, {}, { listen: true });
    servers.push(server);
    // Two earlier days of history, so that there are several partitions to check.
    await writeSpansAt(server.storage, dayStart(2) + 3_600_000, { traces: 40, perTrace: 10 });
    await writeSpansAt(server.storage, dayStart(1) + 7_200_000, { traces: 30, perTrace: 10 });
    const ledger = new ExportLedger();
    const producers = startProducers(server.url, ledger, {
      providers: 2,
      spansPerTick: 20,
      tickMs: 20,
      maxSpans: 40_000,
      service: 'round-trip',
    });
    const out = path.join(await tempDir(), 'backup');
    let backupStartedAt = 0;
    let backup;
    try {
      await waitUntil(() => ledger.acknowledged.size >= 3000, 30_000, '3000 acknowledged spans before the backup');
      // +1: acks recorded in this very millisecond also came before the backup (which has not started).
      backupStartedAt = Date.now() + 1;
      backup = await runTracehouse(['backup', '--out', out], { DATABASE_URL: source.connectionString });
      const backupEndedAt = Date.now();
      // Ingest goes on after the backup too.
      await waitUntil(
        () => [...ledger.acknowledged.values()].some((at) => at > backupEndedAt),
        20_000,
        'acknowledgements after the backup',
      );
    } finally {
      await producers.shutdown();
    }
    expect(backup.stderr).toBe('');
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stdout).toContain('backup complete');
    const manifest: Manifest = parseManifest(await readFile(path.join(out, 'manifest.json'), 'utf8'));
    const ackedBefore = [...ledger.acknowledged].filter(([, at]) => at < backupStartedAt).map(([key]) => key);
    const ackedDuring = [...ledger.acknowledged].filter(
      ([, at]) => at >= backupStartedAt && at < backupStartedAt + backup.durationMs,
    );
    expect(ackedBefore.length).toBeGreaterThanOrEqual(3000);
    expect(ackedDuring.length, 'the exporter kept being acknowledged while the backup ran').toBeGreaterThan(0);
    expect(manifest.kind).toBe('full');
    expect(manifest.partitions.length).toBeGreaterThanOrEqual(3);
    expect(manifest.totals.rows).toBeGreaterThanOrEqual(ackedBefore.length);

    // Restore into an empty database, through the CLI.
    const restoredUrl = await extraDatabase({ empty: true });
    const restore = await runTracehouse(['restore', '--from', out], { DATABASE_URL: restoredUrl }, 120_000);
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.stdout).toContain(`VERIFIED: ${manifest.partitions.length} partition(s)`);

    // Every span acknowledged before the backup started is present exactly once; summaries agree.
    const restored = await readStoredSpans(restoredUrl);
    const diff = compareAcknowledged(ackedBefore, restored);
    expect(diff.missing).toEqual([]);
    expect(diff.duplicated).toEqual([]);
    expect(restored.summaryMismatches).toEqual([]);
    // Nothing appears that the source never held.
    const sourceNow = await readStoredSpans(source.connectionString);
    expect([...restored.counts.keys()].filter((key) => !sourceNow.counts.has(key))).toEqual([]);

    // Per-partition counts and checksums, measured here again: 0 mismatching partitions.
    const partitions = await readPartitions(restoredUrl);
    expect([...partitions.keys()]).toEqual(manifest.partitions.map((p) => p.name));
    const mismatching = manifest.partitions.filter(
      (p) => partitions.get(p.name)?.rows !== p.rows || partitions.get(p.name)?.checksum !== p.checksum,
    );
    expect(mismatching).toEqual([]);
    const traces = await queryOnce<{ n: string }>(restoredUrl, 'SELECT count(*)::text AS n FROM traces');
    expect(Number(traces[0].n)).toBe(manifest.catalog.tables.traces);

    // Same indexes, same schema version as the source.
    expect(await queryOnce(restoredUrl, INDEXES)).toEqual(await queryOnce(source.connectionString, INDEXES));
    const versions = await queryOnce<{ version: number }>(
      restoredUrl,
      'SELECT version FROM schema_migrations ORDER BY 1',
    );
    expect(versions.map((row) => row.version)).toEqual(manifest.migrations);

    // The restored database accepts ingest at once, from a real exporter.
    const restoredServer = await startTestServer(restoredUrl, {}, { listen: true });
    servers.push(restoredServer);
    const after = new ExportLedger();
    const more = startProducers(restoredServer.url, after, {
      providers: 1,
      spansPerTick: 10,
      tickMs: 20,
      maxSpans: 500,
      service: 'after-restore',
    });
    try {
      await waitUntil(() => after.acknowledged.size >= 500, 20_000, 'ingest into the restored database');
    } finally {
      await more.shutdown();
    }
    expect(after.exports.filter((e) => e.code !== 0)).toEqual([]);
    const final = await readStoredSpans(restoredUrl);
    expect(compareAcknowledged(after.acknowledged.keys(), final).missing).toEqual([]);
    expect(final.summaryMismatches).toEqual([]);
    console.info(
      `[round trip] acked before backup ${ackedBefore.length}, during ${ackedDuring.length}; backup ${backup.durationMs} ms ` +
        `(${manifest.partitions.length} partitions, ${manifest.totals.rows} spans, ${manifest.totals.bytes} bytes); ` +
        `restore ${restore.durationMs} ms; restored ${restored.counts.size} spans`,
    );
  });
});
