/**
 * Restoring day partitions into a live database that keeps ingesting (issue #7): a day that
 * retention dropped comes back exactly (count and checksum as in the manifest), its trace summaries
 * become exact again (including a trace that crossed midnight into a day retention kept), and
 * nothing else changes: the other days keep their checksums, and today's partition only gains what
 * the exporter had acknowledged. A day that differs is refused unless --merge or --replace says how.
 * Commands run in-process through the CLI entry (runOpsCommand), as `tracehouse …` would run them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOpsCommand } from '../../../server/cli-ops.js';
import { loadConfig, type Config } from '../../../server/config.js';
import { parseManifest, type Manifest } from '../../../server/ops/backup/manifest.js';
import { partitionName, dayOf } from '../../../server/storage/partitions.js';
import { createDatabase, databaseUrl, dropDatabase, newDatabaseName, useTestDatabase } from '../../helpers/db.js';
import { spanKey, waitUntil } from '../../helpers/otlp-load.js';
import { readStoredSpans } from '../../helpers/stored-spans.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { makeTrace } from '../storage/span-rows.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  captureIo,
  dayStart,
  ExportLedger,
  queryOnce,
  readPartitions,
  startProducers,
  useTempDirs,
  writeSpansAt,
  type PartitionState,
} from './backup-helpers.js';

const db = useTestDatabase();
const tempDir = useTempDirs();
let server: TestServer;
let config: Config;
let backupDir: string;
let manifest: Manifest;

const D3 = dayStart(3);
const D2 = dayStart(2);
const D1 = dayStart(1);
const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
const nameOf = (ms: number): string => partitionName(dayOf(ms));

async function run(command: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo();
  const code = await runOpsCommand(command, args, config, io);
  return { code, out: io.out(), err: io.err() };
}

async function keysOf(partition: string): Promise<Set<string>> {
  const rows = await queryOnce<{ key: string }>(
    db.connectionString,
    `SELECT encode(trace_id, 'hex') || ':' || encode(span_id, 'hex') AS key FROM ${partition}`,
  );
  return new Set(rows.map((row) => row.key));
}

beforeAll(async () => {
  config = loadConfig({}, { storage: { databaseUrl: db.connectionString } });
  server = await startTestServer(db.connectionString, {}, { listen: true });
  await writeSpansAt(server.storage, D3 + 3_600_000, { traces: 40, perTrace: 8 });
  await writeSpansAt(server.storage, D3 + 7_200_000, {
    traces: 10,
    perTrace: 4,
    tenant: 'acme',
    serviceName: 'acme-billing',
  });
  // A trace across midnight: two spans on D3, three on D2; its shared attributes in attribute_sets.
  await server.storage.writer.write([
    {
      tenant: 'default',
      rows: makeTrace(5, {
        startTimeUnixNano: BigInt(D2 - 2) * 1_000_000n,
        serviceName: 'midnight',
        sharedAttributes: '{"http.route":"/midnight"}',
      }),
    },
  ]);
  await writeSpansAt(server.storage, D2 + 3_600_000, { traces: 30, perTrace: 8 });
  await writeSpansAt(server.storage, D1 + 3_600_000, { traces: 20, perTrace: 8 });
  backupDir = await tempDir();
});
afterAll(async () => {
  await server?.close();
});

describe('restore of one day into a live database', () => {
  it('brings back a day that retention dropped while ingest goes on, and changes nothing else', async () => {
    const ledger = new ExportLedger();
    const producers = startProducers(server.url, ledger, {
      providers: 2,
      spansPerTick: 10,
      tickMs: 20,
      maxSpans: 20_000,
      service: 'live',
    });
    let restore;
    let before: Map<string, PartitionState>;
    let todayBefore: Set<string>;
    try {
      await waitUntil(() => ledger.acknowledged.size >= 1000, 30_000, 'live ingest');
      const backup = await run('backup', ['--out', path.join(backupDir, 'b')]);
      expect(backup.code, backup.err).toBe(0);
      manifest = parseManifest(await readFile(path.join(backupDir, 'b', 'manifest.json'), 'utf8'));

      // Retention drops D3 (and the summaries of traces that ended before D2).
      expect(await server.storage.partitions.dropBefore(new Date(D2))).toEqual([nameOf(D3)]);
      const stale = await readStoredSpans(db.connectionString);
      expect(stale.summaryMismatches.map((m) => m.summary_count)).toEqual([5]); // the midnight trace
      before = await readPartitions(db.connectionString);
      todayBefore = await keysOf(nameOf(Date.now()));

      restore = await run('restore', ['--from', path.join(backupDir, 'b'), '--partition', isoDay(D3)]);
      await waitUntil(
        () => [...ledger.acknowledged.values()].some((at) => at > Date.now() - 100),
        10_000,
        'ingest still acknowledged after the restore',
      );
    } finally {
      await producers.shutdown();
    }
    expect(restore.code, restore.err).toBe(0);
    expect(restore.out).toContain(`VERIFIED ${nameOf(D3)}: 362 spans added`);
    expect(restore.err).toBe('');

    const after = await readPartitions(db.connectionString);
    const expected = manifest.partitions.find((p) => p.name === nameOf(D3))!;
    expect(after.get(nameOf(D3))).toEqual({ rows: expected.rows, checksum: expected.checksum });
    expect(expected.rows).toBe(40 * 8 + 10 * 4 + 2);
    // The other old days did not change at all.
    for (const day of [D2, D1]) expect(after.get(nameOf(day))).toEqual(before.get(nameOf(day)));
    // Today only gained spans the exporter had acknowledged (none from the backup).
    const todayAfter = await keysOf(nameOf(Date.now()));
    expect([...todayBefore].filter((key) => !todayAfter.has(key))).toEqual([]);
    const acknowledged = new Set(ledger.acknowledged.keys());
    expect([...todayAfter].filter((key) => !todayBefore.has(key) && !acknowledged.has(key))).toEqual([]);
    // Every acknowledged span is stored once; every summary is exact again, the midnight trace included.
    const stored = await readStoredSpans(db.connectionString);
    expect([...acknowledged].filter((key) => stored.counts.get(key) !== 1)).toEqual([]);
    expect(stored.summaryMismatches).toEqual([]);
    const catalog = await queryOnce(
      db.connectionString,
      "SELECT DISTINCT service_name FROM operations WHERE tenant = 'acme'",
    );
    expect(catalog).toEqual([{ service_name: 'acme-billing' }]);

    const again = await run('restore', ['--from', path.join(backupDir, 'b'), '--partition', nameOf(D3)]);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toContain('already identical to the backup: nothing to do');
  });

  it('refuses a day that differs unless --replace or --merge, then makes it exact or complete', async () => {
    const dir = path.join(backupDir, 'b');
    const d2 = nameOf(D2);
    const d1 = nameOf(D1);
    // D2 loses 5 spans and gains a foreign one; D1 loses 7.
    await db.query(`DELETE FROM ${d2} WHERE ctid IN (SELECT ctid FROM ${d2} ORDER BY span_id LIMIT 5)`);
    const foreign = makeTrace(1, { startTimeUnixNano: BigInt(D2 + 60_000) * 1_000_000n, serviceName: 'foreign' });
    await server.storage.writer.write([{ tenant: 'default', rows: foreign }]);
    await db.query(`DELETE FROM ${d1} WHERE ctid IN (SELECT ctid FROM ${d1} ORDER BY span_id LIMIT 7)`);
    const changed = await readPartitions(db.connectionString);

    const refused = await run('restore', ['--from', dir, '--partition', isoDay(D2), '--partition', isoDay(D1)]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain(`${d2} already holds 239 spans that differ from the backup's 243`);
    expect(refused.err).toContain('nothing was written');
    expect(await readPartitions(db.connectionString)).toEqual(changed);

    const dry = await run('restore', ['--from', dir, '--partition', isoDay(D2), '--replace', '--dry-run']);
    expect(dry.code, dry.err).toBe(0);
    expect(dry.out).toContain('dry run: nothing was written');
    expect(dry.out).toContain('DELETE them, then load the backup');
    expect(await readPartitions(db.connectionString)).toEqual(changed);

    const replaced = await run('restore', ['--from', dir, '--partition', isoDay(D2), '--replace']);
    expect(replaced.code, replaced.err).toBe(0);
    const merged = await run('restore', ['--from', dir, '--partition', isoDay(D1), '--merge']);
    expect(merged.code, merged.err).toBe(0);
    expect(merged.out).toContain('7 spans added, 153 already present');

    const now = await readPartitions(db.connectionString);
    for (const day of [d2, d1]) {
      const p = manifest.partitions.find((entry) => entry.name === day)!;
      expect(now.get(day), day).toEqual({ rows: p.rows, checksum: p.checksum });
    }
    const stored = await readStoredSpans(db.connectionString);
    expect(stored.counts.has(spanKey(foreign[0].traceId.toString('hex'), foreign[0].spanId.toString('hex')))).toBe(
      false,
    );
    expect(stored.summaryMismatches).toEqual([]);
  });

  it("brings a day's resources and attribute sets along into another database that never saw them", async () => {
    const other = newDatabaseName();
    await createDatabase(other);
    try {
      const otherConfig = loadConfig({}, { storage: { databaseUrl: databaseUrl(other) } });
      const io = captureIo();
      const code = await runOpsCommand(
        'restore',
        ['--from', path.join(backupDir, 'b'), '--partition', isoDay(D3)],
        otherConfig,
        io,
      );
      expect(code, io.err()).toBe(0);
      expect(io.out()).toMatch(/added \d+ resource\(s\) from the backup's catalog/);
      const rows = await queryOnce<{ spans: string; resolved: string; hosts: string[] }>(
        databaseUrl(other),
        `SELECT count(*) AS spans, count(r.resource_id) AS resolved, array_agg(DISTINCT r.attributes ->> 'host.name') AS hosts
           FROM spans s LEFT JOIN resources r USING (tenant, resource_id)`,
      );
      const day = String(40 * 8 + 10 * 4 + 2);
      expect(rows).toEqual([{ spans: day, resolved: day, hosts: ['node-1'] }]);
      expect(io.out()).toMatch(/added \d+ attribute set\(s\) from the backup's catalog/);
      const midnight = await queryOnce<{ attributes: Record<string, unknown> }>(
        databaseUrl(other),
        "SELECT attributes FROM span_view WHERE service_name = 'midnight'",
      );
      expect(midnight.map((row) => row.attributes)).toEqual([
        { 'http.route': '/midnight', 'http.method': 'GET', 'http.status_code': 200 },
        { 'http.route': '/midnight', 'http.method': 'GET', 'http.status_code': 200 },
      ]);
    } finally {
      await dropDatabase(other);
    }
  });
});
