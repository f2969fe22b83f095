/**
 * Databases as an older tracehouse left them, for the tests of migrations and of restoring older
 * backups: the schema up to a given migration, a day partition, and trace summaries written the
 * way writers did before migrations/000007 (when spans still had end_time).
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { listMigrations, migrate } from '../../server/storage/migrate.js';

/** Applies the shipped migrations up to and including version `last`, and no later one. */
export async function migrateUpTo(connectionString: string, last: number): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'th-migrations-'));
  try {
    for (const m of listMigrations().filter((m) => m.version <= last)) {
      await copyFile(m.file, path.join(dir, path.basename(m.file)));
    }
    await migrate(connectionString, undefined, { dir });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The day partition of 2030-01-15 (the storage tests' BASE_NS), as partition maintenance names it. */
export const CREATE_PARTITION_20300115 = `CREATE TABLE spans_20300115 PARTITION OF spans
  FOR VALUES FROM ('2030-01-15 00:00:00+00') TO ('2030-01-16 00:00:00+00')`;

/** The trace summaries of every stored span, on a schema before migrations/000007 (spans.end_time). */
export const SUMMARIZE_BEFORE_000007 = `
INSERT INTO traces (tenant, trace_id, first_start, last_end, first_start_unix_nano, last_end_unix_nano, span_count)
SELECT tenant, trace_id, min(start_time), max(end_time), min(start_time_unix_nano), max(end_time_unix_nano), count(*)
  FROM spans GROUP BY 1, 2`;
