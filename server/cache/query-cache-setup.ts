/**
 * Chooses and starts the query cache: Redis when REDIS_URL is set (its own connection), the
 * in-process cache otherwise, none when QUERY_CACHE_TTL_S is 0. Only app.ts calls this.
 */
import type { Logger } from 'pino';
import type { CacheConfig } from '../config.js';
import type { Metrics } from '../ops/metrics.js';
import { PassThroughQueryCache, type QueryCache, type QueryCacheUpdates } from '../query/query-cache.js';
import { LocalQueryCache } from './query-cache-local.js';
import { policyFrom } from './query-cache-policy.js';
import { RedisQueryCache } from './query-cache-redis.js';
import { RedisClient } from './redis-client.js';

export interface RunningQueryCache {
  kind: 'redis' | 'local' | 'off';
  cache: QueryCache;
  updates: QueryCacheUpdates;
  /** Idempotent: closes the Redis connection, if any. */
  stop(): Promise<void>;
}

export async function createQueryCache(
  config: CacheConfig,
  metrics: Metrics,
  log: Pick<Logger, 'info' | 'warn' | 'debug'>,
): Promise<RunningQueryCache> {
  const policy = policyFrom(config);
  if (policy.ttlMs === 0) {
    const none = new PassThroughQueryCache();
    return { kind: 'off', cache: none, updates: none, stop: async () => {} };
  }
  if (!config.redisUrl) {
    log.info({ maxBytes: config.queryMaxBytes }, 'REDIS_URL is not set: the query cache is kept in this process');
    const local = new LocalQueryCache({ policy, maxBytes: config.queryMaxBytes });
    return { kind: 'local', cache: local, updates: local, stop: async () => {} };
  }
  const redis = new RedisClient({
    url: config.redisUrl,
    commandTimeoutMs: config.commandTimeoutMs,
    log,
    purpose: { name: 'the query cache', fallback: 'queries read PostgreSQL only' },
  });
  await redis.start();
  const cache = new RedisQueryCache({ redis, keyPrefix: config.keyPrefix, policy, metrics, log });
  return { kind: 'redis', cache, updates: cache, stop: () => redis.stop() };
}
