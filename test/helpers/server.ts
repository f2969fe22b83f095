/**
 * Builds a real tracehouse app (real PostgreSQL storage) for a test file, listening on 127.0.0.1
 * with a random port when `listen` is set. `close()` stops it like SIGTERM does.
 */
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../server/app.js';
import { loadConfig, type Config, type ConfigOverrides } from '../../server/config.js';
import { createMetrics, type Metrics } from '../../server/ops/metrics.js';
import { createStorage } from '../../server/storage/index.js';
import type { Storage } from '../../server/storage/types.js';

export interface TestServer {
  app: FastifyInstance;
  url: string;
  config: Config;
  storage: Storage;
  metrics: Metrics;
  close(): Promise<void>;
}

export async function startTestServer(
  connectionString: string,
  overrides: ConfigOverrides = {},
  options: { listen?: boolean; now?: () => number } = {},
): Promise<TestServer> {
  const config = loadConfig({}, { ...overrides, storage: { ...overrides.storage, databaseUrl: connectionString } });
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const storage = await createStorage({ ...config.storage, connectionString }, log);
  const metrics = createMetrics(new Registry());
  const app = await buildApp(config, { storage, metrics, log, now: options.now });
  app.tracehouse.state.started = true;
  let url = '';
  if (options.listen) url = await app.listen({ host: '127.0.0.1', port: 0 });
  else await app.ready();
  let closing: Promise<void> | undefined;
  return {
    app,
    url,
    config,
    storage,
    metrics,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await storage.stop();
      })()),
  };
}

/** Sum of a counter's samples matching the given labels, read from the registry. */
export async function counterValue(
  metrics: Metrics,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter((sample) => Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0);
}
