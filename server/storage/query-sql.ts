/**
 * The SQL the trace reader sends, as named constants (the statements that read a service's newest
 * spans, and those whose conditions vary, are assembled in search-sql.ts). Times travel as
 * timestamptz text with microseconds, ids as bytea, every value as a parameter.
 */

/** operations.last_seen lags the newest span by at most this (OPERATION_REFRESH_INTERVAL in sql.ts). */
export const OPERATION_REFRESH_INTERVAL_MS = 60_000;

/**
 * Columns of a stored span as the reader maps them (rowToSpan in trace-reader.ts): the spans row
 * `s`, its resource `r` and its attribute set `a`, joined by SPAN_JOINS. A span whose resource row
 * is missing (not expected: resources are never deleted) reads with an empty resource rather than
 * not at all; its attributes are its set's and its own (the two share no key).
 */
export const SPAN_COLUMNS_FOR_READ = `
  s.trace_id, s.span_id, s.parent_span_id, s.trace_state, s.flags, s.name, s.kind, s.service_name,
  s.start_time_unix_nano, s.start_time_unix_nano + s.duration_ns AS end_time_unix_nano, s.status_code, s.status_message,
  coalesce(a.attributes || s.attributes, s.attributes)::text AS attributes,
  coalesce(r.attributes::text, '{}') AS resource_attributes,
  coalesce(r.scope_name, '') AS scope_name, coalesce(r.scope_version, '') AS scope_version,
  coalesce(r.scope_attributes::text, '{}') AS scope_attributes,
  s.events::text AS events, s.links::text AS links,
  s.dropped_attributes_count, s.dropped_events_count, s.dropped_links_count`;

/** The span's resource and scope (migrations/000005). */
export const RESOURCE_JOIN = 'LEFT JOIN resources r ON r.tenant = s.tenant AND r.resource_id = s.resource_id';

/** The span's shared attributes (migrations/000006). */
export const ATTRIBUTE_SET_JOIN =
  'LEFT JOIN attribute_sets a ON a.tenant = s.tenant AND a.attribute_set_id = s.attribute_set_id';

/** What SPAN_COLUMNS_FOR_READ reads besides the spans row `s`. */
export const SPAN_JOINS = `${RESOURCE_JOIN}\n  ${ATTRIBUTE_SET_JOIN}`;

/** Columns of a trace summary as the reader maps them (rowToSummary in trace-reader.ts). */
export const SUMMARY_COLUMNS = `
  t.trace_id, t.first_start_unix_nano, t.last_end_unix_nano, t.span_count, t.error_count,
  t.root_service_name, t.root_span_name, t.updated_at`;

/**
 * A whole trace in one round trip: the summary (columns prefixed t_) and every span, the spans
 * read by primary key within [first_start, last_end] of the summary, so at run time every
 * partition the trace does not live in is pruned. No row: no such trace, or its spans are gone.
 * $1 tenant, $2 trace id.
 */
export const SELECT_TRACE = `
SELECT t.first_start_unix_nano AS t_first_start_unix_nano, t.last_end_unix_nano AS t_last_end_unix_nano,
       t.span_count AS t_span_count, t.error_count AS t_error_count, t.root_service_name AS t_root_service_name,
       t.root_span_name AS t_root_span_name, t.updated_at AS t_updated_at,
       ${SPAN_COLUMNS_FOR_READ}
  FROM traces t
  JOIN spans s
    ON s.tenant = t.tenant AND s.trace_id = t.trace_id AND s.start_time >= t.first_start AND s.start_time <= t.last_end
  ${SPAN_JOINS}
 WHERE t.tenant = $1 AND t.trace_id = $2
 ORDER BY s.start_time_unix_nano, s.span_id`;

/**
 * $1 tenant, $2 trace id, $3 / $4 the trace's first start and last end: the time predicate prunes
 * every partition the trace does not live in.
 */
export const SELECT_TRACE_SPANS = `
SELECT ${SPAN_COLUMNS_FOR_READ}
  FROM spans s
  ${SPAN_JOINS}
 WHERE s.tenant = $1 AND s.trace_id = $2 AND s.start_time >= $3::timestamptz AND s.start_time <= $4::timestamptz
 ORDER BY s.start_time_unix_nano, s.span_id`;

/** $1 tenant, $2 trace ids, $3 / $4 the earliest first start and latest last end among them. */
export const SELECT_SPANS_OF_TRACES = `
SELECT ${SPAN_COLUMNS_FOR_READ}
  FROM spans s
  ${SPAN_JOINS}
 WHERE s.tenant = $1 AND s.trace_id = ANY($2::bytea[])
   AND s.start_time >= $3::timestamptz AND s.start_time <= $4::timestamptz
 ORDER BY s.trace_id, s.start_time_unix_nano, s.span_id`;

/** $1 tenant, $2 trace ids, $3 / $4 as SELECT_SPANS_OF_TRACES: spans and errors per service. */
export const SELECT_SERVICE_STATS = `
SELECT s.trace_id, s.service_name, count(*)::int AS span_count,
       count(*) FILTER (WHERE s.status_code = 2)::int AS error_count
  FROM spans s
 WHERE s.tenant = $1 AND s.trace_id = ANY($2::bytea[])
   AND s.start_time >= $3::timestamptz AND s.start_time <= $4::timestamptz
 GROUP BY s.trace_id, s.service_name`;

/**
 * Catalog rows of a tenant, optionally narrowed: $2 / $3 a span-start window (NULL: any time),
 * $4 services, $5 span names, $6 span kinds (NULL: any).
 */
export const SELECT_OPERATIONS = `
SELECT service_name, span_name, span_kind
  FROM operations
 WHERE tenant = $1
   AND ($2::timestamptz IS NULL OR last_seen >= $2::timestamptz - interval '${OPERATION_REFRESH_INTERVAL_MS} milliseconds')
   AND ($3::timestamptz IS NULL OR first_seen <= $3::timestamptz)
   AND ($4::text[] IS NULL OR service_name = ANY($4::text[]))
   AND ($5::text[] IS NULL OR span_name = ANY($5::text[]))
   AND ($6::smallint[] IS NULL OR span_kind = ANY($6::smallint[]))
 ORDER BY service_name, span_name, span_kind`;

/**
 * Service-to-service calls: child spans started in [$2, $3] joined to their parent span, counted per
 * (parent service, child service) when the services differ. The parent is looked up within an hour
 * of the window on either side (a parent outside that is not counted).
 */
export const SELECT_DEPENDENCIES = `
SELECT p.service_name AS parent, c.service_name AS child, count(*)::bigint AS call_count
  FROM spans c
  JOIN spans p
    ON p.tenant = c.tenant AND p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
   AND p.start_time >= $2::timestamptz - interval '1 hour' AND p.start_time <= $3::timestamptz + interval '1 hour'
 WHERE c.tenant = $1 AND c.start_time >= $2::timestamptz AND c.start_time <= $3::timestamptz
   AND c.parent_span_id IS NOT NULL AND p.service_name <> c.service_name
 GROUP BY p.service_name, c.service_name
 ORDER BY p.service_name, c.service_name`;
