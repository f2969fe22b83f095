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
  queryTtlS: number; // query cache entries live this long; 0 turns the query cache off
  queryQuietMs: number; // a trace is cached only once unchanged this long (server/query/query-cache.ts)
  queryMaxBytes: number; // in-process query cache size; no trace over 1/16 of it is cached (Redis too)
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
    maxQueueSpans: 32_768,
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
  cache: {
    redisUrl: undefined,
    keyPrefix: 'th:',
    commandTimeoutMs: 100,
    queryTtlS: 300,
    queryQuietMs: 10_000,
    queryMaxBytes: 64 * 1024 * 1024,
  },
  sampling: { rate: 1, overrides: undefined, keepErrors: true },
  spanMetrics: { maxSeries: 5000, maxEdges: 1000, serviceGraphWaitMs: 10_000, serviceGraphMaxPending: 10_000 },
  lifecycle: { shutdownDelayMs: 0, drainTimeoutMs: 20_000 },
};

import { ENV_KEYS, type EnvKey, type Section } from './config-env-keys.js';
import { ConfigError, validateConfig } from './config-validate.js';

export { ConfigError, ENV_KEYS, validateConfig };

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
