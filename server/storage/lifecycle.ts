/**
 * Partition statistics and per-tenant retention (TENANT_RETENTION_DAYS): a tenant that keeps less
 * than RETENTION_DAYS has its older spans deleted inside the partitions that stay, in bounded
 * batches (one short transaction each, so ingest and vacuum are never held up for long), followed
 * by its trace summaries and catalog rows past the same point, as whole-partition retention does.
 */
import pg from 'pg';
import { parsePartitionBound } from './partitions.js';
import { withClient } from './pool.js';
import { SELECT_PARTITIONS } from './sql.js';
import type { PartitionStats } from './types.js';

const SELECT_PARTITION_STATS = `
SELECT n.nspname AS schema, c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound,
       c.reltuples::float8 AS estimate, pg_total_relation_size(c.oid)::text AS bytes
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE i.inhparent = 'spans'::regclass`;

interface StatsRow {
  schema: string;
  name: string;
  bound: string;
  estimate: number;
  bytes: string;
}

function qualify(schema: string, name: string): string {
  return `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(name)}`;
}

export async function partitionStats(pool: pg.Pool, options: { exact: boolean }): Promise<PartitionStats[]> {
  return withClient(pool, async (client) => {
    const { rows } = await client.query<StatsRow>(SELECT_PARTITION_STATS);
    const out: PartitionStats[] = [];
    for (const row of rows) {
      const bounds = parsePartitionBound(row.bound);
      if (!bounds) continue;
      let rowsCount: number | undefined = row.estimate >= 0 ? Math.round(row.estimate) : undefined;
      if (options.exact) {
        const counted = await client.query<{ n: string }>(
          `SELECT count(*)::text AS n FROM ${qualify(row.schema, row.name)}`,
        );
        rowsCount = Number(counted.rows[0].n);
      }
      out.push({
        name: row.name,
        fromInclusive: bounds.from,
        toExclusive: bounds.to,
        rows: rowsCount,
        exact: options.exact,
        bytes: Number(row.bytes),
      });
    }
    return out.sort((a, b) => a.fromInclusive.getTime() - b.fromInclusive.getTime());
  });
}

const DELETE_TENANT_TRACES_BEFORE = 'DELETE FROM traces WHERE tenant = $1 AND last_end < $2';
const DELETE_TENANT_OPERATIONS_BEFORE = 'DELETE FROM operations WHERE tenant = $1 AND last_seen < $2';
const DELETE_TENANT_RED_MINUTES_BEFORE = 'DELETE FROM red_minute WHERE tenant = $1 AND minute < $2';

/**
 * Deletes (or with dryRun only counts) one tenant's spans that started before `before`. Returns
 * the number of spans.
 */
export async function deleteTenantBefore(
  pool: pg.Pool,
  tenant: string,
  before: Date,
  options: { dryRun?: boolean; skipEndingBy?: Date; batchRows?: number } = {},
): Promise<number> {
  const batchRows = options.batchRows ?? 10_000;
  const { rows } = await pool.query<{ schema: string; name: string; bound: string }>(SELECT_PARTITIONS);
  const touched = rows
    .map((row) => ({ ...row, bounds: parsePartitionBound(row.bound) }))
    .filter((row) => row.bounds && row.bounds.from.getTime() < before.getTime())
    .filter((row) => !options.skipEndingBy || row.bounds!.to.getTime() > options.skipEndingBy.getTime());
  let total = 0;
  for (const partition of touched) {
    const table = qualify(partition.schema, partition.name);
    if (options.dryRun) {
      const counted = await pool.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM ${table} WHERE tenant = $1 AND start_time < $2`,
        [tenant, before],
      );
      total += Number(counted.rows[0].n);
      continue;
    }
    for (;;) {
      const result = await pool.query(
        `DELETE FROM ${table} WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM ${table} WHERE tenant = $1 AND start_time < $2 LIMIT $3))`,
        [tenant, before, batchRows],
      );
      total += result.rowCount ?? 0;
      if ((result.rowCount ?? 0) < batchRows) break;
    }
  }
  if (!options.dryRun) {
    await pool.query(DELETE_TENANT_TRACES_BEFORE, [tenant, before]);
    await pool.query(DELETE_TENANT_OPERATIONS_BEFORE, [tenant, before]);
    await pool.query(DELETE_TENANT_RED_MINUTES_BEFORE, [tenant, before]);
  }
  return total;
}
