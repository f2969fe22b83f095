/**
 * tracehouse re-analyzes the newest partitions itself once they grew (search plans depend on the
 * planner knowing the last hour), whether or not autovacuum runs; one instance at a time.
 */
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { ANALYZE_MIN_ROWS } from '../../../server/storage/partition-statistics.js';
import { partitionName, dayOf } from '../../../server/storage/partitions.js';
import { STATISTICS_LOCK_KEY } from '../../../server/storage/sql.js';
import type { Storage } from '../../../server/storage/types.js';
import { useTestDatabase } from '../../helpers/db.js';
import { waitUntil } from '../../helpers/otlp-load.js';
import { makeRow } from '../storage/span-rows.js';
import { useStorage } from '../storage/storage-fixture.js';

const db = useTestDatabase();
const newStorage = useStorage(db);
let storage: Storage;
const now = new Date();
const today = partitionName(dayOf(now.getTime()));

async function lastAnalyze(): Promise<Date | null> {
  const { rows } = await db.query('SELECT last_analyze FROM pg_stat_user_tables WHERE relname = $1', [today]);
  return rows[0]?.last_analyze ?? null;
}

beforeAll(async () => {
  storage = await newStorage();
  await storage.partitions.ensureRange(now, now);
});

describe('partition statistics', () => {
  it('leaves a partition that barely changed alone, and analyzes it once it grew', async () => {
    expect(await storage.partitions.refreshStatistics(now)).toEqual([]);
    const startNs = BigInt(now.getTime() - 60_000) * 1_000_000n;
    const rows = Array.from({ length: ANALYZE_MIN_ROWS + 500 }, (_, i) =>
      makeRow({ startTimeUnixNano: startNs + BigInt(i), endTimeUnixNano: startNs + BigInt(i) + 1000n }),
    );
    await storage.writer.write([{ tenant: 'stats', rows }]);
    // Table statistics reach the shared counters within about a second of the commit.
    let analyzed: string[] = [];
    await waitUntil(
      async () => (analyzed = await storage.partitions.refreshStatistics(now)).length > 0,
      10_000,
      'the refresh to see the inserted rows',
      200,
    );
    expect(analyzed).toEqual([today]);
    expect(await lastAnalyze()).not.toBeNull();
    expect(await storage.partitions.refreshStatistics(now)).toEqual([]);
  });

  it('does nothing while another instance holds the statistics lock', async () => {
    const other = new pg.Client({ connectionString: db.connectionString });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(`SELECT pg_advisory_xact_lock(${STATISTICS_LOCK_KEY})`);
      expect(await storage.partitions.refreshStatistics(now)).toEqual([]);
      await other.query('ROLLBACK');
    } finally {
      await other.end();
    }
  });
});
