/**
 * The SQL of the per-minute RED rollup (`red_minute`, migrations/000004): its bucket bounds, the
 * upsert the span writer runs from the rows it inserted, and the rebuild a restore runs.
 */

/**
 * Upper bounds (ns) of the cumulative duration buckets of red_minute.duration_buckets, the +Inf
 * bucket last. The same as migration 000004's tracehouse_red_bucket_bounds_ms() (a test compares).
 */
export const RED_BUCKET_BOUNDS_NS = [
  500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000, 250_000_000, 500_000_000,
  1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000, 30_000_000_000,
] as const;

/** Concurrent writers upsert red_minute rows of slot pg_backend_pid() % this, so they seldom share a row lock. */
const RED_WRITER_SLOTS = 8;

const RED_BUCKET_SUMS = [
  ...RED_BUCKET_BOUNDS_NS.map((bound) => `coalesce(sum(sampling_weight) FILTER (WHERE duration_ns <= ${bound}), 0)`),
  'sum(sampling_weight)',
].join(',\n             ');

export const RED_MINUTE_COLUMNS =
  '(tenant, minute, service_name, span_name, span_kind, status_code, writer_slot, spans, calls, duration_sum_ms, ' +
  'duration_max_ms, duration_buckets)';

/**
 * The per-minute RED rollup of the spans in `source`, weighted by sampling_weight, in key order
 * like the other upserts (no deadlock). Rows of the same key but another writer_slot belong to
 * other sessions, so two writers committing spans of the same minute and operation do not queue on
 * one row lock.
 */
function insertRedMinutes(source: string, slot: string): string {
  return `
INSERT INTO red_minute AS r ${RED_MINUTE_COLUMNS}
SELECT tenant, date_bin('1 minute', start_time, TIMESTAMPTZ '2000-01-01 00:00:00+00'), service_name, name, kind,
       status_code, ${slot}, count(*), sum(sampling_weight),
       sum(sampling_weight * duration_ns) / 1e6, max(duration_ns) / 1e6,
       ARRAY[${RED_BUCKET_SUMS}]::double precision[]
  FROM ${source}
 GROUP BY 1, 2, 3, 4, 5, 6
 ORDER BY 1, 2, 3, 4, 5, 6`;
}

/** The whole rollup recomputed from every stored span (restore, after a backup without it). */
export const REBUILD_RED_MINUTES = insertRedMinutes('spans', '0');

/** How a batch's minute of an operation merges into the stored one. */
export const RED_ON_CONFLICT = `
ON CONFLICT (tenant, minute, service_name, span_name, span_kind, status_code, writer_slot) DO UPDATE SET
  spans = r.spans + excluded.spans,
  calls = r.calls + excluded.calls,
  duration_sum_ms = r.duration_sum_ms + excluded.duration_sum_ms,
  duration_max_ms = greatest(r.duration_max_ms, excluded.duration_max_ms),
  duration_buckets = tracehouse_add_buckets(r.duration_buckets, excluded.duration_buckets)`;

export const RED_WRITER_SLOT = `pg_backend_pid() % ${RED_WRITER_SLOTS}`;

/** The RED rollup of the newly inserted rows `ins` only, so replays never count twice. */
export const UPSERT_RED_FROM_INS = `${insertRedMinutes('ins', RED_WRITER_SLOT)}
${RED_ON_CONFLICT}`;
