/**
 * Reliability catalog rows 13 and 14 for the rate limiter: a Redis that accepts connections but
 * never answers the script (slow), and one that is not there at all. Each decision must come back
 * within about the command timeout, on the local share, and stopping must leave no socket or timer.
 */
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../../server/cache/rate-limiter.js';
import { RedisClient } from '../../../server/cache/redis-client.js';
import { loadConfig } from '../../../server/config.js';
import { createMetrics } from '../../../server/ops/metrics.js';
import { freePort } from '../../helpers/private-postgres.js';
import { counterValue } from '../../helpers/server.js';
import { startSilentRedis, type SilentRedis } from '../../helpers/silent-redis.js';

const log = pino({ level: 'silent' });
const COMMAND_TIMEOUT_MS = 50;

function limiterWith(redis: RedisClient) {
  const config = loadConfig({}, { limits: { overrides: { acme: { spansPerS: 100, burstSpans: 200 } }, instances: 2 } });
  const metrics = createMetrics(new Registry());
  return { limiter: new RateLimiter({ limits: config.limits, keyPrefix: 'th-test:', metrics, redis }), metrics };
}

function openHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

describe('a slow Redis', () => {
  let silent: SilentRedis;
  beforeAll(async () => {
    silent = await startSilentRedis();
  });
  afterAll(async () => {
    await silent?.close();
  });

  it('costs one command timeout, then the breaker keeps decisions local for a second', async () => {
    const redis = new RedisClient({ url: silent.url, commandTimeoutMs: COMMAND_TIMEOUT_MS, log });
    await redis.start();
    expect(redis.available).toBe(true);
    const { limiter, metrics } = limiterWith(redis);
    try {
      const first = Date.now();
      expect(await limiter.take('acme', { spans: 10, bytes: 0 })).toEqual({ allowed: true });
      expect(Date.now() - first).toBeLessThan(COMMAND_TIMEOUT_MS + 950); // bounded by the timeout, not by Redis
      expect(redis.available).toBe(false);
      const startedAt = Date.now();
      for (let i = 0; i < 50; i++) await limiter.take('acme', { spans: 1, bytes: 0 });
      expect(Date.now() - startedAt).toBeLessThan(COMMAND_TIMEOUT_MS * 5); // 50 decisions, no timeout among them
      expect(silent.scripts()).toBe(1);
      expect(await counterValue(metrics, 'tracehouse_rate_limit_fallback_total')).toBe(51);
      // the local share is 100 spans of burst: 60 taken, so 50 more are refused
      expect(await limiter.take('acme', { spans: 50, bytes: 0 })).toMatchObject({ allowed: false, exceeded: 'spans' });
    } finally {
      await redis.stop();
    }
  });
});

describe('no Redis at all', () => {
  it('decides locally at once, and stopping leaves no socket or timer behind', async () => {
    const before = openHandles();
    const redis = new RedisClient({
      url: `redis://127.0.0.1:${await freePort()}`,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      log,
    });
    await redis.start();
    const { limiter, metrics } = limiterWith(redis);
    const startedAt = Date.now();
    expect(await limiter.take('acme', { spans: 100, bytes: 0 })).toEqual({ allowed: true });
    expect(await limiter.take('acme', { spans: 1, bytes: 0 })).toMatchObject({ allowed: false });
    expect(Date.now() - startedAt).toBeLessThan(COMMAND_TIMEOUT_MS * 5); // no connect or command wait
    expect(await counterValue(metrics, 'tracehouse_rate_limit_fallback_total')).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 300)); // let a reconnect attempt be scheduled
    await redis.stop();
    const after = openHandles();
    for (const kind of ['Timeout', 'TCPSocketWrap', 'TCPWRAP', 'ConnectWrap']) {
      expect(after[kind] ?? 0, kind).toBeLessThanOrEqual(before[kind] ?? 0);
    }
  });
});
