/**
 * A backup taken at an older schema (000006: spans still had end_time and end_time_unix_nano, which
 * migrations/000007 dropped) restores with this tracehouse, both as a whole database (a backup of
 * chosen days, whose trace summaries the restore rebuilds once it has migrated the schema) and day
 * by day into a live database (the staging table takes the older columns and ignores them).
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runOpsCommand } from '../../../server/cli-ops.js';
import { loadConfig } from '../../../server/config.js';
import { knownSchemaVersion } from '../../../server/ops/backup/versions.js';
import { useTestDatabase } from '../../helpers/db.js';
import { CREATE_PARTITION_20300115, migrateUpTo, SUMMARIZE_BEFORE_000007 } from '../../helpers/older-schema.js';
import { captureIo, queryOnce, useExtraDatabases, useTempDirs } from './backup-helpers.js';

const oldDb = useTestDatabase({ empty: true });
const liveDb = useTestDatabase();
const tempDir = useTempDirs();
const extraDatabase = useExtraDatabases();

const DAY = '2030-01-15';
const START_NS = 1_894_701_600_123_456_789n; // 2030-01-15 10:00:00.123456789 UTC
const SPANS = 4;
let backupDir: string;

async function run(command: string, args: string[], databaseUrl: string): Promise<{ code: number; err: string }> {
  const io = captureIo();
  const code = await runOpsCommand(command, args, loadConfig({}, { storage: { databaseUrl } }), io);
  return { code, err: io.err() + io.out() };
}

/** What span_view shows of the test trace, and its rebuilt summary. */
async function readBack(url: string): Promise<{ spans: unknown[]; summary: unknown[] }> {
  const spans = await queryOnce(
    url,
    `SELECT span_id, end_time, duration_ms FROM span_view WHERE tenant = 'old' ORDER BY span_id`,
  );
  const summary = await queryOnce(
    url,
    `SELECT span_count::int, last_end, last_end_unix_nano::text FROM traces WHERE tenant = 'old'`,
  );
  return { spans: spans.map((r) => ({ ...r })), summary: summary.map((r) => ({ ...r })) };
}

beforeAll(async () => {
  // A database at schema 6, with one trace stored as a 000006 writer stored it.
  await migrateUpTo(oldDb.connectionString, 6);
  await oldDb.query(CREATE_PARTITION_20300115);
  await oldDb.query(
    `INSERT INTO spans (tenant, trace_id, span_id, parent_span_id, name, kind, service_name, start_time, end_time,
                        start_time_unix_nano, end_time_unix_nano, duration_ns, status_code, resource_id)
     SELECT 'old', decode(repeat('ab', 16), 'hex'), decode(lpad(to_hex(g), 16, '0'), 'hex'),
            CASE WHEN g = 1 THEN NULL ELSE decode(lpad(to_hex(1), 16, '0'), 'hex') END, 'op', 2, 'svc',
            'epoch'::timestamptz + (s / 1000) * interval '1 microsecond',
            'epoch'::timestamptz + ((s + d) / 1000) * interval '1 microsecond', s, s + d, d, 0, 0
       FROM generate_series(1, ${SPANS}) AS g,
            LATERAL (SELECT ${START_NS}::bigint + g * 1000 AS s, 1000000007::bigint * g AS d) x`,
  );
  await oldDb.query(SUMMARIZE_BEFORE_000007);
  backupDir = path.join(await tempDir(), 'v6-day');
  const backup = await run('backup', ['--out', backupDir, '--partition', DAY], oldDb.connectionString);
  expect(backup.code, backup.err).toBe(0);
});

describe('a backup taken before migration 000007', () => {
  it('restores as a whole database: migrated, summaries rebuilt, ends and durations as they were', async () => {
    const before = await readBack(oldDb.connectionString);
    expect(before.spans).toHaveLength(SPANS);
    const target = await extraDatabase({ empty: true });
    const restored = await run('restore', ['--from', backupDir], target);
    expect(restored.code, restored.err).toBe(0);
    expect(await readBack(target)).toEqual(before);
  });

  it('restores day by day into a live database at the current schema', async () => {
    const restored = await run('restore', ['--from', backupDir, '--partition', DAY], liveDb.connectionString);
    expect(restored.code, restored.err).toBe(0);
    expect(await readBack(liveDb.connectionString)).toEqual(await readBack(oldDb.connectionString));
  });

  it('refuses a day restore into a database whose schema is older than this tracehouse', async () => {
    const refused = await run('restore', ['--from', backupDir, '--partition', DAY], oldDb.connectionString);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain(
      `schema version 6, older than this tracehouse's ${knownSchemaVersion()}: run \`tracehouse migrate\``,
    );
  });
});
