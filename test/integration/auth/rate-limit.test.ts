/**
 * Per-tenant ingest rate limits shared by two server instances through the real Redis
 * (127.0.0.1:6379, or TEST_REDIS_URL; a missing Redis fails the file), and the fallback to the
 * local share when Redis is unreachable. Keys live under a prefix private to this run and are
 * deleted at the end.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_SECRET, postTraces, secretKey, signToken } from '../../helpers/auth.js';
import { useTestDatabase } from '../../helpers/db.js';
import { buildRequest, realisticSpans } from '../../helpers/otlp-fixtures.js';
import { freePort } from '../../helpers/private-postgres.js';
import { counterValue, startTestServer, type TestServer } from '../../helpers/server.js';

const REDIS_URL = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const KEY_PREFIX = `th-test:${process.pid}:${randomBytes(4).toString('hex')}:`;
const db = useTestDatabase();
let redis: Redis;
let a: TestServer;
let b: TestServer;

const limits = {
  overrides: {
    acme: { spansPerS: 100, burstSpans: 200 },
    initech: { spansPerS: 0, bytesPerS: 20_000, burstBytes: 40_000 },
  },
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const token = (tenant: string) => signToken({ key: secretKey(), alg: 'HS256', claims: { tenant } });
const body = (spans: number) => buildRequest({ spans: realisticSpans(spans, { nowMs: Date.now() }) }).protobuf;

async function storedSpans(tenant: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM spans WHERE tenant = $1', [tenant]);
  return rows[0].n;
}

async function ourKeys(): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${KEY_PREFIX}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

beforeAll(async () => {
  redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(
      `Redis is not reachable at ${REDIS_URL} (${(err as Error).message}): the rate-limit tests need a real Redis`,
    );
  }
  // A generous command timeout: on a busy test machine the default 100 ms can pass while the event
  // loop is stalled, and the decision would (correctly) fall back to the local share. Timeouts are
  // redis-faults.test.ts's subject; here every decision must come from the shared Redis bucket.
  const cache = { redisUrl: REDIS_URL, keyPrefix: KEY_PREFIX, commandTimeoutMs: 5000 };
  const overrides = { auth: { jwtSecret: TEST_SECRET }, cache, limits };
  a = await startTestServer(db.connectionString, overrides, { listen: true });
  b = await startTestServer(db.connectionString, overrides, { listen: true });
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  if (redis?.status === 'ready') {
    const keys = await ourKeys();
    if (keys.length > 0) await redis.del(...keys);
    expect(await ourKeys()).toEqual([]);
    await redis.quit();
  } else {
    redis?.disconnect();
  }
});

describe('per-tenant rate limits shared through Redis by two instances', () => {
  it('answers 429 + Retry-After to a tenant over its limit on the other instance, stores none of it, and counts it', async () => {
    const acme = await token('acme');
    expect((await postTraces(a.url, body(150), { token: acme })).status).toBe(200);
    const json = buildRequest({ spans: realisticSpans(150, { nowMs: Date.now() }) }).json;
    const limited = await postTraces(b.url, json, { token: acme });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^[12]$/);
    const status = JSON.parse(limited.body.toString()) as { code: number; message: string };
    expect(status.code).toBe(8); // RESOURCE_EXHAUSTED
    expect(status.message).toMatch(
      /^TH_ERR_AUTH_RATE_LIMITED: tenant acme is over its spans rate limit \(100 spans\/s, burst 200\)/,
    );
    expect(await storedSpans('acme')).toBe(150);
    expect(
      await counterValue(b.metrics, 'tracehouse_spans_refused_total', { tenant: 'acme', reason: 'rate_limited' }),
    ).toBe(150);
    expect(await counterValue(b.metrics, 'tracehouse_rate_limit_fallback_total')).toBe(0);
    const keys = (await ourKeys()).filter((key) => key.includes(':rate:')); // the query cache shares the prefix
    expect(keys.sort()).toEqual([`${KEY_PREFIX}{acme}:rate:bytes`, `${KEY_PREFIX}{acme}:rate:spans`]);
    expect(await redis.pttl(`${KEY_PREFIX}{acme}:rate:spans`)).toBeGreaterThan(0);
  });

  it('leaves another tenant’s ingest on both instances unaffected', async () => {
    const globex = await token('globex');
    const results = await Promise.all([
      postTraces(a.url, body(500), { token: globex }),
      postTraces(b.url, body(500), { token: globex }),
      postTraces(a.url, body(500), { token: globex }),
    ]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(await storedSpans('globex')).toBe(1500);
  });

  it('lets a request larger than the burst through a full bucket, then refuses before reading the body while in debt', async () => {
    await sleep(2100); // the acme bucket refills (200 spans at 100/s)
    const acme = await token('acme');
    expect((await postTraces(a.url, body(500), { token: acme })).status).toBe(200); // 3 s of debt
    const receivedBefore = await counterValue(b.metrics, 'tracehouse_spans_received_total', { tenant: 'acme' });
    const refusedBefore = await counterValue(b.metrics, 'tracehouse_requests_refused_total', {
      reason: 'rate_limited',
    });
    expect((await postTraces(b.url, body(1), { token: acme })).status).toBe(429); // Redis says: in debt
    expect((await postTraces(b.url, body(1), { token: acme })).status).toBe(429); // B knows, no body read
    expect((await postTraces(a.url, body(1), { token: acme })).status).toBe(429); // A knew since its 200
    expect(await counterValue(b.metrics, 'tracehouse_requests_refused_total', { reason: 'rate_limited' })).toBe(
      refusedBefore + 2,
    );
    expect(await counterValue(b.metrics, 'tracehouse_spans_received_total', { tenant: 'acme' })).toBe(receivedBefore);
    expect((await postTraces(b.url, body(1), { token: await token('globex') })).status).toBe(200);
    for (const server of [a, b]) {
      expect(await counterValue(server.metrics, 'tracehouse_rate_limit_fallback_total')).toBe(0);
    }
  });

  it('limits bytes per second before decoding the body', async () => {
    const initech = await token('initech');
    const payload = body(50);
    expect(payload.length).toBeGreaterThan(20_000);
    expect((await postTraces(a.url, payload, { token: initech })).status).toBe(200);
    const before = await counterValue(b.metrics, 'tracehouse_spans_received_total', { tenant: 'initech' });
    const limited = await postTraces(b.url, buildRequest({ spans: realisticSpans(50, { nowMs: Date.now() }) }).json, {
      token: initech,
    });
    expect(limited.status).toBe(429);
    expect(JSON.parse(limited.body.toString()).message).toMatch(/over its bytes rate limit \(20000 bytes\/s/);
    expect(await counterValue(b.metrics, 'tracehouse_spans_received_total', { tenant: 'initech' })).toBe(before);
  });
});

describe('Redis unreachable', () => {
  let c: TestServer;
  beforeAll(async () => {
    const closed = `redis://127.0.0.1:${await freePort()}`;
    const startedAt = Date.now();
    c = await startTestServer(
      db.connectionString,
      {
        auth: { jwtSecret: TEST_SECRET },
        cache: { redisUrl: closed, keyPrefix: KEY_PREFIX },
        limits: { ...limits, instances: 2 },
      },
      { listen: true },
    );
    expect(Date.now() - startedAt).toBeLessThan(3000);
  });
  afterAll(async () => {
    await c?.close();
  });

  it('keeps ingesting on the local share of the limit (limit / RATE_LIMIT_INSTANCES) and counts the fallback', async () => {
    const acme = await token('acme');
    const stored = await storedSpans('acme');
    expect((await postTraces(c.url, body(80), { token: acme })).status).toBe(200); // local burst: 200 / 2
    const limited = await postTraces(c.url, body(80), { token: acme });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^[12]$/);
    expect(await storedSpans('acme')).toBe(stored + 80);
    expect((await postTraces(c.url, body(500), { token: await token('globex') })).status).toBe(200);
    expect(await counterValue(c.metrics, 'tracehouse_rate_limit_fallback_total')).toBeGreaterThanOrEqual(4);
  });
});
