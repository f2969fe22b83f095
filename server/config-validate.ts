/**
 * The checks a loaded configuration must pass (config.ts calls validateConfig last): ranges with
 * their units, cross-section rules (pool size vs writers, batch vs queue) and the auth, sampling,
 * retention and rate-limit sections. A failure is a ConfigError naming the environment variable.
 */
import { isJwsAlgorithm } from './auth/algorithms.js';
import { tenantProblem } from './auth/tenant.js';
import type { AuthConfig, Config, LimitsConfig, SamplingConfig, StorageConfig, TenantLimits } from './config.js';

export class ConfigError extends Error {}

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
  requireRange('QUERY_CACHE_TTL_S', config.cache.queryTtlS, 0, 86_400);
  requireRange('QUERY_CACHE_QUIET_MS', config.cache.queryQuietMs, 100, 600_000);
  requireRange('QUERY_CACHE_MAX_BYTES', config.cache.queryMaxBytes, 1024 * 1024, 64 * 1024 * 1024 * 1024);
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
