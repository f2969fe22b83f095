-- 000005: each distinct resource + instrumentation scope is stored once per tenant, in `resources`,
-- and a span row carries its 8-byte resource_id instead of ~350 bytes of repeated resource and
-- scope attributes (plus their GIN index entries). Measured on the realistic spans of the load
-- tests: ~360 of ~1,160 heap bytes per span were the resource and scope.
--
-- resource_id is the first 64 bits of an MD5 over the resource's canonical text, computed by the
-- writer (storage/resource-id.ts) from the JSON it sends, or by tracehouse_resource_id() below for
-- rows that arrive without one (spans stored before this migration, older backups). The two texts
-- may differ for the same resource: that only costs a second `resources` row, never a wrong one.
-- Rows are never updated: a resource's attributes are part of its id.

CREATE TABLE resources (
  tenant           text        NOT NULL,
  resource_id      bigint      NOT NULL,
  attributes       jsonb       NOT NULL DEFAULT '{}',
  scope_name       text        NOT NULL DEFAULT '',
  scope_version    text        NOT NULL DEFAULT '',
  scope_attributes jsonb       NOT NULL DEFAULT '{}',
  first_seen       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, resource_id)
);

CREATE INDEX resources_attributes_gin ON resources USING gin (attributes jsonb_path_ops);

COMMENT ON TABLE resources IS
  'One row per distinct (resource attributes, instrumentation scope) of a tenant; spans.resource_id points here. '
  'Join on (tenant, resource_id), or read span_view, which does.';
COMMENT ON COLUMN resources.resource_id IS 'First 64 bits of an MD5 of the resource and scope (see migrations/000005).';
COMMENT ON COLUMN resources.attributes IS 'Resource attributes as a JSON object (service.name among them).';
COMMENT ON COLUMN resources.scope_name IS 'Instrumentation scope name.';
COMMENT ON COLUMN resources.scope_version IS 'Instrumentation scope version.';
COMMENT ON COLUMN resources.scope_attributes IS 'Instrumentation scope attributes as a JSON object.';
COMMENT ON COLUMN resources.first_seen IS 'Transaction time of the first batch that stored the resource.';

CREATE FUNCTION tracehouse_resource_id(attributes jsonb, scope_name text, scope_version text, scope_attributes jsonb)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ('x' || left(md5(concat_ws(E'\n', attributes::text, scope_name, scope_version, scope_attributes::text)), 16))::bit(64)::bigint;

COMMENT ON FUNCTION tracehouse_resource_id(jsonb, text, text, jsonb) IS
  'resource_id of rows that arrive without one (older spans and backups): 64 bits of an MD5 of the jsonb texts.';

-- ---- move the stored spans' resources ---------------------------------------------------------

ALTER TABLE spans ADD COLUMN resource_id bigint;

INSERT INTO resources (tenant, resource_id, attributes, scope_name, scope_version, scope_attributes)
SELECT DISTINCT ON (tenant, id) tenant, id, resource_attributes, scope_name, scope_version, scope_attributes
  FROM (SELECT tenant, resource_attributes, scope_name, scope_version, scope_attributes,
               tracehouse_resource_id(resource_attributes, scope_name, scope_version, scope_attributes) AS id
          FROM spans) s
 ORDER BY tenant, id;

UPDATE spans SET resource_id = tracehouse_resource_id(resource_attributes, scope_name, scope_version, scope_attributes);

DROP VIEW span_view;
ALTER TABLE spans
  DROP COLUMN resource_attributes,
  DROP COLUMN scope_name,
  DROP COLUMN scope_version,
  DROP COLUMN scope_attributes;
ALTER TABLE spans ALTER COLUMN resource_id SET NOT NULL;

-- Searches on resource attributes find the matching resources first, then their spans by this
-- index (alone, or OR-ed with the span attributes' GIN index). Few distinct values per partition,
-- so B-tree deduplication keeps it to a few bytes per span.
CREATE INDEX spans_resource_id_idx ON spans (resource_id);

COMMENT ON COLUMN spans.resource_id IS 'The span''s resource and instrumentation scope: resources (tenant, resource_id).';

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
       r.attributes AS resource_attributes,
       s.events,
       s.links,
       r.scope_name,
       r.scope_version
  FROM spans s
  LEFT JOIN resources r ON r.tenant = s.tenant AND r.resource_id = s.resource_id;

COMMENT ON VIEW span_view IS
  'Spans in readable form: hex ids, kind and status names, duration in ms, resource attributes joined from '
  'resources. Filter on start_time (partition key).';
COMMENT ON COLUMN span_view.span_kind IS 'unspecified, internal, server, client, producer or consumer.';
COMMENT ON COLUMN span_view.status_code IS 'unset, ok or error.';
COMMENT ON COLUMN span_view.duration_ms IS 'Duration in milliseconds (from the exact nanoseconds).';

-- ---- tenant read access (000002) --------------------------------------------------------------

DO $$
BEGIN
  IF to_regclass('tenant_readers') IS NOT NULL THEN
    ALTER TABLE resources ENABLE ROW LEVEL SECURITY;
    CREATE POLICY resources_tenant_read ON resources FOR SELECT
      USING (tenant = (SELECT r.tenant FROM tenant_readers r WHERE r.role_name = current_user));
  END IF;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'tracehouse_reader') THEN
    GRANT SELECT ON resources, span_view TO tracehouse_reader;
  END IF;
END
$$;
