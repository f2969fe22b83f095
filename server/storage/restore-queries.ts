/**
 * The SQL behind `tracehouse restore`, on one dedicated session to the target database: what the
 * target holds, dropping it (only with --replace), loading one day's rows through the writer's own
 * staging path, and rebuilding trace summaries.
 *
 * Day loads reuse the span writer's statements (sql.ts CREATE_STAGE / INSERT_FROM_STAGE): rows go
 * through a TEMP staging table into `spans` with ON CONFLICT DO NOTHING, in primary-key order, and
 * the `traces` and `operations` upserts count only rows actually inserted. So a day restore is
 * idempotent, cannot deadlock with live ingest, and leaves summaries exact.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import pgCopyStreams from 'pg-copy-streams';
import {
  connectOpsSession,
  countPlainTables,
  listSpanPartitions,
  lockMaintenance,
  measurePartition,
  qualify,
  readMigrationVersions,
  readServerVersion,
  type PartitionMeasure,
  type ServerVersion,
  type SnapshotPartition,
} from './backup-queries.js';
import { REBUILD_RED_MINUTES } from './red-sql.js';
import { CREATE_AFFECTED, REBUILD_OPERATIONS, REBUILD_TRACES, RECOMPUTE_AFFECTED_TRACES } from './restore-sql.js';
import { CREATE_STAGE, INSERT_FROM_STAGE } from './sql.js';
import { CATALOG_TABLES, type Catalog } from './write-catalog.js';

export interface TargetObject {
  /** table, partitioned table, view, materialized view, sequence, foreign table, function */
  kind: string;
  /** Schema-qualified and quoted, ready for DROP (functions with their argument types). */
  ident: string;
  name: string;
  /** Rows, for tables: exact for small ones, otherwise from statistics (`estimated`). */
  rows?: number;
  estimated?: boolean;
}

export interface TargetContents {
  objects: TargetObject[];
  migrations: number[];
  partitions: Array<{ name: string; rows: number; estimated: boolean }>;
  /** True when some table holds at least one row. */
  hasRows: boolean;
  /** Sessions of running tracehouse servers (their pools and maintenance) on this database. */
  tracehouseSessions: number;
}

const KIND_NAMES: Record<string, string> = {
  r: 'table',
  p: 'partitioned table',
  v: 'view',
  m: 'materialized view',
  S: 'sequence',
  f: 'foreign table',
};

const DROP_KEYWORD: Record<string, string> = {
  table: 'TABLE',
  'partitioned table': 'TABLE',
  view: 'VIEW',
  'materialized view': 'MATERIALIZED VIEW',
  sequence: 'SEQUENCE',
  'foreign table': 'FOREIGN TABLE',
  function: 'FUNCTION',
  procedure: 'PROCEDURE',
  aggregate: 'AGGREGATE',
};

/** Relations and routines of the current schema, excluding partitions and extension members. */
const SELECT_OBJECTS = `
SELECT c.relkind::text AS kind, c.relname AS name, format('%I.%I', n.nspname, c.relname) AS ident,
       c.reltuples::float8 AS estimate
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.oid = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
   AND NOT c.relispartition
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END, p.proname,
       p.oid::regprocedure::text, NULL
  FROM pg_proc p
 WHERE p.pronamespace = current_schema()::regnamespace
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
 ORDER BY 2`;

const COUNT_TRACEHOUSE_SESSIONS = `
SELECT count(*)::int AS n FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid()
   AND application_name IN ('tracehouse', 'tracehouse-maintenance')`;

/** Tables with at most this many estimated rows are counted exactly. */
const EXACT_COUNT_LIMIT = 100_000;

export interface AclOutcome {
  applied: boolean;
  /** The role named in the statement that does not exist in the target cluster. */
  missingRole?: string;
}

export class RestoreTarget {
  readonly #client: pg.Client;
  #closed: Promise<void> | undefined;

  private constructor(client: pg.Client) {
    this.#client = client;
  }

  static async open(connectionString: string): Promise<RestoreTarget> {
    return new RestoreTarget(await connectOpsSession(connectionString, 'tracehouse-restore'));
  }

  server(): Promise<ServerVersion & { database: string }> {
    return readServerVersion(this.#client);
  }

  migrations(): Promise<number[]> {
    return readMigrationVersions(this.#client);
  }

  async describe(): Promise<TargetContents> {
    const { rows } = await this.#client.query<{ kind: string; name: string; ident: string; estimate: number | null }>(
      SELECT_OBJECTS,
    );
    const objects: TargetObject[] = [];
    let hasRows = false;
    for (const row of rows) {
      const kind = KIND_NAMES[row.kind] ?? row.kind;
      const object: TargetObject = { kind, ident: row.ident, name: row.name };
      if (row.kind === 'r' || row.kind === 'p') {
        const { rows: found } = await this.#client.query<{ present: boolean }>(
          `SELECT EXISTS (SELECT 1 FROM ${row.ident}) AS present`,
        );
        const counted = found[0].present
          ? await this.#countRows(row.ident, row.kind === 'p' ? -1 : (row.estimate ?? -1))
          : { rows: 0, estimated: false };
        hasRows ||= found[0].present;
        Object.assign(object, counted);
      }
      objects.push(object);
    }
    const migrations = await this.migrations();
    const partitions: TargetContents['partitions'] = [];
    if (objects.some((o) => o.name === 'spans' && o.kind === 'partitioned table')) {
      for (const p of await listSpanPartitions(this.#client)) {
        partitions.push({ name: p.name, ...(await this.#countRows(qualify(p.schema, p.name), -1)) });
      }
    }
    const { rows: sessions } = await this.#client.query<{ n: number }>(COUNT_TRACEHOUSE_SESSIONS);
    return { objects, migrations, partitions, hasRows, tracehouseSessions: sessions[0].n };
  }

  async #countRows(ident: string, estimate: number): Promise<{ rows: number; estimated: boolean }> {
    let guess = estimate;
    if (guess < 0) {
      const { rows } = await this.#client.query<{ estimate: number }>(
        `SELECT coalesce((SELECT sum(greatest(c.reltuples, 0))::float8 FROM pg_class c
                           WHERE c.oid = ANY (ARRAY(SELECT relid FROM pg_partition_tree($1::regclass)))), 0) AS estimate`,
        [ident],
      );
      guess = rows[0].estimate;
    }
    if (guess > EXACT_COUNT_LIMIT) return { rows: Math.round(guess), estimated: true };
    const { rows } = await this.#client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${ident}`);
    return { rows: Number(rows[0].n), estimated: false };
  }

  /** Drops the given objects (CASCADE: partitions, indexes and policies go with their tables). */
  async dropObjects(objects: readonly TargetObject[]): Promise<void> {
    await this.#client.query('BEGIN');
    try {
      for (const object of objects) {
        const keyword = DROP_KEYWORD[object.kind];
        if (!keyword) throw new Error(`do not know how to drop a ${object.kind} (${object.ident})`);
        await this.#client.query(`DROP ${keyword} IF EXISTS ${object.ident} CASCADE`);
      }
      await this.#client.query('COMMIT');
    } catch (err) {
      await this.#client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /** Takes the maintenance advisory lock for the rest of the session; false when busy past waitMs. */
  lockMaintenance(waitMs: number): Promise<boolean> {
    return lockMaintenance(this.#client, waitMs);
  }

  async hasSpansTable(): Promise<boolean> {
    const { rows } = await this.#client.query<{ present: boolean }>(
      "SELECT to_regclass('spans') IS NOT NULL AS present",
    );
    return rows[0].present;
  }

  async partitions(): Promise<SnapshotPartition[]> {
    return (await this.hasSpansTable()) ? listSpanPartitions(this.#client) : [];
  }

  measure(partition: Pick<SnapshotPartition, 'schema' | 'name'>): Promise<PartitionMeasure> {
    return measurePartition(this.#client, partition.schema, partition.name);
  }

  countTables(): Promise<Record<string, number>> {
    return countPlainTables(this.#client);
  }

  /** Runs one GRANT / REVOKE from a dump; a grantee role missing from this cluster is reported, not fatal. */
  async applyAcl(statement: string): Promise<AclOutcome> {
    await this.#client.query('SAVEPOINT acl');
    try {
      await this.#client.query(statement);
      await this.#client.query('RELEASE SAVEPOINT acl');
      return { applied: true };
    } catch (err) {
      await this.#client.query('ROLLBACK TO SAVEPOINT acl');
      if ((err as { code?: string }).code !== '42704') throw err; // undefined_object
      const role = /role "([^"]+)" does not exist/.exec((err as Error).message)?.[1];
      return { applied: false, missingRole: role ?? (err as Error).message };
    }
  }

  async begin(): Promise<void> {
    await this.#client.query('BEGIN');
  }

  async commit(): Promise<void> {
    await this.#client.query('COMMIT');
  }

  async rollback(): Promise<void> {
    await this.#client.query('ROLLBACK').catch(() => undefined);
  }

  /**
   * Rebuilds `traces`, `operations` and (when the restored schema has it) `red_minute` from every
   * stored span (after a restore that did not carry them).
   */
  async rebuildSummaries(): Promise<{ traces: number; operations: number; redMinutes: number }> {
    await this.#client.query('BEGIN');
    try {
      await this.#client.query('DELETE FROM traces');
      const traces = await this.#client.query(REBUILD_TRACES);
      await this.#client.query('DELETE FROM operations');
      const operations = await this.#client.query(REBUILD_OPERATIONS);
      let redMinutes = 0;
      const { rows } = await this.#client.query<{ present: boolean }>(
        "SELECT to_regclass('red_minute') IS NOT NULL AS present",
      );
      if (rows[0].present) {
        await this.#client.query('DELETE FROM red_minute');
        redMinutes = (await this.#client.query(REBUILD_RED_MINUTES)).rowCount ?? 0;
      }
      await this.#client.query('COMMIT');
      return { traces: traces.rowCount ?? 0, operations: operations.rowCount ?? 0, redMinutes };
    } catch (err) {
      await this.#client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /**
   * Loads COPY-text rows (one line each, no terminator) through the staging table in one
   * transaction: new rows are inserted (duplicates of stored keys skipped), the operations catalog
   * upserted, and the summaries of every trace in the chunk recomputed exactly from its spans
   * (a trace whose other days survived retention must not count the restored spans twice).
   * `columns` are the dump's column names. Returns how many rows were new.
   */
  async loadStagedRows(columns: readonly string[], lines: readonly string[]): Promise<number> {
    const client = this.#client;
    await client.query(CREATE_STAGE);
    await client.query(CREATE_AFFECTED);
    await client.query('BEGIN');
    try {
      const copy = `COPY pg_temp.th_stage (${columns.map((c) => pg.escapeIdentifier(c)).join(', ')}) FROM STDIN`;
      await pipeline(Readable.from(lines.map((line) => `${line}\n`)), client.query(pgCopyStreams.from(copy)));
      const { rows } = await client.query<{ inserted: number }>(INSERT_FROM_STAGE);
      await client.query('INSERT INTO pg_temp.th_affected SELECT DISTINCT tenant, trace_id FROM pg_temp.th_stage');
      await client.query(RECOMPUTE_AFFECTED_TRACES);
      await client.query('COMMIT');
      return rows[0].inserted;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /**
   * Adds the backup's rows of a catalog table (`resources` or `attribute_sets`: COPY-text lines in
   * `columns` order) that the target lacks, in one transaction; an id names the same resource or
   * attribute set everywhere, so existing rows stay. Returns how many were new.
   */
  async mergeCatalogRows(catalog: Catalog, columns: readonly string[], lines: readonly string[]): Promise<number> {
    const client = this.#client;
    const { table, id } = CATALOG_TABLES[catalog];
    const stage = `th_${table}_stage`;
    await client.query(
      `CREATE TEMP TABLE IF NOT EXISTS ${stage} (LIKE ${table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`,
    );
    await client.query('BEGIN');
    try {
      const list = columns.map((c) => pg.escapeIdentifier(c)).join(', ');
      const copy = `COPY pg_temp.${stage} (${list}) FROM STDIN`;
      await pipeline(Readable.from(lines.map((line) => `${line}\n`)), client.query(pgCopyStreams.from(copy)));
      const { rowCount } = await client.query(
        `INSERT INTO ${table} (${list}) SELECT ${list} FROM pg_temp.${stage} ` +
          `ORDER BY tenant, ${id} ON CONFLICT DO NOTHING`,
      );
      await client.query('COMMIT');
      return rowCount ?? 0;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /**
   * Deletes every row of one partition and makes the summaries of the traces it touched exact
   * again (recomputed from the spans that remain), in one transaction; the RED rollup minutes of
   * those spans go too (a minute's spans all lie in one day partition), so reloading the day counts
   * them once. Returns the rows deleted.
   */
  async emptyPartition(partition: Pick<SnapshotPartition, 'schema' | 'name'>): Promise<number> {
    const client = this.#client;
    await client.query(CREATE_AFFECTED);
    await client.query('BEGIN');
    try {
      const { rows } = await client.query<{ n: string }>(
        `WITH gone AS (DELETE FROM ${qualify(partition.schema, partition.name)} RETURNING tenant, trace_id, start_time),
              noted AS (INSERT INTO pg_temp.th_affected SELECT DISTINCT tenant, trace_id FROM gone),
              red AS (DELETE FROM red_minute
                       WHERE minute >= (SELECT date_bin('1 minute', min(start_time), TIMESTAMPTZ '2000-01-01 00:00:00+00') FROM gone)
                         AND minute <= (SELECT max(start_time) FROM gone))
         SELECT count(*)::text AS n FROM gone`,
      );
      await client.query(RECOMPUTE_AFFECTED_TRACES);
      await client.query('COMMIT');
      return Number(rows[0].n);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  async analyze(): Promise<void> {
    await this.#client.query('ANALYZE');
  }

  close(): Promise<void> {
    this.#closed ??= this.#client.end().catch(() => undefined);
    return this.#closed;
  }
}
