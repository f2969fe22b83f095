-- 000007: smaller span rows, with nothing lost.
--
-- 1. spans.end_time and spans.end_time_unix_nano are dropped: the row keeps the exact start and
--    duration_ns, and the end is start_time_unix_nano + duration_ns, as a timestamptz
--    tracehouse_nanos_to_timestamptz(start_time_unix_nano + duration_ns) (defined below).
--    span_view keeps every column it had. duration_ns rather than the end stays a column because
--    searches and dashboards filter on it, and the planner has its statistics only for a column.
--    16 bytes per span row.
-- 2. Span events and links are written without the fields that hold their OTLP default
--    (droppedAttributesCount 0, traceState "", flags 0, attributes {}), as OTLP/JSON itself does;
--    a missing field reads as its default. That is the writer's format, not a schema change: rows
--    stored before keep their explicit defaults and read the same. On the load tests' spans an
--    event takes 139 bytes instead of 180, a link 160 instead of 214.
-- 3. red_minute leaves half of each page free, so the many updates of its rows stay on their page
--    (below). In one protobuf load test run its share fell from 3.1 to 2.1 bytes per span.
--
-- Measured on the realistic spans of the load tests (heap bytes per span, same rows): 374.6 with
-- all columns and explicit defaults, 361.4 without two of the five time columns, 339.9 with both
-- changes.
--
-- Partitions created before this migration keep the dropped columns' bytes until they are
-- dropped by retention (DROP COLUMN only hides them); new partitions never have them. Every
-- instance writing to the database must run this version: an older writer's COPY names the
-- dropped columns, so its writes fail and it answers 503 (clients retry; behind nginx a retry may
-- reach an upgraded instance), and its span reads fail too, until it is replaced, as after 000005.
-- Citus note (DESIGN decision 10): nothing here touches the distribution column.

-- Whole seconds and microseconds apart, so every product stays exact (a bigint times an interval is
-- computed in float8), and only immutable operators, so PostgreSQL inlines it into span_view.
CREATE FUNCTION tracehouse_nanos_to_timestamptz(unix_nano bigint)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ('epoch'::timestamp + (unix_nano / 1000000000) * interval '1 second'
        + ((unix_nano / 1000) % 1000000) * interval '1 microsecond') AT TIME ZONE 'UTC';

COMMENT ON FUNCTION tracehouse_nanos_to_timestamptz(bigint) IS
  'Nanoseconds since the Unix epoch (not before 1970) as a timestamptz, truncated to the microsecond; exact up '
  'to the largest bigint (2262-04-11).';

-- ---- derived time columns ------------------------------------------------------------------------

DROP VIEW span_view;

ALTER TABLE spans
  DROP COLUMN end_time,
  DROP COLUMN end_time_unix_nano;

COMMENT ON COLUMN spans.start_time IS
  'Span start, microsecond precision: floor of start_time_unix_nano / 1000. Partition key. '
  'The end: tracehouse_nanos_to_timestamptz(start_time_unix_nano + duration_ns) (span_view.end_time).';
COMMENT ON COLUMN spans.duration_ns IS
  'Exact duration in nanoseconds; the exact end is start_time_unix_nano + duration_ns (lossless).';
COMMENT ON COLUMN spans.events IS
  'Span events as a JSON array of {timeUnixNano, name, attributes, droppedAttributesCount}; '
  'attributes {} and droppedAttributesCount 0 are left out (since migrations/000007).';
COMMENT ON COLUMN spans.links IS
  'Span links as a JSON array of {traceId, spanId, traceState, flags, attributes, droppedAttributesCount}; '
  'traceState "", flags 0, attributes {} and droppedAttributesCount 0 are left out (since migrations/000007).';

CREATE VIEW span_view WITH (security_invoker = true) AS
SELECT s.tenant,
       encode(s.trace_id, 'hex') AS trace_id,
       encode(s.span_id, 'hex') AS span_id,
       encode(s.parent_span_id, 'hex') AS parent_span_id,
       s.service_name,
       s.name AS span_name,
       (ARRAY['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'])[s.kind + 1] AS span_kind,
       (ARRAY['unset', 'ok', 'error'])[s.status_code + 1] AS status_code,
       s.status_message,
       s.start_time,
       tracehouse_nanos_to_timestamptz(s.start_time_unix_nano + s.duration_ns) AS end_time,
       s.duration_ns / 1e6::double precision AS duration_ms,
       s.parent_span_id IS NULL AS is_root,
       s.sampling_weight,
       coalesce(a.attributes || s.attributes, s.attributes) AS attributes,
       r.attributes AS resource_attributes,
       s.events,
       s.links,
       r.scope_name,
       r.scope_version
  FROM spans s
  LEFT JOIN resources r ON r.tenant = s.tenant AND r.resource_id = s.resource_id
  LEFT JOIN attribute_sets a ON a.tenant = s.tenant AND a.attribute_set_id = s.attribute_set_id;

COMMENT ON VIEW span_view IS
  'Spans in readable form: hex ids, kind and status names, duration in ms, every span attribute (its attribute '
  'set''s and its own), resource attributes joined from resources. Filter on start_time (partition key).';
COMMENT ON COLUMN span_view.span_kind IS 'unspecified, internal, server, client, producer or consumer.';
COMMENT ON COLUMN span_view.status_code IS 'unset, ok or error.';
COMMENT ON COLUMN span_view.end_time IS 'Span end, microsecond precision (floor of the exact nanoseconds).';
COMMENT ON COLUMN span_view.duration_ms IS 'Duration in milliseconds (from the exact nanoseconds).';

-- ---- tenant read access (000002) ------------------------------------------------------------------

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'tracehouse_reader') THEN
    GRANT SELECT ON span_view TO tracehouse_reader;
  END IF;
END
$$;

-- ---- red_minute: room for in-page updates ---------------------------------------------------------
-- Every batch adds to the red_minute rows of its minute and operations, so a row is rewritten
-- many times a minute. With pages left half empty those updates are heap-only (no key changes):
-- the new version stays on its page and the old ones are pruned there, instead of each version
-- taking a new page slot and a primary-key entry until autovacuum comes by.
ALTER TABLE red_minute SET (fillfactor = 50);
