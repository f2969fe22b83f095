import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../server/config.js';
import { PartitionMaintenance } from '../../../server/ops/maintenance.js';
import { createMetrics } from '../../../server/ops/metrics.js';
import { createStorage } from '../../../server/storage/index.js';
import { MAINTENANCE_LOCK_KEY } from '../../../server/storage/sql.js';
import type { Storage } from '../../../server/storage/types.js';
import { useTestDatabase } from '../../helpers/db.js';

const db = useTestDatabase();
const log = pino({ level: 'silent' });
const NOW = Date.parse('2026-03-10T12:00:00Z');
const config = { ...DEFAULTS.storage, retentionDays: 7, partitionsAheadDays: 2 };
let storages: Storage[] = [];

async function makeMaintenance(
  now = NOW,
): Promise<{ maintenance: PartitionMaintenance; storage: Storage; registry: Registry }> {
  const storage = await createStorage({ ...config, connectionString: db.connectionString }, log);
  storages.push(storage);
  const registry = new Registry();
  return {
    maintenance: new PartitionMaintenance(storage, config, createMetrics(registry), log, () => now),
    storage,
    registry,
  };
}

async function partitionNames(): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'spans'::regclass ORDER BY 1`,
  );
  return rows.map((row) => row.name);
}

beforeAll(async () => {
  await db.query('SELECT 1');
});
afterAll(async () => {
  await Promise.all(storages.map((storage) => storage.stop()));
  storages = [];
});

describe('partition maintenance', () => {
  it('creates the daily partitions of the whole accepted window ahead of time', async () => {
    const { maintenance } = await makeMaintenance();
    const result = await maintenance.runOnce();
    expect(result.ran).toBe(true);
    expect(await partitionNames()).toEqual([
      'spans_20260303',
      'spans_20260304',
      'spans_20260305',
      'spans_20260306',
      'spans_20260307',
      'spans_20260308',
      'spans_20260309',
      'spans_20260310',
      'spans_20260311',
      'spans_20260312',
    ]);
    expect((await maintenance.runOnce()).created).toEqual([]);
  });

  it('drops whole partitions and trace summaries past retention as the clock moves on', async () => {
    await db.query(
      `INSERT INTO traces (tenant, trace_id, first_start, last_end, first_start_unix_nano, last_end_unix_nano, span_count)
       VALUES ('t', '\\x0102030405060708090a0b0c0d0e0f10', '2026-03-03T01:00Z', '2026-03-03T01:00:01Z', 0, 0, 1)`,
    );
    const { maintenance, registry } = await makeMaintenance(NOW + 2 * 86_400_000);
    const result = await maintenance.runOnce();
    expect(result.dropped.sort()).toEqual(['spans_20260303', 'spans_20260304']);
    expect(result.created.sort()).toEqual(['spans_20260313', 'spans_20260314']);
    expect((await partitionNames())[0]).toBe('spans_20260305');
    expect((await db.query('SELECT count(*)::int AS n FROM traces')).rows[0].n).toBe(0);
    expect(await registry.getSingleMetricAsString('tracehouse_partitions_dropped_total')).toContain(' 2');
  });

  it('runs on one instance at a time: another holder of the advisory lock makes it skip', async () => {
    const holder = db.pool({ max: 1 });
    const session = await holder.connect();
    try {
      await session.query(`SELECT pg_advisory_lock(${MAINTENANCE_LOCK_KEY})`);
      const { maintenance } = await makeMaintenance(NOW + 10 * 86_400_000);
      expect(await maintenance.runOnce()).toEqual({ ran: false, created: [], dropped: [] });
      await session.query(`SELECT pg_advisory_unlock(${MAINTENANCE_LOCK_KEY})`);
      expect((await maintenance.runOnce()).ran).toBe(true);
    } finally {
      session.release();
    }
  });
});
