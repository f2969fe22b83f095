/**
 * Disk bytes per stored span after a run: every table of the schema (partitions counted under
 * their partitioned parent) except migrations bookkeeping, each split into heap (main fork),
 * TOAST + free space / visibility maps, and indexes, divided by the number of span rows. The set of
 * tables is discovered from the catalog, so a new side table (resources, rollups, …) is counted
 * without being named here.
 */
import type pg from 'pg';

const EXCLUDED = ['schema_migrations'];

const TABLE_SIZES = `
SELECT coalesce(parent.relname, c.relname) AS name,
       count(*)::int AS relations,
       sum(pg_relation_size(c.oid, 'main'))::bigint AS heap,
       sum(pg_table_size(c.oid) - pg_relation_size(c.oid, 'main'))::bigint AS toast,
       sum(pg_indexes_size(c.oid))::bigint AS indexes,
       sum(pg_total_relation_size(c.oid))::bigint AS total
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
  LEFT JOIN pg_class parent ON parent.oid = i.inhparent
 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm') AND NOT (c.relname = ANY($1))
 GROUP BY 1
 ORDER BY total DESC, name`;

/** Indexes by their partitioned parent's name (a partition's index is counted under it). */
const INDEX_SIZES = `
SELECT coalesce(tp.relname, tc.relname) AS table_name,
       coalesce(ip.relname, ic.relname) AS name,
       sum(pg_relation_size(ic.oid))::bigint AS bytes
  FROM pg_index x
  JOIN pg_class ic ON ic.oid = x.indexrelid
  JOIN pg_namespace n ON n.oid = ic.relnamespace
  JOIN pg_class tc ON tc.oid = x.indrelid
  LEFT JOIN pg_inherits ti ON ti.inhrelid = tc.oid
  LEFT JOIN pg_class tp ON tp.oid = ti.inhparent
  LEFT JOIN pg_inherits ii ON ii.inhrelid = ic.oid
  LEFT JOIN pg_class ip ON ip.oid = ii.inhparent
 WHERE n.nspname = current_schema() AND NOT (coalesce(tp.relname, tc.relname) = ANY($1))
 GROUP BY 1, 2
 ORDER BY bytes DESC, name`;

export interface IndexSize {
  table: string;
  name: string;
  bytes: number;
}

export interface TableSize {
  name: string;
  relations: number;
  heap: number;
  toast: number;
  indexes: number;
  total: number;
}

export interface StorageCost {
  spans: number;
  totalBytes: number;
  bytesPerSpan: number;
  tables: TableSize[];
  indexes: IndexSize[];
}

export async function measureStorageCost(db: pg.ClientBase | pg.Pool): Promise<StorageCost> {
  const spans = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM spans')).rows[0].n);
  const { rows } = await db.query<Record<keyof TableSize, string>>(TABLE_SIZES, [EXCLUDED]);
  const tables = rows.map((r) => ({
    name: r.name,
    relations: Number(r.relations),
    heap: Number(r.heap),
    toast: Number(r.toast),
    indexes: Number(r.indexes),
    total: Number(r.total),
  }));
  const indexRows = await db.query<{ table_name: string; name: string; bytes: string }>(INDEX_SIZES, [EXCLUDED]);
  const indexes = indexRows.rows.map((r) => ({ table: r.table_name, name: r.name, bytes: Number(r.bytes) }));
  const totalBytes = tables.reduce((sum, t) => sum + t.total, 0);
  return { spans, totalBytes, bytesPerSpan: spans > 0 ? totalBytes / spans : Number.NaN, tables, indexes };
}

/** The breakdown as aligned text lines (bytes per span per table and part). */
export function formatStorageCost(cost: StorageCost): string[] {
  const per = (n: number): string => (cost.spans > 0 ? (n / cost.spans).toFixed(1) : 'n/a').padStart(8);
  const lines = [
    `storage: ${cost.bytesPerSpan.toFixed(1)} B/span (${cost.totalBytes} bytes over ${cost.spans} span rows)`,
    `  ${'table'.padEnd(26)} ${'rels'.padStart(4)} ${'heap'.padStart(8)} ${'toast+'.padStart(8)} ${'indexes'.padStart(8)} ${'total'.padStart(8)}  (B/span)`,
  ];
  for (const t of cost.tables) {
    lines.push(
      `  ${t.name.padEnd(26)} ${String(t.relations).padStart(4)} ${per(t.heap)} ${per(t.toast)} ${per(t.indexes)} ${per(t.total)}`,
    );
  }
  const large = cost.indexes.filter((x) => x.bytes >= cost.spans); // ≥ 1 B/span
  if (large.length > 0) lines.push(`  indexes of ≥ 1 B/span:`);
  for (const x of large) lines.push(`    ${`${x.table}.${x.name}`.padEnd(52)} ${per(x.bytes)}`);
  return lines;
}
