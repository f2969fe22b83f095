/**
 * The SQL behind `tracehouse backup`: one session that fixes the instant a backup describes.
 *
 * State, and why: the session holds (1) the maintenance advisory lock, so partition maintenance
 * neither creates nor drops partitions while pg_dump holds its locks (a queued ACCESS EXCLUSIVE on
 * `spans` would stall ingest behind it), and (2) a REPEATABLE READ transaction that exported its
 * snapshot: pg_dump imports it with --snapshot, and the manifest's row counts and checksums are
 * computed in the same transaction, so the manifest and the dump files describe the same instant
 * while ingest keeps committing. Both are released by close().
 */
import pg from 'pg';
import { parsePartitionBound } from './partitions.js';
import { MAINTENANCE_LOCK_KEY, SELECT_PARTITIONS } from './sql.js';

export interface ServerVersion {
  /** `server_version`, e.g. "15.20 (Debian 15.20-0+deb12u1)". */
  version: string;
  /** `server_version_num`, e.g. 150020. */
  versionNum: number;
  major: number;
}

export interface SnapshotPartition {
  schema: string;
  name: string;
  fromInclusive: Date;
  toExclusive: Date;
}

export interface PartitionMeasure {
  rows: number;
  /** See CHECKSUM_ALGORITHM. */
  checksum: string;
}

/**
 * Name of the per-partition checksum below, recorded in every manifest. The span keys
 * `tenant:trace_id hex:span_id hex:start_time µs` are grouped into 256 buckets by the first byte of
 * the trace id; each bucket's keys, sorted by the primary key (tenant in "C" collation), are joined
 * with newlines and md5-hashed; the checksum is the md5 of the bucket digests in bucket order, each
 * prefixed with its two-hex-digit bucket. Buckets keep each aggregated string to 1/256 of the
 * partition, far below PostgreSQL's 1 GB value limit.
 */
export const CHECKSUM_ALGORITHM = 'md5-pk-by-trace-byte-v1';

const SPAN_KEY_TEXT =
  "tenant || ':' || encode(trace_id, 'hex') || ':' || encode(span_id, 'hex') || ':' || " +
  '(extract(epoch FROM start_time) * 1000000)::bigint';

/** Row count and checksum of one partition (an escaped, schema-qualified name). */
function measurePartitionSql(qualifiedName: string): string {
  return `
WITH buckets AS (
  SELECT get_byte(trace_id, 0) AS bucket, count(*) AS n,
         md5(string_agg(${SPAN_KEY_TEXT}, E'\\n' ORDER BY tenant COLLATE "C", trace_id, span_id, start_time)) AS digest
    FROM ${qualifiedName}
   GROUP BY 1
)
SELECT coalesce(sum(n), 0)::text AS rows,
       md5(coalesce(string_agg(lpad(to_hex(bucket), 2, '0') || digest, '' ORDER BY bucket), '')) AS checksum
  FROM buckets`;
}

export function qualify(schema: string, name: string): string {
  return `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(name)}`;
}

export async function measurePartition(client: pg.ClientBase, schema: string, name: string): Promise<PartitionMeasure> {
  const { rows } = await client.query<{ rows: string; checksum: string }>(measurePartitionSql(qualify(schema, name)));
  return { rows: Number(rows[0].rows), checksum: rows[0].checksum };
}

const SELECT_SERVER_VERSION = `
SELECT current_setting('server_version') AS version, current_setting('server_version_num')::int AS num,
       current_database() AS database`;

export async function readServerVersion(client: pg.ClientBase): Promise<ServerVersion & { database: string }> {
  const { rows } = await client.query<{ version: string; num: number; database: string }>(SELECT_SERVER_VERSION);
  return {
    version: rows[0].version,
    versionNum: rows[0].num,
    major: Math.floor(rows[0].num / 10_000),
    database: rows[0].database,
  };
}

/** Tables of the current schema that are not partitions, with their row counts. */
const SELECT_PLAIN_TABLES = `
SELECT c.relname AS name
  FROM pg_class c
 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND NOT c.relispartition
 ORDER BY 1`;

export async function countPlainTables(client: pg.ClientBase): Promise<Record<string, number>> {
  const { rows } = await client.query<{ name: string }>(SELECT_PLAIN_TABLES);
  const counts: Record<string, number> = {};
  for (const { name } of rows) {
    const result = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${pg.escapeIdentifier(name)}`);
    counts[name] = Number(result.rows[0].n);
  }
  return counts;
}

export async function readMigrationVersions(client: pg.ClientBase): Promise<number[]> {
  const { rows: exists } = await client.query<{ present: boolean }>(
    "SELECT to_regclass('schema_migrations') IS NOT NULL AS present",
  );
  if (!exists[0].present) return [];
  const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
  return rows.map((row) => row.version);
}

export async function listSpanPartitions(client: pg.ClientBase): Promise<SnapshotPartition[]> {
  const { rows } = await client.query<{ schema: string; name: string; bound: string }>(SELECT_PARTITIONS);
  const out: SnapshotPartition[] = [];
  for (const row of rows) {
    const bounds = parsePartitionBound(row.bound);
    if (bounds) out.push({ schema: row.schema, name: row.name, fromInclusive: bounds.from, toExclusive: bounds.to });
  }
  return out.sort((a, b) => a.fromInclusive.getTime() - b.fromInclusive.getTime());
}

/** A dedicated session for long-running ops work: no statement or idle-in-transaction timeout. */
export async function connectOpsSession(connectionString: string, applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString,
    application_name: applicationName,
    options: '-c statement_timeout=0 -c idle_in_transaction_session_timeout=0 -c TimeZone=UTC',
    keepAlive: true,
  });
  // A connection that dies surfaces through the next query; without a listener it would crash us.
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/**
 * Takes the maintenance advisory lock (session level) on `client`, waiting at most waitMs.
 * Returns false when it could not be had in time.
 */
export async function lockMaintenance(client: pg.ClientBase, waitMs: number): Promise<boolean> {
  await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(waitMs))}`);
  try {
    await client.query(`SELECT pg_advisory_lock(${MAINTENANCE_LOCK_KEY})`);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === '55P03') return false; // lock_not_available
    throw err;
  } finally {
    await client.query('SET lock_timeout = 0');
  }
}

export interface BackupSnapshot {
  /** pg_export_snapshot() result, for pg_dump --snapshot. */
  readonly id: string;
  /** Server time of the snapshot (transaction start). */
  readonly takenAt: Date;
  readonly server: ServerVersion;
  readonly database: string;
  /** Applied migration versions, ascending (empty: no tracehouse schema). */
  readonly migrations: number[];
  readonly hasSpans: boolean;
  readonly partitions: SnapshotPartition[];
  /** Row count and checksum of one partition as of the snapshot. */
  measure(partition: SnapshotPartition): Promise<PartitionMeasure>;
  /** Row counts of the non-partition tables as of the snapshot. */
  countTables(): Promise<Record<string, number>>;
  /** Ends the transaction and the session (which releases the lock). Idempotent. */
  close(): Promise<void>;
}

export class MaintenanceBusyError extends Error {}

/**
 * Opens the backup session: maintenance lock, then REPEATABLE READ READ ONLY, `spans` locked in
 * ACCESS SHARE mode before the snapshot is taken (so no partition of the snapshot can be dropped
 * before pg_dump locks it), then pg_export_snapshot().
 */
export async function openBackupSnapshot(
  connectionString: string,
  options: { lockWaitMs: number },
): Promise<BackupSnapshot> {
  const client = await connectOpsSession(connectionString, 'tracehouse-backup');
  try {
    if (!(await lockMaintenance(client, options.lockWaitMs))) {
      throw new MaintenanceBusyError(
        `partition maintenance (or another backup or partitions command) held the maintenance lock for ` +
          `${Math.round(options.lockWaitMs / 1000)} s; try again`,
      );
    }
    const { rows: present } = await client.query<{ spans: boolean }>(
      "SELECT to_regclass('spans') IS NOT NULL AS spans",
    );
    const hasSpans = present[0].spans;
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // The transaction's snapshot is taken by its first SELECT: lock before it.
    if (hasSpans) await client.query('LOCK TABLE spans IN ACCESS SHARE MODE');
    const { rows } = await client.query<{ id: string; at: Date }>('SELECT pg_export_snapshot() AS id, now() AS at');
    const server = await readServerVersion(client);
    const migrations = await readMigrationVersions(client);
    const partitions = hasSpans ? await listSpanPartitions(client) : [];
    let closed: Promise<void> | undefined;
    return {
      id: rows[0].id,
      takenAt: rows[0].at,
      server: { version: server.version, versionNum: server.versionNum, major: server.major },
      database: server.database,
      migrations,
      hasSpans,
      partitions,
      measure: (partition) => measurePartition(client, partition.schema, partition.name),
      countTables: () => countPlainTables(client),
      close: () =>
        (closed ??= (async () => {
          await client.query('COMMIT').catch(() => undefined);
          await client.end().catch(() => undefined);
        })()),
    };
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
}
