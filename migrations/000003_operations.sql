-- 000003: the service / operation catalog that the query API reads instead of scanning spans.
--
-- Forward-only: never edit this file once released.
-- One row per (tenant, service, span name, span kind) ever stored, with the span start times it was
-- first and last seen at. The writer keeps it current in the same statement that inserts spans
-- (storage/sql.ts, INSERT_FROM_STAGE), so the catalog commits with the spans it describes.
-- last_seen is refreshed only when it moves forward by more than OPERATION_REFRESH_INTERVAL (one
-- minute, storage/sql.ts): under steady traffic each row is updated about once a minute rather than
-- once per batch, and readers widen their windows by that interval.

CREATE TABLE operations (
  tenant       text        NOT NULL,
  service_name text        NOT NULL,
  span_name    text        NOT NULL,
  span_kind    smallint    NOT NULL CHECK (span_kind BETWEEN 0 AND 5),
  first_seen   timestamptz NOT NULL,
  last_seen    timestamptz NOT NULL,
  PRIMARY KEY (tenant, service_name, span_name, span_kind)
);

COMMENT ON TABLE operations IS
  'Service and operation catalog, kept current at ingest. Serves /api/services, /api/operations and the '
  'service candidates of a search without scanning spans.';
COMMENT ON COLUMN operations.service_name IS 'spans.service_name of the operation.';
COMMENT ON COLUMN operations.span_name IS 'spans.name (the operation name).';
COMMENT ON COLUMN operations.span_kind IS 'OTLP SpanKind, as spans.kind.';
COMMENT ON COLUMN operations.first_seen IS 'Earliest start_time of a stored span of this operation.';
COMMENT ON COLUMN operations.last_seen IS
  'Latest start_time of a stored span of this operation, up to one minute behind (refresh interval).';

-- Spans stored before this migration.
INSERT INTO operations (tenant, service_name, span_name, span_kind, first_seen, last_seen)
SELECT tenant, service_name, name, kind, min(start_time), max(start_time)
  FROM spans
 GROUP BY tenant, service_name, name, kind;

-- Attribute equality in searches (Jaeger tags, TraceQL `span.k = v`, `resource.k = v`, `.k = v`) is
-- written as jsonb containment (`attributes @> '{"k": v}'`), which these indexes answer. A search
-- whose values match nothing is then refused by the index instead of by reading every span of the
-- window; one whose values are common reads the (tenant, service_name, start_time) index newest
-- first and stops at its limit. jsonb_path_ops: smaller and faster than jsonb_ops, and @> is the
-- only operator searches need from it. Created on the partitioned table, so every partition
-- (existing and future) gets its own.
CREATE INDEX spans_attributes_gin ON spans USING gin (attributes jsonb_path_ops);
CREATE INDEX spans_resource_attributes_gin ON spans USING gin (resource_attributes jsonb_path_ops);

-- The catalog names a tenant's services and operations, so direct-SQL readers see only their own
-- tenant's rows, under the same policy as spans and traces (000002). Guarded so that this file
-- does not depend on 000002's table being present.
DO $$
BEGIN
  IF to_regclass('tenant_readers') IS NOT NULL THEN
    ALTER TABLE operations ENABLE ROW LEVEL SECURITY;
    CREATE POLICY operations_tenant_read ON operations FOR SELECT
      USING (tenant = (SELECT r.tenant FROM tenant_readers r WHERE r.role_name = current_user));
  END IF;
END
$$;
