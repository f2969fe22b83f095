/**
 * Every environment variable tracehouse reads: its config section and key, kind, unit and
 * description. The README configuration table and deploy/env.example are checked against it.
 */
import type { Config } from './config.js';
import { OPERATION_KEYS } from './config-env-keys-operations.js';
export type Section = keyof Config;
export interface EnvKey {
  section: Section;
  key: string;
  kind: 'int' | 'number' | 'string' | 'bool' | 'list' | 'json' | 'map';
  unit: string;
  description: string;
}

/** The ingest path's variables: listener, receive, decode, batch, storage, WebSocket. */
const INGEST_KEYS: Record<string, EnvKey> = {
  HOST: { section: 'server', key: 'host', kind: 'string', unit: '', description: 'listen address' },
  PORT: {
    section: 'server',
    key: 'port',
    kind: 'int',
    unit: '',
    description: 'listen port (ingest, query, probes, metrics)',
  },
  LOG_LEVEL: { section: 'server', key: 'logLevel', kind: 'string', unit: '', description: 'pino level' },
  MAX_BODY_BYTES: {
    section: 'receive',
    key: 'maxBodyBytes',
    kind: 'int',
    unit: 'bytes',
    description: 'request body limit, after decompression',
  },
  REQUEST_TIMEOUT_MS: {
    section: 'receive',
    key: 'requestTimeoutMs',
    kind: 'int',
    unit: 'ms',
    description: 'whole-request timeout',
  },
  RETRY_AFTER_S: { section: 'receive', key: 'retryAfterS', kind: 'int', unit: 's', description: 'Retry-After on 503' },
  MAX_ANY_VALUE_DEPTH: {
    section: 'decode',
    key: 'maxAnyValueDepth',
    kind: 'int',
    unit: 'levels',
    description: 'AnyValue nesting limit (400 beyond)',
  },
  MAX_ATTRIBUTE_VALUE_BYTES: {
    section: 'decode',
    key: 'maxAttributeValueBytes',
    kind: 'int',
    unit: 'bytes',
    description: 'longer string values are truncated',
  },
  MAX_ATTRIBUTES_PER_SPAN: {
    section: 'decode',
    key: 'maxAttributesPerSpan',
    kind: 'int',
    unit: 'count',
    description: 'attributes kept per span/resource/scope/event/link',
  },
  MAX_EVENTS_PER_SPAN: {
    section: 'decode',
    key: 'maxEventsPerSpan',
    kind: 'int',
    unit: 'count',
    description: 'events kept per span',
  },
  MAX_LINKS_PER_SPAN: {
    section: 'decode',
    key: 'maxLinksPerSpan',
    kind: 'int',
    unit: 'count',
    description: 'links kept per span',
  },
  MAX_QUEUE_SPANS: {
    section: 'batch',
    key: 'maxQueueSpans',
    kind: 'int',
    unit: 'spans',
    description: 'spans waiting for commit before 503',
  },
  MAX_QUEUE_BYTES: {
    section: 'batch',
    key: 'maxQueueBytes',
    kind: 'int',
    unit: 'bytes',
    description: 'row bytes waiting for commit before 503',
  },
  MAX_BATCH_SPANS: {
    section: 'batch',
    key: 'maxBatchSpans',
    kind: 'int',
    unit: 'spans',
    description: 'largest single commit',
  },
  FLUSH_INTERVAL_MS: {
    section: 'batch',
    key: 'flushIntervalMs',
    kind: 'int',
    unit: 'ms',
    description: 'longest wait to fill a batch',
  },
  WRITERS: { section: 'batch', key: 'writers', kind: 'int', unit: 'connections', description: 'concurrent commits' },
  DATABASE_URL: {
    section: 'storage',
    key: 'databaseUrl',
    kind: 'string',
    unit: '',
    description: 'PostgreSQL URL; unset starts an embedded PostgreSQL',
  },
  DATA_DIR: {
    section: 'storage',
    key: 'dataDir',
    kind: 'string',
    unit: '',
    description: 'embedded PostgreSQL data directory',
  },
  EMBEDDED_PG_PORT: {
    section: 'storage',
    key: 'embeddedPort',
    kind: 'int',
    unit: '',
    description: 'embedded PostgreSQL port',
  },
  PG_POOL_SIZE: {
    section: 'storage',
    key: 'poolSize',
    kind: 'int',
    unit: 'connections',
    description: 'PostgreSQL pool size',
  },
  STATEMENT_TIMEOUT_MS: {
    section: 'storage',
    key: 'statementTimeoutMs',
    kind: 'int',
    unit: 'ms',
    description: 'PostgreSQL statement_timeout',
  },
  RETENTION_DAYS: {
    section: 'storage',
    key: 'retentionDays',
    kind: 'int',
    unit: 'days',
    description: 'older partitions are dropped; older spans rejected',
  },
  FUTURE_GRACE_MS: {
    section: 'storage',
    key: 'futureGraceMs',
    kind: 'int',
    unit: 'ms',
    description: 'spans starting later than now + this are rejected',
  },
  PARTITIONS_AHEAD_DAYS: {
    section: 'storage',
    key: 'partitionsAheadDays',
    kind: 'int',
    unit: 'days',
    description: 'daily partitions created ahead',
  },
  MAINTENANCE_INTERVAL_MS: {
    section: 'storage',
    key: 'maintenanceIntervalMs',
    kind: 'int',
    unit: 'ms',
    description: 'partition maintenance period',
  },
  TENANT_RETENTION_DAYS: {
    section: 'storage',
    key: 'tenantRetentionDays',
    kind: 'map',
    unit: 'days',
    description:
      'per-tenant retention below RETENTION_DAYS, e.g. `acme=3,beta=1`: older spans of those tenants are deleted inside partitions',
  },
  WS_MAX_FRAME_BYTES: {
    section: 'websocket',
    key: 'maxFrameBytes',
    kind: 'int',
    unit: 'bytes',
    description: 'WebSocket frame limit (envelope included); larger closes with 1009',
  },
  WS_MAX_UNACKED_FRAMES: {
    section: 'websocket',
    key: 'maxUnackedFrames',
    kind: 'int',
    unit: 'frames',
    description: 'per connection; past it the server stops reading',
  },
  WS_MAX_UNACKED_BYTES: {
    section: 'websocket',
    key: 'maxUnackedBytes',
    kind: 'int',
    unit: 'bytes',
    description: 'per connection; past it the server stops reading',
  },
  WS_MAX_CONNECTIONS: {
    section: 'websocket',
    key: 'maxConnections',
    kind: 'int',
    unit: 'connections',
    description: 'WebSocket connections per instance; more are closed with 1013',
  },
  WS_PING_INTERVAL_MS: {
    section: 'websocket',
    key: 'pingIntervalMs',
    kind: 'int',
    unit: 'ms',
    description: 'keepalive ping period; a missed pong closes the connection',
  },
};

/** Every environment variable tracehouse reads, in README order. The README table is checked against it. */
export const ENV_KEYS: Record<string, EnvKey> = { ...INGEST_KEYS, ...OPERATION_KEYS };
