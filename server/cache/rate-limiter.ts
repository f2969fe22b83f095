/**
 * Per-tenant ingest rate limits: spans/s and bytes/s, each with a burst, shared by every instance
 * through one GCRA script in Redis (keys `<REDIS_KEY_PREFIX>{<tenant>}:rate:spans|bytes`; the
 * braces keep a tenant's keys on one Redis Cluster slot). Per-tenant overrides come from
 * RATE_LIMIT_OVERRIDES.
 *
 * Why it holds state: when Redis is not configured, down or slow, each instance decides alone on
 * its local share of the limit (limit / RATE_LIMIT_INSTANCES) instead of failing ingest, and
 * counts tracehouse_rate_limit_fallback_total. It also remembers, per tenant, until when any
 * request would be refused (the bucket is in debt), so such requests are refused before their body
 * is read, without asking Redis.
 */
import type { Logger } from 'pino';
import type { CacheConfig, LimitsConfig, TenantLimits } from '../config.js';
import type { Metrics } from '../ops/metrics.js';
import { GCRA_LUA, LocalGcra, bucketFor, type BucketCharge, type GcraDecision } from './gcra.js';
import { RedisClient } from './redis-client.js';

export interface RateCost {
  spans: number;
  bytes: number;
}

export type RateLimitKind = 'spans' | 'bytes';

export type RateDecision =
  | { allowed: true }
  | { allowed: false; retryAfterMs: number; exceeded: RateLimitKind; ratePerS: number; burst: number };

const ALLOWED: RateDecision = { allowed: true };
const MAX_REMEMBERED_BLOCKS = 10_000;

export interface RateLimiterDeps {
  limits: LimitsConfig;
  keyPrefix: string;
  metrics: Metrics;
  redis?: RedisClient;
  now?: () => number; // ms since the epoch
}

export class RateLimiter {
  readonly #deps: RateLimiterDeps;
  readonly #local = new LocalGcra();
  readonly #blockedUntil = new Map<string, number>(); // tenant → ms since the epoch
  readonly #now: () => number;

  constructor(deps: RateLimiterDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  /** The tenant's limits: its override merged over the defaults. 0 means no limit. */
  limitsFor(tenant: string): TenantLimits {
    const { spansPerS, burstSpans, bytesPerS, burstBytes, overrides } = this.#deps.limits;
    return { spansPerS, burstSpans, bytesPerS, burstBytes, ...overrides?.[tenant] };
  }

  /**
   * Milliseconds during which every request of the tenant would be refused, as last seen by this
   * instance (0: unknown or not blocked). Synchronous and local: for refusing before reading a body.
   */
  blockedForMs(tenant: string): number {
    const until = this.#blockedUntil.get(tenant);
    if (until === undefined) return 0;
    const left = until - this.#now();
    if (left > 0) return left;
    this.#blockedUntil.delete(tenant);
    return 0;
  }

  /** Charges `cost` to the tenant's buckets: all of it, or nothing when refused. Never rejects. */
  async take(tenant: string, cost: RateCost): Promise<RateDecision> {
    const limits = this.limitsFor(tenant);
    const kinds: RateLimitKind[] = [];
    if (limits.spansPerS > 0) kinds.push('spans');
    if (limits.bytesPerS > 0) kinds.push('bytes');
    if (kinds.length === 0) return ALLOWED;
    const keys = kinds.map((kind) => `${this.#deps.keyPrefix}{${tenant}}:rate:${kind}`);
    const decision = await this.#decide(keys, kinds, limits, cost);
    const nowMs = this.#now();
    if (decision.blockedUs > 0) this.#rememberBlock(tenant, nowMs + decision.blockedUs / 1000);
    if (decision.refusedIndex < 0) return ALLOWED;
    const exceeded = kinds[decision.refusedIndex];
    return {
      allowed: false,
      retryAfterMs: decision.waitUs / 1000,
      exceeded,
      ratePerS: exceeded === 'spans' ? limits.spansPerS : limits.bytesPerS,
      burst: exceeded === 'spans' ? limits.burstSpans : limits.burstBytes,
    };
  }

  async #decide(keys: string[], kinds: RateLimitKind[], limits: TenantLimits, cost: RateCost): Promise<GcraDecision> {
    const { redis, metrics } = this.#deps;
    if (redis?.available) {
      const shared = charges(kinds, limits, cost, 1);
      const args = shared.flatMap(({ bucket, cost: units }) => [bucket.intervalUs, bucket.toleranceUs, units]);
      try {
        return fromLua(await redis.runScript(GCRA_LUA, keys, args));
      } catch {
        // counted below; the client logs the outage once
      }
    }
    if (redis) metrics.rateLimitFallbacks.inc();
    const local = charges(kinds, limits, cost, this.#deps.limits.instances);
    return this.#local.take(keys, local, Math.round(this.#now() * 1000));
  }

  #rememberBlock(tenant: string, untilMs: number): void {
    if (this.#blockedUntil.size >= MAX_REMEMBERED_BLOCKS) {
      const nowMs = this.#now();
      for (const [key, until] of this.#blockedUntil) if (until <= nowMs) this.#blockedUntil.delete(key);
      if (this.#blockedUntil.size >= MAX_REMEMBERED_BLOCKS) return;
    }
    this.#blockedUntil.set(tenant, untilMs);
  }
}

function charges(kinds: RateLimitKind[], limits: TenantLimits, cost: RateCost, share: number): BucketCharge[] {
  return kinds.map((kind) => {
    const bucket =
      kind === 'spans'
        ? bucketFor(limits.spansPerS, limits.burstSpans, share)
        : bucketFor(limits.bytesPerS, limits.burstBytes, share);
    return { bucket: bucket!, cost: kind === 'spans' ? cost.spans : cost.bytes };
  });
}

function fromLua(result: unknown): GcraDecision {
  const [allowed, waitUs, blockedUs, refused] = result as number[];
  return { allowed: allowed === 1, waitUs, blockedUs, refusedIndex: refused - 1 };
}

/**
 * The limiter and, when REDIS_URL is set, its Redis connection (started). stop() closes it;
 * redisAvailable() says whether Redis is in use right now (undefined without REDIS_URL).
 */
export async function createRateLimiter(
  limits: LimitsConfig,
  cache: CacheConfig,
  metrics: Metrics,
  log: Pick<Logger, 'info' | 'warn'>,
): Promise<{ limiter: RateLimiter; stop: () => Promise<void>; redisAvailable: () => boolean | undefined }> {
  let redis: RedisClient | undefined;
  if (cache.redisUrl) {
    redis = new RedisClient({ url: cache.redisUrl, commandTimeoutMs: cache.commandTimeoutMs, log });
    await redis.start();
  } else {
    log.info({ instances: limits.instances }, 'REDIS_URL is not set: rate limits are kept in this process');
  }
  const limiter = new RateLimiter({ limits, keyPrefix: cache.keyPrefix, metrics, redis });
  return { limiter, stop: async () => redis?.stop(), redisAvailable: () => redis?.available };
}
