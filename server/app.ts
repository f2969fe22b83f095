/**
 * buildApp(config, deps) assembles the stages in data-flow order and returns a Fastify instance
 * that has not listened. Only this file knows every stage. Closing the app (fastify.close())
 * marks it draining (ingest answers 503 + Retry-After, /ready 503), acks the WebSocket frames in
 * flight and closes those connections with 1001 (otlp-websocket.ts), lets in-flight requests finish
 * (their spans commit), then drains the batcher within config.lifecycle.drainTimeoutMs.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createAuthenticator } from './auth/authenticator.js';
import { registerAuth } from './auth/hook.js';
import { Batcher } from './batch/batcher.js';
import { createQueryCache } from './cache/query-cache-setup.js';
import { createRateLimiter } from './cache/rate-limiter.js';
import type { Config } from './config.js';
import { Readiness, registerProbes } from './ops/health.js';
import type { Metrics } from './ops/metrics.js';
import { registerMetricsRoute } from './ops/metrics-route.js';
import { registerProbeMetrics } from './ops/probe-metrics.js';
import { SpanMetrics } from './ops/span-metrics.js';
import { registerQueryApi } from './query/index.js';
import { IngestPipeline } from './receive/ingest.js';
import { registerOtlpHttp } from './receive/otlp-http.js';
import { Sampler } from './receive/sampler.js';
import { WS_INGEST_PATH, registerOtlpWebSocket } from './receive/otlp-websocket.js';
import type { Storage } from './storage/types.js';

/** The tenant of every request while no JWT keys are configured (DESIGN: runs open as `default`). */
export { OPEN_TENANT } from './auth/tenant.js';

export interface AppDeps {
  storage: Storage;
  metrics: Metrics;
  log: Logger;
  now?: () => number;
}

export interface AppState {
  started: boolean;
  draining: boolean;
}

export interface AppHandles {
  state: AppState;
  batcher: Batcher;
  pipeline: IngestPipeline;
  readiness: Readiness;
}

declare module 'fastify' {
  interface FastifyInstance {
    tracehouse: AppHandles;
  }
  interface FastifyRequest {
    tenant: string;
  }
}

export async function buildApp(config: Config, deps: AppDeps): Promise<FastifyInstance> {
  const { storage, metrics, log } = deps;
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }), // per-request lines would drown the logs at load
    requestTimeout: config.receive.requestTimeoutMs,
    // Node enforces both timeouts in a sweep of open connections (every 30 s by default), and when
    // headersTimeout (60 s unless given to the constructor) exceeds requestTimeout it swaps the two:
    // a trickled body then outlived REQUEST_TIMEOUT_MS by up to 90 s (fault suite, hostile-input).
    http: {
      requestTimeout: config.receive.requestTimeoutMs,
      headersTimeout: Math.min(config.receive.requestTimeoutMs || 60_000, 60_000),
      connectionsCheckingInterval: 1000,
    },
    return503OnClosing: false, // while closing, ingest answers its own OTLP 503 (Retry-After, counted)
    forceCloseConnections: 'idle',
  });

  const state: AppState = { started: false, draining: false };
  const authenticator = await createAuthenticator(config.auth, log.child({ stage: 'auth' }));
  const rateLimits = await createRateLimiter(config.limits, config.cache, metrics, log.child({ stage: 'cache' }));
  const queryCache = await createQueryCache(config.cache, metrics, log.child({ stage: 'query-cache' }));
  const batcher = new Batcher(storage.writer, config.batch, metrics, log.child({ stage: 'batch' }));
  const pipeline = new IngestPipeline({
    config,
    batcher,
    metrics,
    isDraining: () => state.draining,
    limiter: rateLimits.limiter,
    sampler: new Sampler(config.sampling),
    spanMetrics: new SpanMetrics(metrics.registry, config.spanMetrics, deps.now),
    queryCache: queryCache.updates,
    now: deps.now,
  });
  const readiness = new Readiness({
    isStarted: () => state.started,
    isDraining: () => state.draining,
    isSaturated: () => batcher.saturated,
    pingStorage: () => storage.ping(),
  });
  registerProbeMetrics(metrics.registry, readiness, () => storage.ping(), rateLimits.redisAvailable);
  app.decorate('tracehouse', { state, batcher, pipeline, readiness });
  app.decorateRequest('tenant', '');

  registerAuth(app, {
    authenticator,
    metrics,
    retryAfterS: config.receive.retryAfterS,
    webSocketPath: WS_INGEST_PATH,
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequestDuration.observe(
      { method: request.method, route, status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
  // While draining, every answer closes its connection. Otherwise a keep-alive connection whose
  // request was in flight at SIGTERM turns idle after its answer, and server.close() (so the exit)
  // waits for it until the drain deadline forces it shut.
  app.addHook('onSend', async (_request, reply, payload) => {
    if (state.draining) reply.header('connection', 'close');
    return payload;
  });
  app.addHook('preClose', async () => {
    state.draining = true;
  });
  app.addHook('onClose', async () => {
    await batcher.stop(config.lifecycle.drainTimeoutMs);
    await queryCache.stop();
    await rateLimits.stop();
  });

  await registerProbes(app, readiness);
  await registerMetricsRoute(app, metrics.registry);
  await app.register(async (scope) =>
    registerOtlpHttp(scope, {
      pipeline,
      maxBodyBytes: config.receive.maxBodyBytes,
      retryAfterS: config.receive.retryAfterS,
    }),
  );
  await registerOtlpWebSocket(app, {
    pipeline,
    config: config.websocket,
    retryAfterS: config.receive.retryAfterS,
    drainTimeoutMs: config.lifecycle.drainTimeoutMs,
    metrics,
    isDraining: () => state.draining,
  });
  await registerQueryApi(app, {
    reader: storage.reader,
    cache: queryCache.cache,
    cacheCounters: metrics,
    now: deps.now,
  });
  return app;
}
