/**
 * The query API with its cache, in Redis (the shared one, keys under a private prefix) and in
 * process (no REDIS_URL): the same answers as PostgreSQL alone (a second server on the same
 * database with QUERY_CACHE_TTL_S=0), repeated views served from the cache, spans written after a
 * trace was cached never hidden, new services listed at once, and no value crossing tenants.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/db.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import {
  QUIET_MS,
  REDIS_URL,
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

const db = useTestDatabase();
const truth = useUncachedServer(db);

let tenantSeq = 0;
const newTenant = (): string => `qc${process.pid}x${(tenantSeq += 1)}`;

describe.each([
  ['in-process', undefined],
  ['Redis', REDIS_URL],
])('the query API with the %s cache', (_name, redisUrl) => {
  let server: TestServer;
  const prefix = uniquePrefix('qc-api');

  beforeAll(async () => {
    server = await startTestServer(db.connectionString, cacheOverrides(redisUrl, prefix));
  });
  afterAll(async () => {
    await server?.close();
    if (!redisUrl) return;
    const admin = new Redis(redisUrl);
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  it('answers repeated views from the cache with exactly what PostgreSQL answers', async () => {
    const token = await tokenFor(newTenant());
    const id = newTraceId();
    await ingestAs(server.app, token, traceSpans(id, 'cart', 4));
    await sleep(QUIET_MS + 50);
    const queries = queriesFor(id, 'cart');
    const expected = await answers(truth().app, token, queries);
    expect(expected.map((a) => a.status)).toEqual(queries.map(() => 200));

    const count = async () => ({
      hits: await cacheCount(server.metrics, 'hits', 'trace'),
      misses: await cacheCount(server.metrics, 'misses', 'trace'),
      fallbacks: await cacheCount(server.metrics, 'fallbacks', 'trace'),
      windowHits: await cacheCount(server.metrics, 'hits', 'trace_window'),
      windowMisses: await cacheCount(server.metrics, 'misses', 'trace_window'),
      operationHits: await cacheCount(server.metrics, 'hits', 'operations'),
    });
    const before = await count();
    expect(await answers(server.app, token, queries)).toEqual(expected);
    await sleep(50); // stores are offered without waiting
    expect(await answers(server.app, token, queries)).toEqual(expected);
    const after = await count();
    // 5 trace views per round: the first misses (PostgreSQL, then stored), the rest hit
    expect(after.hits + after.misses + after.fallbacks - before.hits - before.misses - before.fallbacks).toBe(10);
    expect(after.hits - before.hits).toBe(9);
    expect(after.windowHits + after.windowMisses - before.windowHits - before.windowMisses).toBe(
      after.misses - before.misses,
    );
    expect(after.operationHits - before.operationHits).toBeGreaterThanOrEqual(6);
  });

  it('never hides spans that arrived after a trace was cached, also outside its cached time range', async () => {
    const token = await tokenFor(newTenant());
    const id = newTraceId();
    const first = traceSpans(id, 'cart', 3);
    await ingestAs(server.app, token, first);
    await sleep(QUIET_MS + 50);
    await jaegerSpanIds(server.app, token, id);
    await sleep(50);
    const hits = await cacheCount(server.metrics, 'hits', 'trace');
    expect(await jaegerSpanIds(server.app, token, id)).toHaveLength(3);
    expect(await cacheCount(server.metrics, 'hits', 'trace')).toBe(hits + 1);

    const earlier = traceSpans(id, 'cart', 1, { agoMs: 120_000, name: 'earlier' });
    const later = traceSpans(id, 'cart', 1, { agoMs: 1_000, name: 'later' });
    await ingestAs(server.app, token, [...earlier, ...later]);
    const all = [...first, ...earlier, ...later].map((s) => s.spanId).sort();
    expect(await jaegerSpanIds(server.app, token, id)).toEqual(all);
    const queries = queriesFor(id, 'cart').slice(0, 5);
    expect(await answers(server.app, token, queries)).toEqual(await answers(truth().app, token, queries));

    await sleep(QUIET_MS + 50); // quiet again: cached again, now whole
    await jaegerSpanIds(server.app, token, id);
    await sleep(50);
    const again = await cacheCount(server.metrics, 'hits', 'trace');
    expect(await jaegerSpanIds(server.app, token, id)).toEqual(all);
    expect(await cacheCount(server.metrics, 'hits', 'trace')).toBe(again + 1);
  });

  it('lists a new service and a new operation as soon as their spans are committed', async () => {
    const token = await tokenFor(newTenant());
    await ingestAs(server.app, token, traceSpans(newTraceId(), 'cart', 2));
    await sleep(QUIET_MS + 50); // a catalog is not stored while an operation new to it may be committing
    const services = async () =>
      (await answers(server.app, token, [{ url: '/api/services' }, { url: '/api/services/cart/operations' }])).map(
        (a) => JSON.parse(a.body).data as string[],
      );
    expect(await services()).toEqual([['cart'], ['GET /cart', 'GET /cart step 1']]);
    await sleep(50);
    const hits = await cacheCount(server.metrics, 'hits', 'operations');
    expect(await services()).toEqual([['cart'], ['GET /cart', 'GET /cart step 1']]);
    expect(await cacheCount(server.metrics, 'hits', 'operations')).toBe(hits + 2);

    await ingestAs(server.app, token, traceSpans(newTraceId(), 'billing', 1, { name: 'charge' }));
    expect(await services()).toEqual([
      ['billing', 'cart'],
      ['GET /cart', 'GET /cart step 1'],
    ]);
    await ingestAs(server.app, token, traceSpans(newTraceId(), 'cart', 1, { name: 'DELETE /cart' }));
    expect(await services()).toEqual([
      ['billing', 'cart'],
      ['DELETE /cart', 'GET /cart', 'GET /cart step 1'],
    ]);
  });

  it('never serves one tenant what was cached for another, for the same trace id', async () => {
    const id = newTraceId();
    const tenants = [newTenant(), newTenant()];
    const tokens = await Promise.all(tenants.map(tokenFor));
    const spans = [traceSpans(id, 'svc-a', 2, { marker: 'a' }), traceSpans(id, 'svc-b', 3, { marker: 'b' })];
    await ingestAs(server.app, tokens[0], spans[0]);
    await ingestAs(server.app, tokens[1], spans[1]);
    await sleep(QUIET_MS + 50);
    const own = spans.map((list) => list.map((s) => s.spanId).sort());
    for (let round = 0; round < 3; round++) {
      for (const i of [0, 1]) {
        expect(await jaegerSpanIds(server.app, tokens[i], id)).toEqual(own[i]);
        const queries = queriesFor(id, i === 0 ? 'svc-a' : 'svc-b');
        expect(await answers(server.app, tokens[i], queries)).toEqual(await answers(truth().app, tokens[i], queries));
      }
      await sleep(50);
    }
    const stranger = await tokenFor(newTenant());
    const response = await server.app.inject({
      method: 'GET',
      url: `/api/traces/${id}`,
      headers: { authorization: `Bearer ${stranger}` },
    });
    expect(response.statusCode).toBe(404);
    expect(await cacheCount(server.metrics, 'hits', 'trace')).toBeGreaterThan(0);
  });
});
