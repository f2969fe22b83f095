/**
 * Reliability catalog rows 13 and 14 for the query cache, on a private redis-server (never the
 * shared one): Redis stopped mid-test and started again empty, Redis stalled (SIGSTOP) while
 * spans are added to a cached trace, and a Redis that accepts connections but never answers. Every
 * answer must equal PostgreSQL's (a second server on the same database without a cache), ingest
 * must never wait for Redis, and the cache must fill again once Redis is back.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/db.js';
import { startPrivateRedis, type PrivateRedis } from '../../helpers/private-redis.js';
import { counterValue, startTestServer, type TestServer } from '../../helpers/server.js';
import { startSilentRedis } from '../../helpers/silent-redis.js';
import {
  QUIET_MS,
  answers,
  cacheCount,
  cacheOverrides,
  ingestAs,
  jaegerSpanIds,
  newTraceId,
  queriesFor,
  sleep,
  tokenFor,
  traceSpans,
  uniquePrefix,
  useUncachedServer,
} from './cache-fixtures.js';

const COMMAND_TIMEOUT_MS = 200;
const db = useTestDatabase();
const truth = useUncachedServer(db);

const droppedUpdates = (server: TestServer): Promise<number> =>
  counterValue(server.metrics, 'tracehouse_query_cache_updates_dropped_total');

/** Reads `traceId` until the cache answers it again (hits rise), checking every answer meanwhile. */
async function readUntilCached(server: TestServer, token: string, traceId: string, spanIds: string[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  const hits = await cacheCount(server.metrics, 'hits', 'trace');
  while ((await cacheCount(server.metrics, 'hits', 'trace')) === hits) {
    if (Date.now() > deadline) throw new Error('the cache did not fill again within 10 s');
    expect(await jaegerSpanIds(server.app, token, traceId)).toEqual(spanIds);
    await sleep(100);
  }
}

describe('a private Redis going away and coming back', () => {
  let redis: PrivateRedis;
  let server: TestServer;
  const prefix = uniquePrefix('qc-outage');

  beforeAll(async () => {
    redis = await startPrivateRedis();
    server = await startTestServer(
      db.connectionString,
      cacheOverrides(redis.url, prefix, { commandTimeoutMs: COMMAND_TIMEOUT_MS }),
    );
  });
  afterAll(async () => {
    await server?.close();
    await redis?.stop();
  });

  it('gives the same answers with Redis stopped mid-test, and refills the cache when it returns', async () => {
    const token = await tokenFor('outage');
    const id = newTraceId();
    const spans = traceSpans(id, 'cart', 4);
    await ingestAs(server.app, token, spans);
    await sleep(QUIET_MS + 50);
    const queries = queriesFor(id, 'cart');
    const expected = await answers(truth().app, token, queries);
    expect(await answers(server.app, token, queries)).toEqual(expected);
    expect(await answers(server.app, token, queries)).toEqual(expected);
    expect(await cacheCount(server.metrics, 'hits', 'trace')).toBeGreaterThanOrEqual(4);

    await redis.stop();
    const fallbacks = await cacheCount(server.metrics, 'fallbacks', 'trace');
    expect(await answers(server.app, token, queries)).toEqual(expected);
    expect(await cacheCount(server.metrics, 'fallbacks', 'trace')).toBe(fallbacks + 5);
    expect(await cacheCount(server.metrics, 'fallbacks', 'operations')).toBeGreaterThanOrEqual(4);

    const dropped = await droppedUpdates(server);
    const more = traceSpans(id, 'cart', 2, { name: 'during outage' });
    await ingestAs(server.app, token, more); // ingest does not need Redis
    expect(await droppedUpdates(server)).toBe(dropped + 1);
    const afterOutage = await answers(truth().app, token, queries);
    expect(await answers(server.app, token, queries)).toEqual(afterOutage);

    await redis.start(); // empty, on the same port
    await sleep(QUIET_MS + 50);
    await readUntilCached(server, token, id, [...spans, ...more].map((s) => s.spanId).sort());
    expect(await answers(server.app, token, queries)).toEqual(afterOutage);
  });

  it('never serves a trace cached before Redis stalled once spans were added during the stall', async () => {
    const token = await tokenFor('stall');
    const id = newTraceId();
    const first = traceSpans(id, 'cart', 3);
    await ingestAs(server.app, token, first);
    await sleep(QUIET_MS + 50);
    await jaegerSpanIds(server.app, token, id);
    await readUntilCached(server, token, id, first.map((s) => s.spanId).sort());
    const admin = new Redis(redis.url);
    const generation = Number(await admin.get(`${prefix}qc:v1:gen`));
    expect(generation).toBeGreaterThan(0);

    redis.pause(); // connections stay open, nothing is answered, the cached trace stays in Redis
    try {
      const startedAt = performance.now();
      expect(await jaegerSpanIds(server.app, token, id)).toEqual(first.map((s) => s.spanId).sort());
      expect(performance.now() - startedAt).toBeLessThan(COMMAND_TIMEOUT_MS + 1000);
      // the lookup timed out, so the breaker is open: this request's cache update is dropped, not sent
      const later = traceSpans(id, 'cart', 2, { name: 'during stall' });
      const dropped = await droppedUpdates(server);
      await ingestAs(server.app, token, later);
      expect(await droppedUpdates(server)).toBe(dropped + 1);
      const all = [...first, ...later].map((s) => s.spanId).sort();
      expect(await jaegerSpanIds(server.app, token, id)).toEqual(all);

      redis.resume(); // the stale trace is still there, and no mark reached it
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline) {
        expect(await jaegerSpanIds(server.app, token, id)).toEqual(all);
        await sleep(50);
      }
      expect(Number(await admin.get(`${prefix}qc:v1:gen`))).toBeGreaterThan(generation);
      await readUntilCached(server, token, id, all);
    } finally {
      redis.resume();
      await admin.quit();
    }
  });
});

describe('a Redis that accepts connections and never answers', () => {
  it('costs at most about the command timeout per lookup, never slows ingest, and answers stay right', async () => {
    const silent = await startSilentRedis();
    const timeoutMs = 1000;
    const server = await startTestServer(db.connectionString, {
      ...cacheOverrides(silent.url, uniquePrefix('qc-silent'), { commandTimeoutMs: timeoutMs }),
      // the rate limiter shares REDIS_URL and waits up to the timeout by design: not under test here
      limits: { spansPerS: 0, bytesPerS: 0 },
    });
    try {
      const token = await tokenFor('silent');
      const id = newTraceId();
      // each ingest sends its cache update and answers without waiting for it (it would take >= 1 s)
      for (let i = 0; i < 3; i++) {
        expect(await ingestAs(server.app, token, traceSpans(id, 'cart', 2, { name: `batch ${i}` }))).toBeLessThan(
          timeoutMs * 0.8,
        );
      }
      await sleep(QUIET_MS + 50);
      const queries = queriesFor(id, 'cart').slice(0, 5);
      const expected = await answers(truth().app, token, queries);
      const startedAt = performance.now();
      for (let round = 0; round < 2; round++) {
        const roundStart = performance.now();
        expect(await answers(server.app, token, queries)).toEqual(expected);
        expect(performance.now() - roundStart).toBeLessThan(timeoutMs + 1500); // one timeout at most per round
      }
      expect(performance.now() - startedAt).toBeLessThan(2 * timeoutMs + 2000);
      expect(await cacheCount(server.metrics, 'fallbacks', 'trace')).toBe(10);
      expect(await cacheCount(server.metrics, 'hits', 'trace')).toBe(0);
      expect(await cacheCount(server.metrics, 'errors', 'trace')).toBeLessThanOrEqual(2);
      expect(await cacheCount(server.metrics, 'errors', 'update')).toBeGreaterThanOrEqual(1);
      expect(silent.scripts()).toBeGreaterThanOrEqual(4); // three updates and at least one lookup were sent
    } finally {
      await silent.close();
      const closing = performance.now();
      await server.close();
      expect(performance.now() - closing).toBeLessThan(timeoutMs); // no wait for a Redis that is gone
    }
  });
});
