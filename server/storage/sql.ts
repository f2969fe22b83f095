/**
 * Every SQL statement storage/ sends, as named constants (the RED rollup's in red-sql.ts). Values always travel as parameters or
 * through COPY; the only text built at run time is partition DDL, from escaped identifiers and
 * literals of dates we computed ourselves.
 */

import { RED_MINUTE_COLUMNS, RED_ON_CONFLICT, RED_WRITER_SLOT, UPSERT_RED_FROM_INS } from './red-sql.js';

/** Advisory lock keys (bigint), one per kind of exclusive work. 0x7468 = 'th'. */
export const MIGRATION_LOCK_KEY = '7468000001';
export const PARTITION_LOCK_KEY = '7468000002';
export const MAINTENANCE_LOCK_KEY = '7468000003';
export const STATISTICS_LOCK_KEY = '7468000004';

// ---- migrations -------------------------------------------------------------------------------

export const LOCK_MIGRATIONS = `SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;

export const CREATE_SCHEMA_MIGRATIONS = `
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    integer     PRIMARY KEY,
  name       text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

export const SELECT_APPLIED_MIGRATIONS = 'SELECT version, name FROM schema_migrations ORDER BY version';

export const INSERT_MIGRATION = 'INSERT INTO schema_migrations (version, name) VALUES ($1, $2)';

// ---- partitions -------------------------------------------------------------------------------

export const LOCK_PARTITIONS = `SELECT pg_advisory_xact_lock(${PARTITION_LOCK_KEY})`;

/** The partitions of `spans` with their bound expressions, e.g. FOR VALUES FROM ('…') TO ('…'). */
export const SELECT_PARTITIONS = `
SELECT n.nspname AS schema, c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE i.inhparent = 'spans'::regclass
 ORDER BY c.relname`;

export const DELETE_TRACES_ENDED_BEFORE = 'DELETE FROM traces WHERE last_end < $1';

/** Catalog rows whose operation has no span left after retention. */
export const DELETE_OPERATIONS_LAST_SEEN_BEFORE = 'DELETE FROM operations WHERE last_seen < $1';

/** RED rollup minutes past retention. */
export const DELETE_RED_MINUTES_BEFORE = 'DELETE FROM red_minute WHERE minute < $1';

// ---- span writer ------------------------------------------------------------------------------

/** Column order of the COPY text rows built by copy-text.ts; must match it exactly. */
export const SPAN_COLUMNS = [
  'tenant',
  'trace_id',
  'span_id',
  'parent_span_id',
  'trace_state',
  'flags',
  'name',
  'kind',
  'service_name',
  'start_time',
  'start_time_unix_nano',
  'duration_ns',
  'status_code',
  'status_message',
  'attributes',
  'events',
  'links',
  'dropped_attributes_count',
  'dropped_events_count',
  'dropped_links_count',
  'sampling_weight',
  'resource_id',
  'attribute_set_id',
] as const;

const COLUMN_LIST = SPAN_COLUMNS.join(', ');

/**
 * The staging table's extra columns: a span's resource and scope (migrations/000005). The writer
 * fills them on the first row of each (tenant, resource_id) in a write and leaves them NULL (\N)
 * elsewhere; rows from backups made before 000005 carry them on every row and no resource_id.
 */
export const STAGE_RESOURCE_COLUMNS = [
  'resource_attributes',
  'scope_name',
  'scope_version',
  'scope_attributes',
] as const;

/**
 * The staging table's last extra column: a span's shared attributes (migrations/000006), filled on
 * the first row of each (tenant, attribute_set_id) in a write, NULL (\N) elsewhere.
 */
export const STAGE_ATTRIBUTE_SET_COLUMN = 'attribute_set';

/** Column order of the writer's COPY text rows (copy-text.ts); must match it exactly. */
export const STAGE_COLUMNS = [...SPAN_COLUMNS, ...STAGE_RESOURCE_COLUMNS, STAGE_ATTRIBUTE_SET_COLUMN] as const;

/** A staged row's resource_id: the writer's, else computed from its resource columns in SQL. */
const STAGED_RESOURCE_ID =
  "coalesce(resource_id, tracehouse_resource_id(resource_attributes, coalesce(scope_name, ''), " +
  "coalesce(scope_version, ''), coalesce(scope_attributes, '{}')))";

const STAGED_SPAN_VALUES = SPAN_COLUMNS.map((c) => (c === 'resource_id' ? STAGED_RESOURCE_ID : c)).join(', ');

/**
 * The per-connection staging table. TEMP: not WAL-logged, invisible to other sessions, gone with
 * the session. ON COMMIT DELETE ROWS: every transaction starts with it empty. INCLUDING DEFAULTS:
 * a COPY without a newer column (a day restored from an older backup) gets its default. end_time
 * and end_time_unix_nano take the columns of backups made before migrations/000007 (the end is
 * start_time_unix_nano + duration_ns); nothing reads them.
 */
export const CREATE_STAGE =
  'CREATE TEMP TABLE IF NOT EXISTS th_stage (LIKE spans INCLUDING DEFAULTS, resource_attributes jsonb, ' +
  'scope_name text, scope_version text, scope_attributes jsonb, attribute_set jsonb, ' +
  'end_time timestamptz, end_time_unix_nano bigint) ON COMMIT DELETE ROWS;\n' +
  'ALTER TABLE pg_temp.th_stage ALTER COLUMN resource_id DROP NOT NULL';

export const COPY_INTO_STAGE = `COPY pg_temp.th_stage (${STAGE_COLUMNS.join(', ')}) FROM STDIN`;

/** COPY straight into spans, text format: the write benchmark's baseline (loadtests/bench-write.ts). */
export const COPY_INTO_SPANS = `COPY spans (${COLUMN_LIST}) FROM STDIN`;

/**
 * COPY straight into spans in binary format (copy-binary.ts): the writer's first attempt (a
 * duplicate key aborts it, and the write falls back to the staging table).
 */
export const COPY_BINARY_INTO_SPANS = `COPY spans (${COLUMN_LIST}) FROM STDIN (FORMAT binary)`;

const TRACES_COLUMNS =
  '(tenant, trace_id, first_start, last_end, first_start_unix_nano, last_end_unix_nano, span_count, error_count, ' +
  'root_service_name, root_span_name, updated_at)';

/** How a batch's summary of a trace merges into the stored one. */
const TRACES_ON_CONFLICT = `
ON CONFLICT (tenant, trace_id) DO UPDATE SET
  first_start = least(t.first_start, excluded.first_start),
  last_end = greatest(t.last_end, excluded.last_end),
  first_start_unix_nano = least(t.first_start_unix_nano, excluded.first_start_unix_nano),
  last_end_unix_nano = greatest(t.last_end_unix_nano, excluded.last_end_unix_nano),
  span_count = t.span_count + excluded.span_count,
  error_count = t.error_count + excluded.error_count,
  root_service_name = coalesce(t.root_service_name, excluded.root_service_name),
  root_span_name = coalesce(t.root_span_name, excluded.root_span_name),
  updated_at = excluded.updated_at`;

/**
 * The trace-summary upsert of one batch's summaries, `rows` giving TRACES_COLUMNS in order. Rows
 * go in key order (tenant, trace_id) so concurrent batches lock summaries in the same order and
 * cannot deadlock. Only new spans may reach it, so replays never inflate span_count.
 */
function upsertTraces(rows: string): string {
  return `
INSERT INTO traces AS t ${TRACES_COLUMNS}
${rows}
 ORDER BY 1, 2
${TRACES_ON_CONFLICT}`;
}

/** The trace summaries of the newly inserted rows `ins` (a CTE defined by the caller). */
const UPSERT_TRACES_FROM_INS = upsertTraces(`
SELECT tenant, trace_id, min(start_time), tracehouse_nanos_to_timestamptz(max(start_time_unix_nano + duration_ns)),
       min(start_time_unix_nano), max(start_time_unix_nano + duration_ns),
       count(*), count(*) FILTER (WHERE status_code = 2),
       (array_agg(service_name ORDER BY start_time_unix_nano, span_id) FILTER (WHERE parent_span_id IS NULL))[1],
       (array_agg(name ORDER BY start_time_unix_nano, span_id) FILTER (WHERE parent_span_id IS NULL))[1],
       now()
  FROM ins
 GROUP BY tenant, trace_id`);

const RETURNING_FOR_TRACES =
  'RETURNING tenant, trace_id, span_id, parent_span_id, name, kind, service_name, start_time, ' +
  'start_time_unix_nano, duration_ns, status_code, sampling_weight';

/**
 * How far operations.last_seen may lag behind the newest span of its operation. The catalog row is
 * rewritten only when a batch moves it forward by more than this, so readers widen their windows by
 * it (OPERATION_REFRESH_INTERVAL_MS in query-sql.ts).
 */
const OPERATION_REFRESH_INTERVAL = "interval '1 minute'";

/** How a batch's first / last sighting of an operation merges into the catalog row. */
const OPERATIONS_ON_CONFLICT = `
ON CONFLICT (tenant, service_name, span_name, span_kind) DO UPDATE SET
  first_seen = least(o.first_seen, excluded.first_seen),
  last_seen = greatest(o.last_seen, excluded.last_seen)`;

/**
 * The service / operation catalog upsert of one batch, `batch` giving (tenant, service_name, name,
 * kind, first_seen, last_seen), one row per operation. Catalog rows that already cover the batch's
 * start times are filtered out before the INSERT, so they are neither written nor locked: under
 * steady traffic a row is rewritten about once per refresh interval, not once per batch, and
 * concurrent batches seldom wait on each other. The rest go in key order, so concurrent batches
 * lock catalog rows in the same order (no deadlock).
 */
function upsertOperations(batch: string): string {
  return `
INSERT INTO operations AS o (tenant, service_name, span_name, span_kind, first_seen, last_seen)
SELECT b.tenant, b.service_name, b.name, b.kind, b.first_seen, b.last_seen
  FROM (${batch}) b
 WHERE NOT EXISTS (
         SELECT 1 FROM operations c
          WHERE c.tenant = b.tenant AND c.service_name = b.service_name AND c.span_name = b.name
            AND c.span_kind = b.kind AND c.first_seen <= b.first_seen
            AND c.last_seen >= b.last_seen - ${OPERATION_REFRESH_INTERVAL})
 ORDER BY b.tenant, b.service_name, b.name, b.kind
${OPERATIONS_ON_CONFLICT}`;
}

const UPSERT_OPERATIONS_FROM_INS = upsertOperations(
  'SELECT tenant, service_name, name, kind, min(start_time) AS first_seen, max(start_time) AS last_seen ' +
    'FROM ins GROUP BY tenant, service_name, name, kind',
);

/**
 * Moves the staged rows into spans, sorted by the primary key (stable lock order between
 * concurrent writers), skipping rows already stored, and upserts the trace summaries, the
 * operations catalog and the per-minute RED rollup from the rows actually inserted. Returns one
 * row: { inserted }.
 */
export const INSERT_FROM_STAGE = `
WITH res AS (
  INSERT INTO resources (tenant, resource_id, attributes, scope_name, scope_version, scope_attributes)
  SELECT DISTINCT ON (tenant, id) tenant, id, resource_attributes, coalesce(scope_name, ''),
         coalesce(scope_version, ''), coalesce(scope_attributes, '{}')
    FROM (SELECT tenant, ${STAGED_RESOURCE_ID} AS id, resource_attributes, scope_name, scope_version, scope_attributes
            FROM pg_temp.th_stage
           WHERE resource_attributes IS NOT NULL) r
   ORDER BY tenant, id
  ON CONFLICT DO NOTHING
), sets AS (
  INSERT INTO attribute_sets (tenant, attribute_set_id, attributes)
  SELECT DISTINCT ON (tenant, attribute_set_id) tenant, attribute_set_id, attribute_set
    FROM pg_temp.th_stage
   WHERE attribute_set IS NOT NULL AND attribute_set_id IS NOT NULL
   ORDER BY tenant, attribute_set_id
  ON CONFLICT DO NOTHING
), ins AS (
  INSERT INTO spans (${COLUMN_LIST})
  SELECT ${STAGED_SPAN_VALUES} FROM pg_temp.th_stage
   ORDER BY tenant, trace_id, span_id, start_time
  ON CONFLICT DO NOTHING
  ${RETURNING_FOR_TRACES}
), summaries AS (${UPSERT_TRACES_FROM_INS}
), catalog AS (${UPSERT_OPERATIONS_FROM_INS}
), red AS (${UPSERT_RED_FROM_INS}
)
SELECT count(*)::int AS inserted FROM ins`;

/**
 * Opens the write transaction. work_mem is raised for it alone so that sorting a large batch by
 * key (for the lock order) stays in memory instead of spilling to a temp file.
 */
export const BEGIN_WRITE = "BEGIN; SET LOCAL work_mem = '64MB'";

/** INSERT_FROM_STAGE and COMMIT in one simple-protocol message: one round trip for both. */
export const INSERT_FROM_STAGE_AND_COMMIT = `${INSERT_FROM_STAGE};\nCOMMIT`;

/**
 * The summaries of a direct COPY into spans, computed by write-summaries.ts and sent as five JSON
 * parameters: $1 resources, $2 traces, $3 operations, $4 RED minutes, $5 attribute sets. Each
 * upsert sorts its rows into the same key order as INSERT_FROM_STAGE does, so the two kinds of
 * write cannot deadlock.
 */
export const UPSERT_SUMMARIES = `
WITH res AS (
  INSERT INTO resources (tenant, resource_id, attributes, scope_name, scope_version, scope_attributes)
  SELECT tenant, id, attributes, scope_name, scope_version, scope_attributes
    FROM json_to_recordset($1::json) AS r(tenant text, id bigint, attributes jsonb, scope_name text,
                                          scope_version text, scope_attributes jsonb)
   ORDER BY tenant, id
  ON CONFLICT DO NOTHING
), sets AS (
  INSERT INTO attribute_sets (tenant, attribute_set_id, attributes)
  SELECT tenant, id, attributes FROM json_to_recordset($5::json) AS a(tenant text, id bigint, attributes jsonb)
   ORDER BY tenant, id
  ON CONFLICT DO NOTHING
), summaries AS (${upsertTraces(`
SELECT tenant, decode(trace_id, 'hex'), first_start, last_end, first_ns, last_ns, spans, errors, root_service, root_name,
       now()
  FROM json_to_recordset($2::json) AS s(tenant text, trace_id text, first_start timestamptz, last_end timestamptz,
                                        first_ns bigint, last_ns bigint, spans bigint, errors bigint,
                                        root_service text, root_name text)`)}
), catalog AS (${upsertOperations(
  'SELECT tenant, service AS service_name, name, kind, first_seen, last_seen ' +
    'FROM json_to_recordset($3::json) AS c(tenant text, service text, name text, kind smallint, ' +
    'first_seen timestamptz, last_seen timestamptz)',
)}
), red AS (
INSERT INTO red_minute AS r ${RED_MINUTE_COLUMNS}
SELECT tenant, minute, service, name, kind, status, ${RED_WRITER_SLOT}, spans, calls, duration_sum_ns / 1e6,
       duration_max_ns / 1e6, buckets
  FROM json_to_recordset($4::json) AS m(tenant text, minute timestamptz, service text, name text, kind smallint,
                                        status smallint, spans bigint, calls double precision,
                                        duration_sum_ns double precision, duration_max_ns bigint,
                                        buckets double precision[])
 ORDER BY 1, 2, 3, 4, 5, 6
${RED_ON_CONFLICT}
)
SELECT 1`;

/** PostgreSQL array types of SPAN_COLUMNS, in order, for the unnest() variant. */
/** Each span column's type: a Record, so the compiler keeps it in step with SPAN_COLUMNS. */
const SPAN_COLUMN_TYPES: Record<(typeof SPAN_COLUMNS)[number], string> = {
  tenant: 'text',
  trace_id: 'bytea',
  span_id: 'bytea',
  parent_span_id: 'bytea',
  trace_state: 'text',
  flags: 'integer',
  name: 'text',
  kind: 'smallint',
  service_name: 'text',
  start_time: 'timestamptz',
  start_time_unix_nano: 'bigint',
  duration_ns: 'bigint',
  status_code: 'smallint',
  status_message: 'text',
  attributes: 'jsonb',
  events: 'jsonb',
  links: 'jsonb',
  dropped_attributes_count: 'integer',
  dropped_events_count: 'integer',
  dropped_links_count: 'integer',
  sampling_weight: 'float8',
  resource_id: 'bigint',
  attribute_set_id: 'bigint',
};

const SPAN_COLUMN_ARRAY_TYPES = SPAN_COLUMNS.map((c) => `${SPAN_COLUMN_TYPES[c]}[]`);

/**
 * The single-statement alternative measured by loadtests/bench-write.ts: one parameter per column
 * (an array), unnest()ed, with the same dedupe and summary upsert (resources and attribute sets not included). Kept here so the benchmark
 * measures exactly the SQL we would ship.
 */
export const INSERT_UNNEST = `
WITH src AS (
  SELECT * FROM unnest(${SPAN_COLUMN_ARRAY_TYPES.map((type, i) => `$${i + 1}::${type}`).join(', ')})
    AS s(${COLUMN_LIST})
), ins AS (
  INSERT INTO spans (${COLUMN_LIST})
  SELECT ${COLUMN_LIST} FROM src
   ORDER BY tenant, trace_id, span_id, start_time
  ON CONFLICT DO NOTHING
  ${RETURNING_FOR_TRACES}
), summaries AS (${UPSERT_TRACES_FROM_INS}
), catalog AS (${UPSERT_OPERATIONS_FROM_INS}
), red AS (${UPSERT_RED_FROM_INS}
)
SELECT count(*)::int AS inserted FROM ins`;

// ---- misc -------------------------------------------------------------------------------------

export const PING = 'SELECT 1';
export const TRY_MAINTENANCE_LOCK = `SELECT pg_try_advisory_lock(${MAINTENANCE_LOCK_KEY}) AS locked`;
export const UNLOCK_MAINTENANCE = `SELECT pg_advisory_unlock(${MAINTENANCE_LOCK_KEY})`;
/** Held for one transaction by the instance refreshing partition statistics (partition-statistics.ts). */
export const TRY_STATISTICS_LOCK = `SELECT pg_try_advisory_xact_lock(${STATISTICS_LOCK_KEY}) AS locked`;
