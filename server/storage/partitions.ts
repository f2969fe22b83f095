/**
 * Daily partitions of `spans` (UTC days, named spans_YYYYMMDD). Creating or dropping a partition
 * takes an ACCESS EXCLUSIVE lock on `spans`, so all DDL is serialized across instances by a
 * transaction-scoped advisory lock and done in short transactions.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { deleteTenantBefore, partitionStats } from './lifecycle.js';
import type { PartitionInfo, PartitionManager, PartitionStats } from './types.js';
import { refreshPartitionStatistics } from './partition-statistics.js';
import { withClient, withTransaction } from './pool.js';
import {
  DELETE_OPERATIONS_LAST_SEEN_BEFORE,
  DELETE_RED_MINUTES_BEFORE,
  DELETE_TRACES_ENDED_BEFORE,
  LOCK_PARTITIONS,
  SELECT_PARTITIONS,
} from './sql.js';

export const MS_PER_DAY = 86_400_000;

/**
 * Today's partition grows all day, and searches read its newest hour: autovacuum re-analyzes it
 * every 2 % of growth (PostgreSQL's default is 10 %), so the planner's statistics keep up with
 * the last hour and it can choose between reading a service's spans newest first and asking the
 * attribute GIN indexes (see storage/search-sql.ts).
 */
const PARTITION_STORAGE_PARAMETERS = 'WITH (autovacuum_analyze_scale_factor = 0.02)';

/** Days since the Unix epoch (UTC) of a millisecond timestamp. */
export function dayOf(ms: number): number {
  return Math.floor(ms / MS_PER_DAY);
}

export function partitionName(day: number): string {
  return `spans_${new Date(day * MS_PER_DAY).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

function boundLiteral(day: number): string {
  return `${new Date(day * MS_PER_DAY).toISOString().slice(0, 10)} 00:00:00+00`;
}

/** Parses `FOR VALUES FROM ('2026-11-23 00:00:00+00') TO ('2026-11-24 00:00:00+00')`. */
export function parsePartitionBound(bound: string): { from: Date; to: Date } | undefined {
  const m = /^FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)$/.exec(bound);
  if (!m) return undefined;
  const from = parseTimestamptz(m[1]);
  const to = parseTimestamptz(m[2]);
  return from && to ? { from, to } : undefined;
}

/** PostgreSQL timestamptz output ('2026-11-23 00:00:00+00', '2026-11-23 05:30:00+05:30') → Date. */
function parseTimestamptz(text: string): Date | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)([+-]\d{2})(?::(\d{2}))?$/.exec(text);
  if (!m) return undefined;
  const date = new Date(`${m[1]}T${m[2]}${m[3]}:${m[4] ?? '00'}`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

export class PgPartitionManager implements PartitionManager {
  readonly #pool: pg.Pool;
  readonly #log: Logger;

  constructor(pool: pg.Pool, log: Logger) {
    this.#pool = pool;
    this.#log = log;
  }

  async ensureRange(from: Date, to: Date): Promise<string[]> {
    const first = dayOf(from.getTime());
    const last = dayOf(to.getTime());
    if (!(last >= first)) return [];
    const created = await withTransaction(this.#pool, async (client) => {
      await client.query(LOCK_PARTITIONS);
      const existing = new Set((await listOn(client)).map((p) => p.name));
      const made: string[] = [];
      for (let day = first; day <= last; day++) {
        const name = partitionName(day);
        if (existing.has(name)) continue;
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${pg.escapeIdentifier(name)} PARTITION OF spans ` +
            `FOR VALUES FROM (${pg.escapeLiteral(boundLiteral(day))}) TO (${pg.escapeLiteral(boundLiteral(day + 1))}) ` +
            PARTITION_STORAGE_PARAMETERS,
        );
        made.push(name);
      }
      return made;
    });
    if (created.length > 0) this.#log.info({ partitions: created }, 'partitions created');
    return created;
  }

  async dropBefore(before: Date): Promise<string[]> {
    const dropped = await withTransaction(this.#pool, async (client) => {
      await client.query(LOCK_PARTITIONS);
      const names: string[] = [];
      for (const p of await listOn(client)) {
        if (p.toExclusive.getTime() > before.getTime()) continue;
        await client.query(`DROP TABLE ${pg.escapeIdentifier(p.schema)}.${pg.escapeIdentifier(p.name)}`);
        names.push(p.name);
      }
      await client.query(DELETE_TRACES_ENDED_BEFORE, [before]);
      await client.query(DELETE_OPERATIONS_LAST_SEEN_BEFORE, [before]);
      await client.query(DELETE_RED_MINUTES_BEFORE, [before]);
      return names;
    });
    if (dropped.length > 0) this.#log.info({ partitions: dropped, before }, 'partitions dropped');
    return dropped;
  }

  async refreshStatistics(at: Date): Promise<string[]> {
    return refreshPartitionStatistics(this.#pool, at);
  }

  async list(): Promise<PartitionInfo[]> {
    const partitions = await withClient(this.#pool, listOn);
    return partitions.map(({ name, fromInclusive, toExclusive }) => ({ name, fromInclusive, toExclusive }));
  }

  stats(options: { exact: boolean }): Promise<PartitionStats[]> {
    return partitionStats(this.#pool, options);
  }

  async deleteTenantBefore(
    tenant: string,
    before: Date,
    options: { dryRun?: boolean; skipEndingBy?: Date } = {},
  ): Promise<number> {
    const deleted = await deleteTenantBefore(this.#pool, tenant, before, options);
    if (deleted > 0 && !options.dryRun) this.#log.info({ tenant, before, deleted }, 'tenant retention: spans deleted');
    return deleted;
  }
}

async function listOn(client: pg.ClientBase): Promise<Array<PartitionInfo & { schema: string }>> {
  const { rows } = await client.query<{ schema: string; name: string; bound: string }>(SELECT_PARTITIONS);
  const out: Array<PartitionInfo & { schema: string }> = [];
  for (const row of rows) {
    const bounds = parsePartitionBound(row.bound);
    if (bounds) out.push({ schema: row.schema, name: row.name, fromInclusive: bounds.from, toExclusive: bounds.to });
  }
  return out.sort((a, b) => a.fromInclusive.getTime() - b.fromInclusive.getTime());
}
