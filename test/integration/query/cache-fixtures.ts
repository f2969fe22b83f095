/**
 * Shared pieces of the query cache tests: tenants with tokens, traces of known spans sent through
 * POST /v1/traces, the set of query answers compared with and without the cache, and the cache
 * counters.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect } from 'vitest';
import type { ConfigOverrides } from '../../../server/config.js';
import type { Metrics } from '../../../server/ops/metrics.js';
import { AUDIENCE, ISSUER, TEST_SECRET, secretKey, signToken } from '../../helpers/auth.js';
import { buildRequest, type FixtureSpan } from '../../helpers/otlp-fixtures.js';
import type { TestDatabase } from '../../helpers/db.js';
import { counterValue, startTestServer, type TestServer } from '../../helpers/server.js';

export const REDIS_URL = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';
/** Short, so a test waits for a trace to become cacheable in a fraction of a second. */
export const QUIET_MS = 600;

export function uniquePrefix(name: string): string {
  return `th-test-${name}-${process.pid}-${randomBytes(4).toString('hex')}:`;
}

/** A server with JWT tenants and the query cache: Redis at `redisUrl`, in-process without one. */
export function cacheOverrides(
  redisUrl: string | undefined,
  keyPrefix: string,
  cache: ConfigOverrides['cache'] = {},
): ConfigOverrides {
  return {
    auth: { jwtSecret: TEST_SECRET, issuer: ISSUER, audience: AUDIENCE },
    cache: { redisUrl, keyPrefix, queryQuietMs: QUIET_MS, ...cache },
  };
}

export const tokenFor = (tenant: string): Promise<string> =>
  signToken({ key: secretKey(), alg: 'HS256', claims: { tenant, scope: 'traces:write traces:read' } });

export const newTraceId = (): string => randomBytes(16).toString('hex');

/** `count` spans of one trace of `service`, the first the root, starting `agoMs` before now. */
export function traceSpans(
  traceId: string,
  service: string,
  count: number,
  options: { agoMs?: number; name?: string; marker?: string } = {},
): FixtureSpan[] {
  const startNs = BigInt(Date.now() - (options.agoMs ?? 60_000)) * 1_000_000n + 123_457n;
  const rootId = randomBytes(8).toString('hex');
  return Array.from({ length: count }, (_, i) => ({
    traceId,
    spanId: i === 0 ? rootId : randomBytes(8).toString('hex'),
    parentSpanId: i === 0 ? undefined : rootId,
    name: `${options.name ?? 'GET /cart'}${i === 0 ? '' : ` step ${i}`}`,
    kind: i === 0 ? 2 : 1,
    startTimeUnixNano: startNs + BigInt(i) * 1_000_001n,
    endTimeUnixNano: startNs + BigInt(i) * 1_000_001n + 5_000_003n,
    attributes: { 'http.route': '/cart', 'test.marker': options.marker ?? service, 'app.big': 2 ** 60 },
    resource: { attributes: { 'service.name': service } },
  }));
}

/** Posts spans as the token's tenant and expects a full 200. Returns how long it took. */
export async function ingestAs(app: FastifyInstance, token: string, spans: FixtureSpan[]): Promise<number> {
  const startedAt = performance.now();
  const response = await app.inject({
    method: 'POST',
    url: '/v1/traces',
    headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${token}` },
    payload: buildRequest({ spans }).protobuf,
  });
  expect(response.statusCode, response.body).toBe(200);
  expect(response.body).not.toContain('rejected');
  return performance.now() - startedAt;
}

export interface Answer {
  request: string;
  status: number;
  body: string;
}

/** Every query the cache takes part in, plus the searches, for one trace of one service. */
export function queriesFor(traceId: string, service: string): Array<{ url: string; accept?: string }> {
  return [
    { url: `/api/traces/${traceId}` },
    { url: `/api/traces/${traceId}`, accept: 'application/protobuf' },
    { url: `/api/v2/traces/${traceId}` },
    { url: `/api/v2/traces/${traceId}`, accept: 'application/protobuf' },
    { url: `/api/v3/traces/${traceId}` },
    { url: '/api/services' },
    { url: `/api/services/${encodeURIComponent(service)}/operations` },
    { url: `/api/operations?service=${encodeURIComponent(service)}` },
    { url: '/api/v3/services' },
    { url: `/api/traces?service=${encodeURIComponent(service)}&limit=20` },
    { url: `/api/search?tags=${encodeURIComponent(`service.name=${service}`)}&limit=20` },
  ];
}

export async function answers(
  app: FastifyInstance,
  token: string,
  queries: Array<{ url: string; accept?: string }>,
): Promise<Answer[]> {
  const out: Answer[] = [];
  for (const { url, accept } of queries) {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (accept) headers.accept = accept;
    const response = await app.inject({ method: 'GET', url, headers });
    const body = accept ? response.rawPayload.toString('base64') : response.body;
    out.push({ request: `${accept ?? 'json'} ${url}`, status: response.statusCode, body });
  }
  return out;
}

/** Span ids of a Jaeger v1 trace-by-id answer, sorted. */
export async function jaegerSpanIds(app: FastifyInstance, token: string, traceId: string): Promise<string[]> {
  const response = await app.inject({
    method: 'GET',
    url: `/api/traces/${traceId}`,
    headers: { authorization: `Bearer ${token}` },
  });
  expect(response.statusCode, response.body).toBe(200);
  const spans = (response.json() as { data: Array<{ spans: Array<{ spanID: string }> }> }).data[0].spans;
  return spans.map((s) => s.spanID).sort();
}

export type LookupKind = 'trace' | 'trace_window' | 'operations';

export async function cacheCount(
  metrics: Metrics,
  outcome: 'hits' | 'misses' | 'errors' | 'fallbacks',
  kind: LookupKind | 'update',
): Promise<number> {
  return counterValue(metrics, `tracehouse_query_cache_${outcome}_total`, { kind });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A server on the same database with the cache off (QUERY_CACHE_TTL_S=0), started before the file's
 * tests and closed after them: PostgreSQL's answers, which every cached answer must equal.
 */
export function useUncachedServer(db: TestDatabase): () => TestServer {
  let server: TestServer | undefined;
  beforeAll(async () => {
    server = await startTestServer(db.connectionString, cacheOverrides(undefined, 'unused:', { queryTtlS: 0 }));
  });
  afterAll(async () => {
    await server?.close();
  });
  return () => {
    if (server === undefined) throw new Error('the uncached server is not started yet');
    return server;
  };
}
