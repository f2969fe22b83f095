/**
 * One typed configuration composed of per-stage sections. Precedence: defaults < environment <
 * explicit overrides (what tests pass). Units are in the names. Every environment variable is in
 * ENV_KEYS and in the README's configuration table.
 */
import type { DecodeLimits } from './decode/types.js';

export interface ServerConfig {
  host: string;
  port: number;
  logLevel: string;
}

export interface ReceiveConfig {
  maxBodyBytes: number; // after decompression
  requestTimeoutMs: number;
  retryAfterS: number;
}

export interface BatchConfig {
  maxQueueSpans: number;
  maxQueueBytes: number;
  maxBatchSpans: number;
  flushIntervalMs: number;
  writers: number;
  storageBackoffMs: number;
}

export interface StorageConfig {
  databaseUrl: string | undefined; // unset → embedded PostgreSQL
  dataDir: string; // embedded PostgreSQL data directory
  embeddedPort: number;
  poolSize: number;
  statementTimeoutMs: number;
  connectTimeoutMs: number;
  retentionDays: number;
  futureGraceMs: number;
  partitionsAheadDays: number;
  maintenanceIntervalMs: number;
}

export interface LifecycleConfig {
  shutdownDelayMs: number; // /ready is 503 this long before the listener closes
  drainTimeoutMs: number; // hard deadline for committing what is queued
}

export interface Config {
  server: ServerConfig;
  receive: ReceiveConfig;
  decode: DecodeLimits;
  batch: BatchConfig;
  storage: StorageConfig;
  lifecycle: LifecycleConfig;
}

export type ConfigOverrides = { [K in keyof Config]?: Partial<Config[K]> };

export const DEFAULTS: Config = {
  server: { host: '0.0.0.0', port: 4318, logLevel: 'info' },
  receive: { maxBodyBytes: 16 * 1024 * 1024, requestTimeoutMs: 60_000, retryAfterS: 1 },
  decode: {
    maxAnyValueDepth: 32,
    maxAttributeValueBytes: 4096,
    maxAttributesPerSpan: 128,
    maxEventsPerSpan: 128,
    maxLinksPerSpan: 128,
  },
  batch: {
    maxQueueSpans: 100_000,
    maxQueueBytes: 128 * 1024 * 1024,
    maxBatchSpans: 8192,
    flushIntervalMs: 5,
    writers: 2,
    storageBackoffMs: 1000,
  },
  storage: {
    databaseUrl: undefined,
    dataDir: './data',
    embeddedPort: 5433,
    poolSize: 6,
    statementTimeoutMs: 30_000,
    connectTimeoutMs: 5000,
    retentionDays: 7,
    futureGraceMs: 10 * 60_000,
    partitionsAheadDays: 2,
    maintenanceIntervalMs: 10 * 60_000,
  },
  lifecycle: { shutdownDelayMs: 0, drainTimeoutMs: 20_000 },
};

type Section = keyof Config;
interface EnvKey {
  section: Section;
  key: string;
  kind: 'int' | 'string';
  unit: string;
  description: string;
}

/** Every environment variable tracehouse reads. The README table is checked against this list. */
export const ENV_KEYS: Record<string, EnvKey> = {
  HOST: { section: 'server', key: 'host', kind: 'string', unit: '', description: 'listen address' },
  PORT: { section: 'server', key: 'port', kind: 'int', unit: '', description: 'listen port (ingest, query, probes, metrics)' },
  LOG_LEVEL: { section: 'server', key: 'logLevel', kind: 'string', unit: '', description: 'pino level' },
  MAX_BODY_BYTES: { section: 'receive', key: 'maxBodyBytes', kind: 'int', unit: 'bytes', description: 'request body limit, after decompression' },
  REQUEST_TIMEOUT_MS: { section: 'receive', key: 'requestTimeoutMs', kind: 'int', unit: 'ms', description: 'whole-request timeout' },
  RETRY_AFTER_S: { section: 'receive', key: 'retryAfterS', kind: 'int', unit: 's', description: 'Retry-After on 503' },
  MAX_ANY_VALUE_DEPTH: { section: 'decode', key: 'maxAnyValueDepth', kind: 'int', unit: 'levels', description: 'AnyValue nesting limit (400 beyond)' },
  MAX_ATTRIBUTE_VALUE_BYTES: { section: 'decode', key: 'maxAttributeValueBytes', kind: 'int', unit: 'bytes', description: 'longer string values are truncated' },
  MAX_ATTRIBUTES_PER_SPAN: { section: 'decode', key: 'maxAttributesPerSpan', kind: 'int', unit: 'count', description: 'attributes kept per span/resource/scope/event/link' },
  MAX_EVENTS_PER_SPAN: { section: 'decode', key: 'maxEventsPerSpan', kind: 'int', unit: 'count', description: 'events kept per span' },
  MAX_LINKS_PER_SPAN: { section: 'decode', key: 'maxLinksPerSpan', kind: 'int', unit: 'count', description: 'links kept per span' },
  MAX_QUEUE_SPANS: { section: 'batch', key: 'maxQueueSpans', kind: 'int', unit: 'spans', description: 'spans waiting for commit before 503' },
  MAX_QUEUE_BYTES: { section: 'batch', key: 'maxQueueBytes', kind: 'int', unit: 'bytes', description: 'row bytes waiting for commit before 503' },
  MAX_BATCH_SPANS: { section: 'batch', key: 'maxBatchSpans', kind: 'int', unit: 'spans', description: 'largest single commit' },
  FLUSH_INTERVAL_MS: { section: 'batch', key: 'flushIntervalMs', kind: 'int', unit: 'ms', description: 'longest wait to fill a batch' },
  WRITERS: { section: 'batch', key: 'writers', kind: 'int', unit: 'connections', description: 'concurrent commits' },
  DATABASE_URL: { section: 'storage', key: 'databaseUrl', kind: 'string', unit: '', description: 'PostgreSQL URL; unset starts an embedded PostgreSQL' },
  DATA_DIR: { section: 'storage', key: 'dataDir', kind: 'string', unit: '', description: 'embedded PostgreSQL data directory' },
  EMBEDDED_PG_PORT: { section: 'storage', key: 'embeddedPort', kind: 'int', unit: '', description: 'embedded PostgreSQL port' },
  PG_POOL_SIZE: { section: 'storage', key: 'poolSize', kind: 'int', unit: 'connections', description: 'PostgreSQL pool size' },
  STATEMENT_TIMEOUT_MS: { section: 'storage', key: 'statementTimeoutMs', kind: 'int', unit: 'ms', description: 'PostgreSQL statement_timeout' },
  RETENTION_DAYS: { section: 'storage', key: 'retentionDays', kind: 'int', unit: 'days', description: 'older partitions are dropped; older spans rejected' },
  FUTURE_GRACE_MS: { section: 'storage', key: 'futureGraceMs', kind: 'int', unit: 'ms', description: 'spans starting later than now + this are rejected' },
  PARTITIONS_AHEAD_DAYS: { section: 'storage', key: 'partitionsAheadDays', kind: 'int', unit: 'days', description: 'daily partitions created ahead' },
  MAINTENANCE_INTERVAL_MS: { section: 'storage', key: 'maintenanceIntervalMs', kind: 'int', unit: 'ms', description: 'partition maintenance period' },
  SHUTDOWN_DELAY_MS: { section: 'lifecycle', key: 'shutdownDelayMs', kind: 'int', unit: 'ms', description: '/ready is 503 this long before closing' },
  DRAIN_TIMEOUT_MS: { section: 'lifecycle', key: 'drainTimeoutMs', kind: 'int', unit: 'ms', description: 'deadline to commit queued spans on SIGTERM' },
};

export class ConfigError extends Error {}

function parseEnvValue(name: string, spec: EnvKey, raw: string): string | number {
  if (spec.kind === 'string') return raw;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ConfigError(`${name} must be a non-negative integer${spec.unit ? ` (${spec.unit})` : ''}, got '${raw}'`);
  }
  return value;
}

/** Builds the configuration from defaults, the environment and overrides, then validates it. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): Config {
  const config = structuredClone(DEFAULTS) as Config;
  for (const [name, spec] of Object.entries(ENV_KEYS)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    (config[spec.section] as unknown as Record<string, unknown>)[spec.key] = parseEnvValue(name, spec, raw);
  }
  for (const section of Object.keys(overrides) as Section[]) {
    Object.assign(config[section], overrides[section]);
  }
  validateConfig(config);
  return config;
}

function requireRange(name: string, value: number, min: number, max: number): void {
  if (!(value >= min && value <= max)) {
    throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  }
}

export function validateConfig(config: Config): void {
  requireRange('PORT', config.server.port, 0, 65535);
  requireRange('MAX_BODY_BYTES', config.receive.maxBodyBytes, 1024, 1024 * 1024 * 1024);
  requireRange('RETRY_AFTER_S', config.receive.retryAfterS, 1, 5);
  requireRange('MAX_ANY_VALUE_DEPTH', config.decode.maxAnyValueDepth, 1, 64);
  requireRange('MAX_BATCH_SPANS', config.batch.maxBatchSpans, 1, config.batch.maxQueueSpans);
  requireRange('WRITERS', config.batch.writers, 1, 64);
  requireRange('PG_POOL_SIZE', config.storage.poolSize, config.batch.writers + 1, 1000);
  requireRange('RETENTION_DAYS', config.storage.retentionDays, 1, 3650);
  requireRange('PARTITIONS_AHEAD_DAYS', config.storage.partitionsAheadDays, 1, 60);
}
