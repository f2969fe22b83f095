/**
 * One typed configuration composed of per-stage sections. Precedence: defaults < environment <
 * explicit overrides (what tests pass). Units are in the names. Every environment variable is in
 * ENV_KEYS and in the README's configuration table.
 */
import { isJwsAlgorithm } from './auth/algorithms.js';
import { tenantProblem } from './auth/tenant.js';
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
  tenantRetentionDays: Record<string, number> | undefined; // tenants keeping less than retentionDays
}

export interface WebSocketConfig {
  maxFrameBytes: number; // ws maxPayload: a larger frame closes the connection with 1009
  maxUnackedFrames: number; // per connection; past it the server stops reading (TCP backpressure)
  maxUnackedBytes: number; // per connection, frame bytes read and not yet acknowledged
  maxConnections: number; // per instance; more are closed with 1013 (try again later)
  pingIntervalMs: number; // keepalive, below nginx's 60 s proxy_read_timeout
}

export interface AuthConfig {
  jwtSecret: string | undefined; // HMAC key (UTF-8 bytes, at least 32)
  publicKeyFile: string | undefined; // PEM public key
  jwksUrl: string | undefined;
  algorithms: string[] | undefined; // allow-list; unset: each key's own algorithms
  issuer: string | undefined;
  audience: string | undefined;
  tenantClaim: string;
  clockToleranceS: number;
  jwksCooldownMs: number; // an unknown kid refetches the JWKS at most once per cooldown
  jwksCacheMaxAgeMs: number;
  privateKeyFile: string | undefined; // `tracehouse token` only: signs local tokens
  production: boolean; // refuse to run without keys unless allowOpen
  allowOpen: boolean;
}

/** Per tenant; 0 means no limit. Bursts are in the same unit as the rate. */
export interface TenantLimits {
  spansPerS: number;
  burstSpans: number;
  bytesPerS: number;
  burstBytes: number;
}

export interface LimitsConfig extends TenantLimits {
  instances: number; // without Redis each instance enforces limit / instances
  overrides: Record<string, Partial<TenantLimits>> | undefined; // by tenant
}

export interface CacheConfig {
  redisUrl: string | undefined; // unset: in-process state, for a single instance
  keyPrefix: string;
  commandTimeoutMs: number;
}

/** A sampling rate per tenant, and per service of that tenant (each 0..1). */
export interface TenantSampling {
  rate?: number;
  services?: Record<string, number>;
}

/** Server-side consistent probabilistic sampling by trace id (receive/sampler.ts). */
export interface SamplingConfig {
  rate: number; // 0..1 of traces kept; 1 keeps everything
  overrides: Record<string, TenantSampling> | undefined; // by tenant
  keepErrors: boolean; // spans with status error are kept whatever the rate
}

/** Span-derived RED and service-graph metrics on /metrics (ops/span-metrics.ts). */
export interface SpanMetricsConfig {
  maxSeries: number; // label sets of traces_spanmetrics_*; beyond: the __overflow__ series; 0 turns them off
  maxEdges: number; // client/server pairs of traces_service_graph_*; beyond: the __overflow__ edge
  serviceGraphWaitMs: number; // how long a client or server span waits for its other half
  serviceGraphMaxPending: number; // spans waiting for their other half; more are dropped (counted)
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
  websocket: WebSocketConfig;
  auth: AuthConfig;
  limits: LimitsConfig;
  cache: CacheConfig;
  sampling: SamplingConfig;
  spanMetrics: SpanMetricsConfig;
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
    tenantRetentionDays: undefined,
  },
  websocket: {
    maxFrameBytes: 16 * 1024 * 1024,
    maxUnackedFrames: 32,
    maxUnackedBytes: 1024 * 1024,
    maxConnections: 1024,
    pingIntervalMs: 30_000,
  },
  auth: {
    jwtSecret: undefined,
    publicKeyFile: undefined,
    jwksUrl: undefined,
    algorithms: undefined,
    issuer: undefined,
    audience: undefined,
    tenantClaim: 'tenant',
    clockToleranceS: 30,
    jwksCooldownMs: 30_000,
    jwksCacheMaxAgeMs: 10 * 60_000,
    privateKeyFile: undefined,
    production: false,
    allowOpen: false,
  },
  limits: {
    spansPerS: 100_000,
    burstSpans: 200_000,
    bytesPerS: 100 * 1024 * 1024,
    burstBytes: 200 * 1024 * 1024,
    instances: 1,
    overrides: undefined,
  },
  cache: { redisUrl: undefined, keyPrefix: 'th:', commandTimeoutMs: 100 },
  sampling: { rate: 1, overrides: undefined, keepErrors: true },
  spanMetrics: { maxSeries: 5000, maxEdges: 1000, serviceGraphWaitMs: 10_000, serviceGraphMaxPending: 10_000 },
  lifecycle: { shutdownDelayMs: 0, drainTimeoutMs: 20_000 },
};

import { ENV_KEYS, type EnvKey, type Section } from './config-env-keys.js';

export { ENV_KEYS };

export class ConfigError extends Error {}

const TRUE_VALUES = new Set(['1', 'true', 'yes', 'on']);
const FALSE_VALUES = new Set(['0', 'false', 'no', 'off']);

function parseEnvValue(name: string, spec: EnvKey, raw: string): unknown {
  if (spec.kind === 'string') return raw;
  if (spec.kind === 'list') {
    return raw
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
  }
  if (spec.kind === 'bool') {
    const lower = raw.trim().toLowerCase();
    if (TRUE_VALUES.has(lower)) return true;
    if (FALSE_VALUES.has(lower)) return false;
    throw new ConfigError(`${name} must be 1 or 0 (true or false), got '${raw}'`);
  }
  if (spec.kind === 'map') return parseMap(name, raw);
  if (spec.kind === 'number') {
    const number = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(number)) throw new ConfigError(`${name} must be a number, got '${raw}'`);
    return number;
  }
  if (spec.kind === 'json') {
    try {
      return JSON.parse(raw) as unknown;
    } catch (err) {
      throw new ConfigError(`${name} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ConfigError(`${name} must be a non-negative integer${spec.unit ? ` (${spec.unit})` : ''}, got '${raw}'`);
  }
  return value;
}

/** `key=integer` pairs separated by commas, e.g. `acme=3,beta=1`. */
function parseMap(name: string, raw: string): Record<string, number> {
  const map = Object.create(null) as Record<string, number>; // no prototype: a key may be `__proto__`
  const items = raw
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  for (const item of items) {
    const m = /^([^=\s]+)\s*=\s*(\d+)$/.exec(item);
    if (!m) throw new ConfigError(`${name}: '${item.slice(0, 60)}' is not key=integer (e.g. acme=3,beta=1)`);
    if (Object.hasOwn(map, m[1])) throw new ConfigError(`${name}: '${m[1].slice(0, 40)}' appears twice`);
    map[m[1]] = Number(m[2]);
  }
  return map;
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
  validateTenantRetention(config.storage);
  requireRange('WS_MAX_FRAME_BYTES', config.websocket.maxFrameBytes, 1024, 1024 * 1024 * 1024);
  requireRange('WS_MAX_UNACKED_FRAMES', config.websocket.maxUnackedFrames, 1, 65_536);
  requireRange('WS_MAX_UNACKED_BYTES', config.websocket.maxUnackedBytes, 1024, 1024 * 1024 * 1024);
  requireRange('WS_MAX_CONNECTIONS', config.websocket.maxConnections, 1, 1_000_000);
  requireRange('WS_PING_INTERVAL_MS', config.websocket.pingIntervalMs, 100, 300_000);
  validateAuth(config.auth);
  validateLimits(config.limits);
  requireRange('REDIS_COMMAND_TIMEOUT_MS', config.cache.commandTimeoutMs, 1, 10_000);
  validateSampling(config.sampling);
  requireRange('SPAN_METRICS_MAX_SERIES', config.spanMetrics.maxSeries, 0, 1_000_000);
  requireRange('SERVICE_GRAPH_MAX_EDGES', config.spanMetrics.maxEdges, 1, 1_000_000);
  requireRange('SERVICE_GRAPH_WAIT_MS', config.spanMetrics.serviceGraphWaitMs, 100, 600_000);
  requireRange('SERVICE_GRAPH_MAX_PENDING', config.spanMetrics.serviceGraphMaxPending, 1, 10_000_000);
}

function validateSampling(sampling: SamplingConfig): void {
  requireRange('SAMPLING_RATE', sampling.rate, 0, 1);
  if (sampling.overrides === undefined) return;
  if (typeof sampling.overrides !== 'object' || sampling.overrides === null || Array.isArray(sampling.overrides)) {
    throw new ConfigError('SAMPLING_OVERRIDES must be a JSON object keyed by tenant');
  }
  for (const [tenant, override] of Object.entries(sampling.overrides)) {
    const problem = tenantProblem(tenant);
    if (problem) throw new ConfigError(`SAMPLING_OVERRIDES: tenant '${tenant.slice(0, 40)}' ${problem}`);
    if (typeof override !== 'object' || override === null || Array.isArray(override)) {
      throw new ConfigError(`SAMPLING_OVERRIDES.${tenant} must be an object: {"rate": 0.1, "services": {"name": 1}}`);
    }
    for (const field of Object.keys(override)) {
      if (field !== 'rate' && field !== 'services') {
        throw new ConfigError(`SAMPLING_OVERRIDES.${tenant}.${field} is unknown; use rate, services`);
      }
    }
    if (override.rate !== undefined) requireRate(`SAMPLING_OVERRIDES.${tenant}.rate`, override.rate);
    if (override.services === undefined) continue;
    if (typeof override.services !== 'object' || override.services === null || Array.isArray(override.services)) {
      throw new ConfigError(`SAMPLING_OVERRIDES.${tenant}.services must be an object of service name → rate`);
    }
    for (const [service, rate] of Object.entries(override.services)) {
      requireRate(`SAMPLING_OVERRIDES.${tenant}.services.${service.slice(0, 60)}`, rate);
    }
  }
}

function requireRate(name: string, value: unknown): void {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new ConfigError(`${name} must be a number between 0 and 1, got ${JSON.stringify(value)}`);
  }
}

function validateTenantRetention(storage: StorageConfig): void {
  for (const [tenant, days] of Object.entries(storage.tenantRetentionDays ?? {})) {
    const problem = tenantProblem(tenant);
    if (problem) throw new ConfigError(`TENANT_RETENTION_DAYS: tenant '${tenant.slice(0, 40)}' ${problem}`);
    if (!Number.isSafeInteger(days) || days < 1 || days > storage.retentionDays) {
      throw new ConfigError(
        `TENANT_RETENTION_DAYS.${tenant} must be between 1 and RETENTION_DAYS (${storage.retentionDays}), got ${days}: ` +
          'whole partitions are dropped at RETENTION_DAYS, so no tenant can keep more',
      );
    }
  }
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function validateAuth(auth: AuthConfig): void {
  requireRange('JWT_CLOCK_TOLERANCE_S', auth.clockToleranceS, 0, 300);
  requireRange('JWT_JWKS_COOLDOWN_MS', auth.jwksCooldownMs, 0, 24 * 3_600_000);
  if (auth.jwtSecret !== undefined && Buffer.byteLength(auth.jwtSecret) < 32) {
    throw new ConfigError('JWT_SECRET must be at least 32 bytes (RFC 7518: an HMAC key as long as the hash)');
  }
  for (const alg of auth.algorithms ?? []) {
    if (!isJwsAlgorithm(alg)) throw new ConfigError(`JWT_ALGORITHMS: '${alg}' is not a supported JWS algorithm`);
  }
  if (auth.algorithms !== undefined && auth.algorithms.length === 0) throw new ConfigError('JWT_ALGORITHMS is empty');
  if (!auth.tenantClaim) throw new ConfigError('JWT_TENANT_CLAIM must not be empty');
  if (auth.jwksUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(auth.jwksUrl);
    } catch {
      throw new ConfigError(`JWT_JWKS_URL is not a URL: '${auth.jwksUrl}'`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) {
      throw new ConfigError('JWT_JWKS_URL must be https (or http on loopback): keys sent in clear can be forged');
    }
  }
}

const LIMIT_FIELDS: ReadonlyArray<keyof TenantLimits> = ['spansPerS', 'burstSpans', 'bytesPerS', 'burstBytes'];

function validateLimits(limits: LimitsConfig): void {
  requireRange('RATE_LIMIT_INSTANCES', limits.instances, 1, 10_000);
  requireRange('RATE_LIMIT_BURST_SPANS', limits.burstSpans, 1, Number.MAX_SAFE_INTEGER);
  requireRange('RATE_LIMIT_BURST_BYTES', limits.burstBytes, 1, Number.MAX_SAFE_INTEGER);
  if (limits.overrides === undefined) return;
  if (typeof limits.overrides !== 'object' || limits.overrides === null || Array.isArray(limits.overrides)) {
    throw new ConfigError('RATE_LIMIT_OVERRIDES must be a JSON object keyed by tenant');
  }
  for (const [tenant, override] of Object.entries(limits.overrides)) {
    const problem = tenantProblem(tenant);
    if (problem) throw new ConfigError(`RATE_LIMIT_OVERRIDES: tenant '${tenant.slice(0, 40)}' ${problem}`);
    if (typeof override !== 'object' || override === null || Array.isArray(override)) {
      throw new ConfigError(`RATE_LIMIT_OVERRIDES.${tenant} must be an object`);
    }
    for (const [field, value] of Object.entries(override)) {
      if (!LIMIT_FIELDS.includes(field as keyof TenantLimits)) {
        throw new ConfigError(`RATE_LIMIT_OVERRIDES.${tenant}.${field} is unknown; use ${LIMIT_FIELDS.join(', ')}`);
      }
      const minimum = field.startsWith('burst') ? 1 : 0;
      if (!Number.isSafeInteger(value) || (value as number) < minimum) {
        throw new ConfigError(`RATE_LIMIT_OVERRIDES.${tenant}.${field} must be an integer >= ${minimum}`);
      }
    }
  }
}
