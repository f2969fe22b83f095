-- 000004: sampling weights, per-minute RED rollups kept at ingest, and the documented views that
-- Grafana's PostgreSQL datasource reads (README "Schema" and "Span metrics and sampling").
--
-- Forward-only: never edit this file once released.
-- Plain PostgreSQL only (date_bin needs 14+): no TimescaleDB function, so every view works on a
-- stock server and on Citus.

-- ---- sampling weight ---------------------------------------------------------------------------

-- A constant default: PostgreSQL 11+ adds the column without rewriting any partition. No CHECK
-- constraint: one would scan every existing partition here; the writer only ever stores >= 1.
ALTER TABLE spans ADD COLUMN sampling_weight double precision NOT NULL DEFAULT 1;

COMMENT ON COLUMN spans.sampling_weight IS
  'How many spans this one stands for (adjusted count, >= 1): the inverse of the probability it was kept with, '
  'the SDK''s (tracestate ot=th:…) times tracehouse''s own sampler (SAMPLING_RATE). 1 when nothing sampled. '
  'Sum it instead of counting rows to get true traffic.';

-- ---- histogram helpers -------------------------------------------------------------------------

-- The upper bounds (milliseconds) of the duration buckets of red_minute.duration_buckets; the last
-- bucket of the array is +Inf. server/ops/span-metrics.ts uses the same bounds for
-- traces_spanmetrics_latency (a test checks that they agree). Fixed forever: stored arrays depend on it.
CREATE FUNCTION tracehouse_red_bucket_bounds_ms() RETURNS double precision[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY[0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]::double precision[];

COMMENT ON FUNCTION tracehouse_red_bucket_bounds_ms() IS
  'Upper bounds in ms of the cumulative duration buckets of red_minute (one more element, +Inf, ends each array).';

-- Element-wise sum of two bucket arrays. STRICT: as an aggregate's transition function, the first
-- non-NULL array becomes the state.
CREATE FUNCTION tracehouse_add_buckets(a double precision[], b double precision[]) RETURNS double precision[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ARRAY(SELECT coalesce(x, 0) + coalesce(y, 0) FROM unnest(a, b) AS u(x, y));

COMMENT ON FUNCTION tracehouse_add_buckets(double precision[], double precision[]) IS
  'Element-wise sum of two duration bucket arrays.';

CREATE AGGREGATE tracehouse_sum_buckets(double precision[]) (
  SFUNC = tracehouse_add_buckets,
  STYPE = double precision[],
  COMBINEFUNC = tracehouse_add_buckets,
  PARALLEL = SAFE
);

COMMENT ON AGGREGATE tracehouse_sum_buckets(double precision[]) IS
  'Sums duration bucket arrays across rows: tracehouse_histogram_quantile(0.95, tracehouse_sum_buckets(duration_buckets)).';

-- The q-quantile (0 < q < 1) of a cumulative bucket array, in ms, interpolated linearly inside the
-- bucket that holds it, as Prometheus' histogram_quantile does: the lowest bucket starts at 0, and a
-- quantile in the +Inf bucket is reported as the highest finite bound. NULL when the array is empty.
CREATE FUNCTION tracehouse_histogram_quantile(q double precision, buckets double precision[])
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
  bounds constant double precision[] := tracehouse_red_bucket_bounds_ms();
  total double precision := buckets[array_length(buckets, 1)];
  rank double precision;
  lower_bound double precision := 0;
  below double precision := 0;
BEGIN
  IF buckets IS NULL OR total IS NULL OR total <= 0 OR q IS NULL THEN
    RETURN NULL;
  END IF;
  rank := least(greatest(q, 0), 1) * total;
  FOR i IN 1 .. array_length(bounds, 1) LOOP
    IF buckets[i] >= rank THEN
      IF buckets[i] = below THEN
        RETURN bounds[i];
      END IF;
      RETURN lower_bound + (bounds[i] - lower_bound) * (rank - below) / (buckets[i] - below);
    END IF;
    lower_bound := bounds[i];
    below := buckets[i];
  END LOOP;
  RETURN bounds[array_length(bounds, 1)];
END
$$;

COMMENT ON FUNCTION tracehouse_histogram_quantile(double precision, double precision[]) IS
  'Estimated q-quantile in ms of a cumulative duration bucket array (linear interpolation, like histogram_quantile).';

-- ---- per-minute RED rollup -----------------------------------------------------------------------

-- Upserted by the span writer in the statement that inserts the spans (storage/sql.ts,
-- INSERT_FROM_STAGE), from the rows actually inserted: a replayed span is never counted twice, and
-- the rollup commits with the spans it describes. writer_slot spreads concurrent writers over
-- different rows (pg_backend_pid() % 8): they then never wait on each other's row locks for the same
-- minute and operation. Always sum over it (the views do).
CREATE TABLE red_minute (
  tenant           text             NOT NULL,
  minute           timestamptz      NOT NULL,
  service_name     text             NOT NULL,
  span_name        text             NOT NULL,
  span_kind        smallint         NOT NULL CHECK (span_kind BETWEEN 0 AND 5),
  status_code      smallint         NOT NULL CHECK (status_code BETWEEN 0 AND 2),
  writer_slot      smallint         NOT NULL DEFAULT 0,
  spans            bigint           NOT NULL,
  calls            double precision NOT NULL,
  duration_sum_ms  double precision NOT NULL,
  duration_max_ms  double precision NOT NULL,
  duration_buckets double precision[] NOT NULL,
  PRIMARY KEY (tenant, minute, service_name, span_name, span_kind, status_code, writer_slot)
);

-- Retention deletes by minute across tenants; BRIN keeps that cheap without slowing the upserts.
CREATE INDEX red_minute_minute_brin ON red_minute USING brin (minute);

COMMENT ON TABLE red_minute IS
  'Rate / errors / duration per tenant, minute (UTC, by span start), service, span name, kind and status, kept '
  'at ingest from newly stored spans only. Weighted by spans.sampling_weight. Sum over writer_slot.';
COMMENT ON COLUMN red_minute.minute IS 'date_bin(''1 minute'', start_time, ''2000-01-01 UTC''): the minute the spans started in.';
COMMENT ON COLUMN red_minute.span_kind IS 'OTLP SpanKind, as spans.kind.';
COMMENT ON COLUMN red_minute.status_code IS 'OTLP StatusCode, as spans.status_code; errors are the calls with status_code = 2.';
COMMENT ON COLUMN red_minute.writer_slot IS 'Which writer session slot upserted the row (contention spreading only): sum over it.';
COMMENT ON COLUMN red_minute.spans IS 'Stored spans (rows), unweighted.';
COMMENT ON COLUMN red_minute.calls IS 'Sum of sampling_weight: the estimated true number of spans.';
COMMENT ON COLUMN red_minute.duration_sum_ms IS 'Sum of sampling_weight * duration in ms.';
COMMENT ON COLUMN red_minute.duration_max_ms IS 'Longest stored duration in ms.';
COMMENT ON COLUMN red_minute.duration_buckets IS
  'Cumulative weighted counts of spans with duration <= each bound of tracehouse_red_bucket_bounds_ms(), then +Inf (= calls).';

-- ---- views for Grafana ---------------------------------------------------------------------------
-- security_invoker: a view reads as the querying role, so the row-level security of 000002 still
-- applies to tenant readers (without it a view reads as its owner, who bypasses row-level security).

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
       s.end_time,
       s.duration_ns / 1e6::double precision AS duration_ms,
       s.parent_span_id IS NULL AS is_root,
       s.sampling_weight,
       s.attributes,
       s.resource_attributes,
       s.events,
       s.links
  FROM spans s;

COMMENT ON VIEW span_view IS
  'Spans in readable form: hex ids, kind and status names, duration in ms. Filter on start_time (partition key).';
COMMENT ON COLUMN span_view.span_kind IS 'unspecified, internal, server, client, producer or consumer.';
COMMENT ON COLUMN span_view.status_code IS 'unset, ok or error.';
COMMENT ON COLUMN span_view.duration_ms IS 'Duration in milliseconds (from the exact nanoseconds).';

CREATE VIEW trace_summary_view WITH (security_invoker = true) AS
SELECT t.tenant,
       encode(t.trace_id, 'hex') AS trace_id,
       t.first_start AS start_time,
       t.last_end AS end_time,
       (t.last_end_unix_nano - t.first_start_unix_nano) / 1e6::double precision AS duration_ms,
       t.span_count,
       t.error_count,
       t.error_count > 0 AS has_error,
       t.root_service_name,
       t.root_span_name
  FROM traces t;

COMMENT ON VIEW trace_summary_view IS
  'One row per trace (the traces index): start, end, duration in ms, span and error counts, root service and name.';
COMMENT ON COLUMN trace_summary_view.duration_ms IS 'From the earliest span start to the latest span end, in ms.';

CREATE VIEW red_minute_view WITH (security_invoker = true) AS
SELECT r.tenant,
       r.minute,
       r.service_name,
       r.span_name,
       (ARRAY['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'])[r.span_kind + 1] AS span_kind,
       sum(r.spans)::bigint AS spans,
       sum(r.calls) AS calls,
       coalesce(sum(r.calls) FILTER (WHERE r.status_code = 2), 0) AS errors,
       coalesce(sum(r.calls) FILTER (WHERE r.status_code = 2), 0) / nullif(sum(r.calls), 0) AS error_ratio,
       sum(r.calls) / 60.0 AS calls_per_second,
       sum(r.duration_sum_ms) / nullif(sum(r.calls), 0) AS avg_ms,
       max(r.duration_max_ms) AS max_ms,
       tracehouse_histogram_quantile(0.5, tracehouse_sum_buckets(r.duration_buckets)) AS p50_ms,
       tracehouse_histogram_quantile(0.95, tracehouse_sum_buckets(r.duration_buckets)) AS p95_ms,
       tracehouse_histogram_quantile(0.99, tracehouse_sum_buckets(r.duration_buckets)) AS p99_ms,
       tracehouse_sum_buckets(r.duration_buckets) AS duration_buckets
  FROM red_minute r
 GROUP BY r.tenant, r.minute, r.service_name, r.span_name, r.span_kind;

COMMENT ON VIEW red_minute_view IS
  'RED per tenant, minute, service, span name and kind (all statuses together), weighted by sampling. '
  'Percentiles are estimated from the duration buckets. For wider windows sum red_minute yourself '
  '(tracehouse_sum_buckets) rather than averaging these percentiles.';
COMMENT ON COLUMN red_minute_view.calls IS 'Weighted spans (true traffic).';
COMMENT ON COLUMN red_minute_view.errors IS 'Weighted spans with status error.';
COMMENT ON COLUMN red_minute_view.error_ratio IS 'errors / calls.';
COMMENT ON COLUMN red_minute_view.p95_ms IS 'Estimated 95th percentile duration in ms.';

-- Cost: every child span in the filtered window costs one primary-key probe for its parent (bounded to
-- the parent's start within an hour of the child's, so only one or two day partitions are touched).
-- Keep windows short (the dashboards use the panel's range), or use Prometheus'
-- traces_service_graph_* counters for long ranges.
CREATE VIEW service_graph_edges WITH (security_invoker = true) AS
SELECT c.tenant,
       c.start_time,
       p.service_name AS client,
       c.service_name AS server,
       p.name AS client_span_name,
       c.name AS server_span_name,
       (ARRAY['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'])[p.kind + 1] AS client_kind,
       (ARRAY['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'])[c.kind + 1] AS server_kind,
       c.sampling_weight AS calls,
       (c.status_code = 2 OR p.status_code = 2) AS failed,
       c.duration_ns / 1e6::double precision AS server_duration_ms,
       p.duration_ns / 1e6::double precision AS client_duration_ms,
       encode(c.trace_id, 'hex') AS trace_id
  FROM spans c
  JOIN spans p
    ON p.tenant = c.tenant AND p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
   AND p.start_time BETWEEN c.start_time - interval '1 hour' AND c.start_time + interval '1 hour'
 WHERE p.service_name <> c.service_name;

COMMENT ON VIEW service_graph_edges IS
  'One row per parent/child span pair across two services (client = parent''s service, server = child''s). '
  'Filter on start_time (the child''s start); each child costs one index probe, so keep the window short.';
COMMENT ON COLUMN service_graph_edges.calls IS 'The child span''s sampling weight: sum it for the number of requests.';
COMMENT ON COLUMN service_graph_edges.failed IS 'Either side has status error.';

-- ---- tenant read access ------------------------------------------------------------------------------

ALTER TABLE red_minute ENABLE ROW LEVEL SECURITY;
CREATE POLICY red_minute_tenant_read ON red_minute FOR SELECT
  USING (tenant = (SELECT r.tenant FROM tenant_readers r WHERE r.role_name = current_user));

-- 000002's function granted SELECT on tables with row-level security only: also grant the views
-- above (and any later security_invoker view), which read through those tables' policies. The rest
-- is unchanged; CREATE OR REPLACE keeps its owner and its revoked EXECUTE.
CREATE OR REPLACE FUNCTION tracehouse_create_tenant_reader(reader name, reader_tenant text, reader_password text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  protected regclass;
BEGIN
  IF reader_tenant IS NULL OR octet_length(reader_tenant) NOT BETWEEN 1 AND 150
     OR reader_tenant !~ '^[A-Za-z0-9!_.*''()-]+$' OR reader_tenant IN ('.', '..') THEN
    RAISE EXCEPTION 'invalid tenant name %', quote_literal(left(reader_tenant, 40)) USING ERRCODE = '22023';
  END IF;
  IF reader IS NULL OR reader = 'tracehouse_reader' OR reader LIKE 'pg\_%' THEN
    RAISE EXCEPTION 'invalid reader role name %', quote_literal(reader) USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tracehouse_reader') THEN
    BEGIN
      CREATE ROLE tracehouse_reader NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL; -- created concurrently
    END;
  END IF;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO tracehouse_reader', current_schema());
  FOR protected IN
    SELECT c.oid::regclass
      FROM pg_class c
     WHERE c.relnamespace = current_schema()::regnamespace
       AND ((c.relkind IN ('r', 'p') AND c.relrowsecurity AND NOT c.relispartition)
            OR (c.relkind = 'v' AND c.reloptions && ARRAY['security_invoker=true', 'security_invoker=on']))
  LOOP
    EXECUTE format('GRANT SELECT ON %s TO tracehouse_reader', protected);
  END LOOP;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = reader) THEN
    IF NOT EXISTS (SELECT FROM tenant_readers WHERE role_name = reader) THEN
      RAISE EXCEPTION 'role % exists and is not a tenant reader: choose another name', quote_ident(reader)
        USING ERRCODE = '42710';
    END IF;
    IF NOT EXISTS (SELECT FROM tenant_readers WHERE role_name = reader AND tenant = reader_tenant) THEN
      RAISE EXCEPTION 'role % already reads another tenant: choose another name', quote_ident(reader)
        USING ERRCODE = '42710';
    END IF;
    IF reader_password IS NOT NULL THEN
      EXECUTE format('ALTER ROLE %I WITH LOGIN PASSWORD %L', reader, reader_password);
    END IF;
  ELSE
    EXECUTE format('CREATE ROLE %I WITH LOGIN PASSWORD %L', reader, reader_password);
  END IF;
  EXECUTE format('GRANT tracehouse_reader TO %I', reader);
  EXECUTE format('ALTER ROLE %I SET default_transaction_read_only = on', reader);
  INSERT INTO tenant_readers (role_name, tenant) VALUES (reader, reader_tenant)
  ON CONFLICT (role_name) DO NOTHING;
END
$$;

-- Readers created before this migration see the new table and views at once.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'tracehouse_reader') THEN
    GRANT SELECT ON red_minute, span_view, trace_summary_view, red_minute_view, service_graph_edges
      TO tracehouse_reader;
  END IF;
END
$$;

-- Spans stored before this migration (weight 1), so the rollup covers the retained window.
INSERT INTO red_minute (tenant, minute, service_name, span_name, span_kind, status_code, writer_slot, spans, calls,
                        duration_sum_ms, duration_max_ms, duration_buckets)
SELECT tenant, date_bin('1 minute', start_time, TIMESTAMPTZ '2000-01-01 00:00:00+00'), service_name, name, kind,
       status_code, 0, count(*), count(*), sum(duration_ns) / 1e6, max(duration_ns) / 1e6,
       ARRAY[count(*) FILTER (WHERE duration_ns <= 500000), count(*) FILTER (WHERE duration_ns <= 1000000),
             count(*) FILTER (WHERE duration_ns <= 2500000), count(*) FILTER (WHERE duration_ns <= 5000000),
             count(*) FILTER (WHERE duration_ns <= 10000000), count(*) FILTER (WHERE duration_ns <= 25000000),
             count(*) FILTER (WHERE duration_ns <= 50000000), count(*) FILTER (WHERE duration_ns <= 100000000),
             count(*) FILTER (WHERE duration_ns <= 250000000), count(*) FILTER (WHERE duration_ns <= 500000000),
             count(*) FILTER (WHERE duration_ns <= 1000000000), count(*) FILTER (WHERE duration_ns <= 2500000000),
             count(*) FILTER (WHERE duration_ns <= 5000000000), count(*) FILTER (WHERE duration_ns <= 10000000000),
             count(*) FILTER (WHERE duration_ns <= 30000000000), count(*)]::double precision[]
  FROM spans
 GROUP BY 1, 2, 3, 4, 5, 6;
