/**
 * Planner statistics for the partitions searches read most: today's (and yesterday's, whose end
 * is still inside "the last hour" after midnight). They grow all day, and a search's plan — read a
 * service's spans newest first, or ask the attribute GIN indexes — depends on the planner knowing
 * how many spans the last hour holds. Autovacuum would re-analyze them, but it may be off (as on
 * this project's CI server) or lag; so tracehouse re-analyzes them itself once they have changed
 * by ANALYZE_FRACTION of their rows (at least ANALYZE_MIN_ROWS) since their last analyze.
 * One instance at a time: the work runs under a transaction-scoped advisory try-lock.
 */
import pg from 'pg';
import { dayOf, partitionName } from './partitions.js';
import { withTransaction } from './pool.js';
import { TRY_STATISTICS_LOCK } from './sql.js';

export const ANALYZE_FRACTION = 0.02;
export const ANALYZE_MIN_ROWS = 5000;

/** Rows changed since the last analyze, and the row estimate, of the named partitions that exist. */
const SELECT_ANALYZE_CANDIDATES = `
SELECT c.relname AS name, coalesce(s.n_mod_since_analyze, 0)::bigint AS changed, greatest(c.reltuples, 0)::bigint AS rows
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
  LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
 WHERE c.relname = ANY($1::text[]) AND c.relkind = 'r'`;

/** ANALYZEs today's and yesterday's partitions where they changed enough; returns those analyzed. */
export async function refreshPartitionStatistics(pool: pg.Pool, at: Date): Promise<string[]> {
  const today = dayOf(at.getTime());
  const names = [partitionName(today), partitionName(today - 1)];
  return withTransaction(pool, async (client) => {
    const { rows: lock } = await client.query<{ locked: boolean }>(TRY_STATISTICS_LOCK);
    if (!lock[0].locked) return [];
    const { rows } = await client.query<{ name: string; changed: string; rows: string }>(SELECT_ANALYZE_CANDIDATES, [
      names,
    ]);
    const analyzed: string[] = [];
    for (const row of rows) {
      const changed = Number(row.changed);
      if (changed < Math.max(ANALYZE_MIN_ROWS, ANALYZE_FRACTION * Number(row.rows))) continue;
      await client.query(`ANALYZE ${pg.escapeIdentifier(row.name)}`);
      analyzed.push(row.name);
    }
    return analyzed;
  });
}
