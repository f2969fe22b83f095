/**
 * The query stage: Jaeger v1, Jaeger api_v3 and Tempo HTTP APIs over the storage reader, so
 * Grafana's Jaeger and Tempo datasources can point at tracehouse. Every route is tenant-scoped
 * (request.tenant, set by the app's onRequest hook) and declares `traces:read` access.
 *
 * The three families are encapsulated fastify scopes, each with its own error shape; none of them
 * sees the ingest scope's content-type parsers or error handler.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TraceReader } from '../storage/reader-types.js';
import { registerJaegerV1 } from './jaeger-v1.js';
import { registerJaegerV3 } from './jaeger-v3.js';
import { PassThroughQueryCache, type QueryCache } from './query-cache.js';
import type { QueryRouteOptions } from './route-support.js';
import { registerTempo } from './tempo.js';
import { TraceQueries, type QueryCacheCounters } from './trace-queries.js';

export { PassThroughQueryCache, type QueryCache, type QueryCacheUpdates } from './query-cache.js';
export { TraceQueries, type QueryCacheCounters } from './trace-queries.js';

export interface QueryApiOptions {
  reader: TraceReader;
  /** Hot lookups; without one every answer comes from PostgreSQL. */
  cache?: QueryCache;
  /** Where cache hits, misses, errors and fallbacks are counted (the app's metrics). */
  cacheCounters?: QueryCacheCounters;
  /**
   * Runs before every query handler (a fastify preHandler hook): throw, or send a reply, to refuse
   * the request. A per-request access check beyond the route's declared `traces:read` goes here.
   */
  authorize?: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** Milliseconds since the epoch; tests pin it. */
  now?: () => number;
}

export async function registerQueryApi(app: FastifyInstance, options: QueryApiOptions): Promise<void> {
  await app.register(async (scope) => {
    if (options.authorize) scope.addHook('preHandler', options.authorize);
    const routeOptions: QueryRouteOptions = {
      queries: new TraceQueries(
        options.reader,
        options.cache ?? new PassThroughQueryCache(),
        scope.log,
        options.cacheCounters,
      ),
      now: options.now ?? Date.now,
    };
    await scope.register(async (family) => registerJaegerV1(family, routeOptions));
    await scope.register(async (family) => registerJaegerV3(family, routeOptions));
    await scope.register(async (family) => registerTempo(family, routeOptions));
  });
}
