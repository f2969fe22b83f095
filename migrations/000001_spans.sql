-- 000001: span rows, the per-trace summary index.
--
-- Forward-only: never edit this file once released; add 000002_… instead.
-- Partitions of `spans` are runtime data (created ahead and on demand, dropped by retention),
-- not part of any migration. There is deliberately NO default partition: a span whose day has no
-- partition fails loudly (SQLSTATE 23514) and the writer creates the partition and retries.
-- Citus note (DESIGN decision 10): both keys contain trace_id, the future distribution column.

CREATE TABLE spans (
  tenant                   text        NOT NULL,
  trace_id                 bytea       NOT NULL CHECK (octet_length(trace_id) = 16),
  span_id                  bytea       NOT NULL CHECK (octet_length(span_id) = 8),
  parent_span_id           bytea       NULL CHECK (octet_length(parent_span_id) = 8),
  trace_state              text        NOT NULL DEFAULT '',
  flags                    integer     NOT NULL DEFAULT 0,
  name                     text        NOT NULL,
  kind                     smallint    NOT NULL CHECK (kind BETWEEN 0 AND 5),
  service_name             text        NOT NULL,
  start_time               timestamptz NOT NULL,
  end_time                 timestamptz NOT NULL,
  start_time_unix_nano     bigint      NOT NULL,
  end_time_unix_nano       bigint      NOT NULL,
  duration_ns              bigint      NOT NULL,
  status_code              smallint    NOT NULL CHECK (status_code BETWEEN 0 AND 2),
  status_message           text        NOT NULL DEFAULT '',
  attributes               jsonb       NOT NULL DEFAULT '{}',
  resource_attributes      jsonb       NOT NULL DEFAULT '{}',
  scope_name               text        NOT NULL DEFAULT '',
  scope_version            text        NOT NULL DEFAULT '',
  scope_attributes         jsonb       NOT NULL DEFAULT '{}',
  events                   jsonb       NOT NULL DEFAULT '[]',
  links                    jsonb       NOT NULL DEFAULT '[]',
  dropped_attributes_count integer     NOT NULL DEFAULT 0,
  dropped_events_count     integer     NOT NULL DEFAULT 0,
  dropped_links_count      integer     NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant, trace_id, span_id, start_time)
) PARTITION BY RANGE (start_time);

CREATE INDEX spans_tenant_service_start_idx ON spans (tenant, service_name, start_time DESC);

COMMENT ON TABLE spans IS
  'One row per stored span. Partitioned by day on start_time (UTC), partitions named spans_YYYYMMDD. '
  'The primary key (tenant, trace_id, span_id, start_time) is the idempotency key: a retried span is stored once.';
COMMENT ON COLUMN spans.tenant IS 'Tenant from the verified JWT claim; never from headers or attributes.';
COMMENT ON COLUMN spans.trace_id IS 'OTLP trace id, 16 bytes, never all zero. Hex in APIs: encode(trace_id, ''hex'').';
COMMENT ON COLUMN spans.span_id IS 'OTLP span id, 8 bytes, never all zero.';
COMMENT ON COLUMN spans.parent_span_id IS 'Parent span id, 8 bytes; NULL for a root span.';
COMMENT ON COLUMN spans.trace_state IS 'W3C tracestate header value, '''' when absent.';
COMMENT ON COLUMN spans.flags IS 'OTLP Span.flags: bits 0-7 W3C trace flags (bit 0 sampled), bits 8-9 has-is-remote / is-remote.';
COMMENT ON COLUMN spans.name IS 'Span name (operation).';
COMMENT ON COLUMN spans.kind IS 'OTLP SpanKind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer.';
COMMENT ON COLUMN spans.service_name IS 'Resource attribute service.name, '''' when absent.';
COMMENT ON COLUMN spans.start_time IS 'Span start, microsecond precision: floor of start_time_unix_nano / 1000. Partition key.';
COMMENT ON COLUMN spans.end_time IS 'Span end, microsecond precision: floor of end_time_unix_nano / 1000.';
COMMENT ON COLUMN spans.start_time_unix_nano IS 'Exact span start in nanoseconds since the Unix epoch (lossless).';
COMMENT ON COLUMN spans.end_time_unix_nano IS 'Exact span end in nanoseconds since the Unix epoch (lossless).';
COMMENT ON COLUMN spans.duration_ns IS 'end_time_unix_nano - start_time_unix_nano, in nanoseconds.';
COMMENT ON COLUMN spans.status_code IS 'OTLP StatusCode: 0 unset, 1 ok, 2 error.';
COMMENT ON COLUMN spans.status_message IS 'Status message, '''' when absent.';
COMMENT ON COLUMN spans.attributes IS 'Span attributes as a JSON object {key: value}; int64 values beyond 2^53 are kept exact.';
COMMENT ON COLUMN spans.resource_attributes IS 'Resource attributes as a JSON object.';
COMMENT ON COLUMN spans.scope_name IS 'Instrumentation scope name.';
COMMENT ON COLUMN spans.scope_version IS 'Instrumentation scope version.';
COMMENT ON COLUMN spans.scope_attributes IS 'Instrumentation scope attributes as a JSON object.';
COMMENT ON COLUMN spans.events IS 'Span events as a JSON array of {timeUnixNano, name, attributes, droppedAttributesCount}.';
COMMENT ON COLUMN spans.links IS 'Span links as a JSON array of {traceId, spanId, traceState, attributes, droppedAttributesCount, flags}.';
COMMENT ON COLUMN spans.dropped_attributes_count IS 'Attributes dropped by the client plus those capped by tracehouse.';
COMMENT ON COLUMN spans.dropped_events_count IS 'Events dropped by the client plus those capped by tracehouse.';
COMMENT ON COLUMN spans.dropped_links_count IS 'Links dropped by the client plus those capped by tracehouse.';

CREATE TABLE traces (
  tenant                text        NOT NULL,
  trace_id              bytea       NOT NULL,
  first_start           timestamptz NOT NULL,
  last_end              timestamptz NOT NULL,
  first_start_unix_nano bigint      NOT NULL,
  last_end_unix_nano    bigint      NOT NULL,
  span_count            bigint      NOT NULL,
  error_count           bigint      NOT NULL DEFAULT 0,
  root_service_name     text        NULL,
  root_span_name        text        NULL,
  updated_at            timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, trace_id)
);

CREATE INDEX traces_tenant_first_start_idx ON traces (tenant, first_start DESC);
-- Retention deletes summaries by last_end; BRIN keeps that cheap without slowing the upserts.
CREATE INDEX traces_last_end_brin ON traces USING brin (last_end);

COMMENT ON TABLE traces IS
  'Per-trace summary maintained at ingest (one upsert per trace per batch). Counts only newly stored spans, '
  'so replays never inflate span_count. Makes trace-by-id a bounded lookup: spans live in [first_start, last_end].';
COMMENT ON COLUMN traces.first_start IS 'Earliest span start_time stored for the trace (microseconds).';
COMMENT ON COLUMN traces.last_end IS 'Latest span end_time stored for the trace (microseconds).';
COMMENT ON COLUMN traces.first_start_unix_nano IS 'Earliest span start in exact nanoseconds since the Unix epoch.';
COMMENT ON COLUMN traces.last_end_unix_nano IS 'Latest span end in exact nanoseconds since the Unix epoch.';
COMMENT ON COLUMN traces.span_count IS 'Number of distinct spans stored for the trace.';
COMMENT ON COLUMN traces.error_count IS 'Number of stored spans with status_code = 2 (error).';
COMMENT ON COLUMN traces.root_service_name IS 'service_name of the root span (no parent); NULL until the root span arrives.';
COMMENT ON COLUMN traces.root_span_name IS 'name of the root span; NULL until the root span arrives.';
COMMENT ON COLUMN traces.updated_at IS 'Transaction time of the last batch that added spans to the trace.';
