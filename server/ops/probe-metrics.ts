/**
 * Probe results as metrics, measured when Prometheus scrapes (so they are current at every scrape
 * without a timer): tracehouse_ready (what /ready would answer), tracehouse_storage_up (whether
 * PostgreSQL answers a trivial query; the alert rules page on it) and tracehouse_redis_up (whether
 * the shared cache is in use or its breaker is open; only with REDIS_URL).
 */
import { Gauge, type Registry } from 'prom-client';
import type { Readiness } from './health.js';

export function registerProbeMetrics(
  registry: Registry,
  readiness: Readiness,
  pingStorage: () => Promise<void>,
  redisAvailable: () => boolean | undefined = () => undefined,
): void {
  new Gauge({
    name: 'tracehouse_ready',
    help: 'Whether /ready answers 200 (1) or 503 (0): starting, draining, PostgreSQL unreachable or queue saturated.',
    registers: [registry],
    async collect() {
      this.set((await readiness.check()).ready ? 1 : 0);
    },
  });
  // Only with REDIS_URL: without one there is no Redis to be up or down.
  if (redisAvailable() !== undefined) {
    new Gauge({
      name: 'tracehouse_redis_up',
      help: 'With REDIS_URL: whether Redis is in use (1) or down / its breaker open, rate limits decided locally (0).',
      registers: [registry],
      collect() {
        this.set(redisAvailable() ? 1 : 0);
      },
    });
  }
  new Gauge({
    name: 'tracehouse_storage_up',
    help: 'Whether PostgreSQL answered a trivial query at scrape time (1) or not (0).',
    registers: [registry],
    async collect() {
      this.set(
        await pingStorage().then(
          () => 1,
          () => 0,
        ),
      );
    },
  });
}
