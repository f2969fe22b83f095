-- 000006: a span's low-cardinality attribute pairs are stored once per tenant, as one row of
-- `attribute_sets`, and the span row carries the set's 8-byte attribute_set_id; spans.attributes
-- keeps only the span's other pairs. Measured on the realistic spans of the load tests: the pairs
-- whose keys show few distinct values (method, route, status code, server address and port, user
-- agent, feature flags, item counts) are ~330 of the ~460 bytes of a span's attributes jsonb, and
-- 7 of its 10 GIN index entries.
--
-- Which pairs go to the set is decided by the ingest server per attribute key (decode/
-- attribute-sharing.ts): a key whose values stay few is shared. The split is a storage layout
-- only: a span's attributes are the union of its set's and its own (the two never share a key),
-- and a key may sit in the set for one span and in the row for another. span_view and every
-- query API show the union.
--
-- attribute_set_id is the first 64 bits of an MD5 over the set's JSON text, computed by the writer
-- (storage/attribute-set-id.ts). NULL when a span has no shared pair, and for every span stored
-- before this migration (their attributes stay whole in spans.attributes: nothing is moved).
-- Rows are never updated: a set's attributes are its id.
-- Citus note (DESIGN decision 10): like resources, a small table joined from every span's shard,
-- so a reference table there; nothing here depends on its placement.

CREATE TABLE attribute_sets (
  tenant           text        NOT NULL,
  attribute_set_id bigint      NOT NULL,
  attributes       jsonb       NOT NULL,
  first_seen       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, attribute_set_id)
);

CREATE INDEX attribute_sets_attributes_gin ON attribute_sets USING gin (attributes jsonb_path_ops);

COMMENT ON TABLE attribute_sets IS
  'One row per distinct set of shared (low-cardinality) span attributes of a tenant; spans.attribute_set_id points '
  'here. A span''s attributes are attribute_sets.attributes || spans.attributes; span_view shows them merged.';
COMMENT ON COLUMN attribute_sets.attribute_set_id IS 'First 64 bits of an MD5 of the attributes'' JSON text (see migrations/000006).';
COMMENT ON COLUMN attribute_sets.attributes IS 'The shared span attributes as a JSON object {key: value}.';
COMMENT ON COLUMN attribute_sets.first_seen IS 'Transaction time of the first batch that stored the set.';

ALTER TABLE spans ADD COLUMN attribute_set_id bigint;

-- Searches on span attributes find the matching sets first, then their spans by this index, OR-ed
-- with the span attributes' GIN index. Few distinct values per partition: B-tree deduplication
-- keeps it to a few bytes per span.
CREATE INDEX spans_attribute_set_id_idx ON spans (attribute_set_id);

COMMENT ON COLUMN spans.attributes IS
  'The span''s attributes that are not in its attribute set, as a JSON object; the span''s attributes are '
  'attribute_sets.attributes || spans.attributes (span_view.attributes). int64 values beyond 2^53 are kept exact.';
COMMENT ON COLUMN spans.attribute_set_id IS
  'The span''s shared attributes: attribute_sets (tenant, attribute_set_id); NULL when it has none.';

CREATE OR REPLACE VIEW span_view WITH (security_invoker = true) AS
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

-- ---- tenant read access (000002) --------------------------------------------------------------

DO $$
BEGIN
  IF to_regclass('tenant_readers') IS NOT NULL THEN
    ALTER TABLE attribute_sets ENABLE ROW LEVEL SECURITY;
    CREATE POLICY attribute_sets_tenant_read ON attribute_sets FOR SELECT
      USING (tenant = (SELECT r.tenant FROM tenant_readers r WHERE r.role_name = current_user));
  END IF;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'tracehouse_reader') THEN
    GRANT SELECT ON attribute_sets, span_view TO tracehouse_reader;
  END IF;
END
$$;
