/**
 * The QueryCache contract and staleness rule (server/query/query-cache.ts), checked on both
 * implementations: the in-process cache and the Redis one on the shared Redis (127.0.0.1:6379 or
 * TEST_REDIS_URL; keys under a prefix private to this run, removed afterwards; never flushed).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalQueryCache } from '../../../server/cache/query-cache-local.js';
import type { QueryCachePolicy } from '../../../server/cache/query-cache-policy.js';
import { RedisQueryCache } from '../../../server/cache/query-cache-redis.js';
import { RedisClient } from '../../../server/cache/redis-client.js';
import { createMetrics } from '../../../server/ops/metrics.js';
import type { CacheStamp, QueryCache, QueryCacheUpdates, TraceLookup } from '../../../server/query/query-cache.js';
import type { StoredSpan } from '../../../server/storage/reader-types.js';
import { makeRow, makeTrace, traceId } from '../storage/span-rows.js';

const REDIS_URL = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const PREFIX = `th-test-qc-${process.pid}-${randomBytes(4).toString('hex')}:`;
const QUIET_MS = 400;
const POLICY: QueryCachePolicy = { ttlMs: 60_000, quietMs: QUIET_MS, maxTraceBytes: 64 * 1024 };
const log = pino({ level: 'silent' });
const QUIET_SINCE = () => new Date(Date.now() - 2 * QUIET_MS);

type Cache = QueryCache & QueryCacheUpdates;

let admin: Redis;
const clients: RedisClient[] = [];

beforeAll(async () => {
  admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect().catch((err: Error) => {
    throw new Error(`Redis is not reachable at ${REDIS_URL} (${err.message}): these tests need a real Redis`);
  });
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.stop()));
  const keys = await admin.keys(`${PREFIX}*`);
  if (keys.length > 0) await admin.del(...keys);
  await admin.quit();
});

async function redisCache(prefix = PREFIX): Promise<RedisQueryCache> {
  const redis = new RedisClient({ url: REDIS_URL, commandTimeoutMs: 2000, log });
  clients.push(redis);
  await redis.start();
  return new RedisQueryCache({ redis, keyPrefix: prefix, policy: POLICY, metrics: createMetrics(new Registry()), log });
}

const IMPLEMENTATIONS: Array<[string, () => Promise<Cache>]> = [
  ['in-process', async () => new LocalQueryCache({ policy: POLICY, maxBytes: 16 * 1024 * 1024 })],
  ['Redis', () => redisCache()],
];

/** A trace as the reader returns it (no queue bookkeeping), sorted by start time. */
function storedTrace(count = 3): { id: Buffer; spans: StoredSpan[] } {
  const rows = makeTrace(count);
  const spans = rows.map(({ sizeBytes: _s, samplingWeight: _w, sharedAttributes: _a, ...span }) => span);
  return { id: rows[0].traceId, spans };
}

function windowOf(spans: StoredSpan[]) {
  return { startUnixNano: spans[0].startTimeUnixNano, endUnixNano: spans[spans.length - 1].endTimeUnixNano };
}

function stampOf(lookup: TraceLookup): CacheStamp {
  if (lookup.kind !== 'miss' && lookup.kind !== 'window') throw new Error(`expected a miss, got ${lookup.kind}`);
  if (!lookup.stamp) throw new Error('a miss without a stamp');
  return lookup.stamp;
}

describe.each(IMPLEMENTATIONS)('the %s query cache', (_name, create) => {
  let cache: Cache;
  beforeAll(async () => {
    cache = await create();
  });

  it('returns a stored trace exactly, and only to its own tenant', async () => {
    const { id, spans } = storedTrace();
    const stamp = stampOf(await cache.lookupTrace('acme', id));
    await cache.storeTrace('acme', id, stamp, { window: windowOf(spans), spans, updatedAt: QUIET_SINCE() });
    expect(await cache.lookupTrace('acme', id)).toEqual({ kind: 'trace', spans });
    expect((await cache.lookupTrace('globex', id)).kind).toBe('miss');
    expect((await cache.lookupTrace('acme2', id)).kind).toBe('miss');
  });

  it('does not store a trace that changed within the quiet period', async () => {
    const { id, spans } = storedTrace();
    const stamp = stampOf(await cache.lookupTrace('acme', id));
    await cache.storeTrace('acme', id, stamp, { window: windowOf(spans), spans, updatedAt: new Date() });
    expect((await cache.lookupTrace('acme', id)).kind).toBe('miss');
  });

  it('refuses a store when the trace was written after its lookup, and drops an entry written after it was stored', async () => {
    const { id, spans } = storedTrace();
    const entry = { window: windowOf(spans), spans, updatedAt: QUIET_SINCE() };
    const early = stampOf(await cache.lookupTrace('acme', id));
    cache.noteWritten('acme', [makeRow({ traceId: id })]); // committed while the reader read PostgreSQL
    await cache.storeTrace('acme', id, early, entry);
    expect((await cache.lookupTrace('acme', id)).kind).toBe('miss');

    const other = storedTrace();
    const otherEntry = { window: windowOf(other.spans), spans: other.spans, updatedAt: QUIET_SINCE() };
    await cache.storeTrace('acme', other.id, stampOf(await cache.lookupTrace('acme', other.id)), otherEntry);
    expect((await cache.lookupTrace('acme', other.id)).kind).toBe('trace');
    cache.noteWritten('acme', [makeRow({ traceId: other.id })]);
    expect((await cache.lookupTrace('acme', other.id)).kind).toBe('miss');
    // while the mark lives, nothing is stored for that trace; after it, the trace may be cached again
    await cache.storeTrace('acme', other.id, stampOf(await cache.lookupTrace('acme', other.id)), otherEntry);
    expect((await cache.lookupTrace('acme', other.id)).kind).toBe('miss');
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS + 50));
    await cache.storeTrace('acme', other.id, stampOf(await cache.lookupTrace('acme', other.id)), otherEntry);
    expect((await cache.lookupTrace('acme', other.id)).kind).toBe('trace');
  });

  it('refuses a store that comes too long after its lookup', async () => {
    const { id, spans } = storedTrace();
    const stamp = stampOf(await cache.lookupTrace('acme', id));
    const old = { ...stamp, atMs: stamp.atMs - QUIET_MS };
    await cache.storeTrace('acme', id, old, { window: windowOf(spans), spans, updatedAt: QUIET_SINCE() });
    expect((await cache.lookupTrace('acme', id)).kind).toBe('miss');
  });

  it('keeps only the window of a trace too big to store, and stores the trace read through it', async () => {
    const big = storedTrace(400);
    const window = windowOf(big.spans);
    const stamp = stampOf(await cache.lookupTrace('acme', big.id));
    await cache.storeTrace('acme', big.id, stamp, { window, spans: big.spans, updatedAt: QUIET_SINCE() });
    const lookup = await cache.lookupTrace('acme', big.id);
    expect(lookup).toMatchObject({ kind: 'window', window });

    // a trace read through the window is offered with that lookup's stamp
    if (lookup.kind !== 'window') throw new Error('expected a window');
    const head = big.spans.slice(0, 2);
    await cache.storeTrace('acme', big.id, lookup.stamp, { window, spans: head });
    expect(await cache.lookupTrace('acme', big.id)).toEqual({ kind: 'trace', spans: head });
  });

  it('drops the catalog when an operation it lacks is written, and keeps it for one it has', async () => {
    const tenant = `cat-${randomBytes(3).toString('hex')}`;
    const operations = [{ serviceName: 'checkout', spanName: 'GET /api/items', spanKind: 2 }];
    const miss = await cache.lookupOperations(tenant);
    if (miss.kind !== 'miss' || !miss.stamp) throw new Error('expected a miss');
    await cache.storeOperations(tenant, miss.stamp, operations);
    expect(await cache.lookupOperations(tenant)).toEqual({ kind: 'hit', operations });
    expect((await cache.lookupOperations(`${tenant}x`)).kind).toBe('miss');

    cache.noteWritten(tenant, [makeRow()]); // checkout / GET /api/items / server: already listed
    expect((await cache.lookupOperations(tenant)).kind).toBe('hit');
    cache.noteWritten(tenant, [makeRow({ serviceName: 'payments', name: 'charge' })]);
    const after = await cache.lookupOperations(tenant);
    expect(after.kind).toBe('miss');
    // the catalog read before that write may not be stored now
    if (after.kind !== 'miss' || !after.stamp) throw new Error('expected a miss');
    await cache.storeOperations(tenant, miss.stamp, operations);
    await cache.storeOperations(tenant, after.stamp, operations);
    expect((await cache.lookupOperations(tenant)).kind).toBe('miss');
  });
});

describe('the Redis query cache generation', () => {
  it('moves on a first connection, so values cached before an instance started are not trusted', async () => {
    const prefix = `${PREFIX}gen-${randomBytes(3).toString('hex')}:`;
    const first = await redisCache(prefix);
    const { id, spans } = storedTrace();
    const stamp = stampOf(await first.lookupTrace('acme', id));
    expect(await admin.get(`${prefix}qc:v1:gen`)).toBe('1');
    await first.storeTrace('acme', id, stamp, { window: windowOf(spans), spans, updatedAt: QUIET_SINCE() });
    expect((await first.lookupTrace('acme', id)).kind).toBe('trace');
    expect(await admin.get(`${prefix}qc:v1:gen`)).toBe('1'); // once per connection, not per lookup

    const second = await redisCache(prefix);
    expect((await second.lookupTrace('acme', id)).kind).toBe('miss');
    expect(await admin.get(`${prefix}qc:v1:gen`)).toBe('2');
    expect((await first.lookupTrace('acme', id)).kind).toBe('miss'); // one generation for all instances
  });

  it('keeps tenants apart in key names', async () => {
    const prefix = `${PREFIX}keys-${randomBytes(3).toString('hex')}:`;
    const cache = await redisCache(prefix);
    const id = traceId();
    const { spans } = storedTrace();
    const own = spans.map((s) => ({ ...s, traceId: id }));
    const stamp = stampOf(await cache.lookupTrace('acme', id));
    await cache.storeTrace('acme', id, stamp, { window: windowOf(own), spans: own, updatedAt: QUIET_SINCE() });
    const keys = (await admin.keys(`${prefix}*`)).sort();
    expect(keys).toEqual([
      `${prefix}qc:v1:gen`,
      `${prefix}qc:v1:{acme}:g1:t:${id.toString('hex')}`,
      `${prefix}qc:v1:{acme}:g1:w:${id.toString('hex')}`,
    ]);
    const ttl = await admin.pttl(keys[1]);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(POLICY.ttlMs);
  });
});
