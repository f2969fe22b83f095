/**
 * The SQL of day restores (restore-queries.ts): the trace summaries and the operations catalog
 * recomputed from the stored spans.
 */

export const CREATE_AFFECTED = `
CREATE TEMP TABLE IF NOT EXISTS th_affected (tenant text NOT NULL, trace_id bytea NOT NULL) ON COMMIT DELETE ROWS`;

const TRACE_AGGREGATES = `
SELECT s.tenant, s.trace_id, min(s.start_time), tracehouse_nanos_to_timestamptz(max(s.start_time_unix_nano + s.duration_ns)),
       min(s.start_time_unix_nano), max(s.start_time_unix_nano + s.duration_ns),
       count(*), count(*) FILTER (WHERE s.status_code = 2),
       (array_agg(s.service_name ORDER BY s.start_time_unix_nano, s.span_id) FILTER (WHERE s.parent_span_id IS NULL))[1],
       (array_agg(s.name ORDER BY s.start_time_unix_nano, s.span_id) FILTER (WHERE s.parent_span_id IS NULL))[1],
       now()`;

const TRACE_COLUMNS = `tenant, trace_id, first_start, last_end, first_start_unix_nano, last_end_unix_nano,
  span_count, error_count, root_service_name, root_span_name, updated_at`;

export const REBUILD_TRACES = `
INSERT INTO traces (${TRACE_COLUMNS})
${TRACE_AGGREGATES}
  FROM spans s
 GROUP BY s.tenant, s.trace_id
 ORDER BY s.tenant, s.trace_id`;

export const REBUILD_OPERATIONS = `
INSERT INTO operations (tenant, service_name, span_name, span_kind, first_seen, last_seen)
SELECT tenant, service_name, name, kind, min(start_time), max(start_time)
  FROM spans
 GROUP BY tenant, service_name, name, kind`;

/** Exact summaries for the traces in th_affected: upserted from their spans, deleted when none remain. */
export const RECOMPUTE_AFFECTED_TRACES = `
WITH fresh AS (
  ${TRACE_AGGREGATES}
    FROM spans s
    JOIN pg_temp.th_affected a ON a.tenant = s.tenant AND a.trace_id = s.trace_id
   GROUP BY s.tenant, s.trace_id
), emptied AS (
  DELETE FROM traces t USING pg_temp.th_affected a
   WHERE t.tenant = a.tenant AND t.trace_id = a.trace_id
     AND NOT EXISTS (SELECT 1 FROM spans s WHERE s.tenant = a.tenant AND s.trace_id = a.trace_id)
)
INSERT INTO traces AS t (${TRACE_COLUMNS})
SELECT * FROM fresh
 ORDER BY 1, 2
ON CONFLICT (tenant, trace_id) DO UPDATE SET
  first_start = excluded.first_start, last_end = excluded.last_end,
  first_start_unix_nano = excluded.first_start_unix_nano, last_end_unix_nano = excluded.last_end_unix_nano,
  span_count = excluded.span_count, error_count = excluded.error_count,
  root_service_name = excluded.root_service_name, root_span_name = excluded.root_span_name,
  updated_at = excluded.updated_at`;
