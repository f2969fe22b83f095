/**
 * The running server: PostgreSQL (the configured one or an embedded one), migrations, storage,
 * partition maintenance and the app, started in that order and stopped in reverse:
 *   SIGTERM → /ready 503 → (shutdownDelayMs) → WebSocket frames in flight acked, sockets closed
 *   with 1001 → listener closed, new requests 503 → in-flight requests finish as their spans
 *   commit → batcher drained → maintenance, storage, PostgreSQL.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { buildApp } from './app.js';
import type { Config } from './config.js';
import { PartitionMaintenance } from './ops/maintenance.js';
import { PartitionStatistics } from './ops/statistics.js';
import { createMetrics } from './ops/metrics.js';
import { startEmbeddedPostgres } from './storage/embedded.js';
import { createStorage } from './storage/index.js';
import { migrate } from './storage/migrate.js';

export interface RunningService {
  app: FastifyInstance;
  address: string;
  /** Idempotent: a second call returns the first call's promise. */
  stop(): Promise<void>;
}

/** Resolves the database to use, starting the embedded PostgreSQL when DATABASE_URL is unset. */
export async function resolveDatabase(
  config: Config,
  log: Logger,
): Promise<{ connectionString: string; stop: () => Promise<void> }> {
  if (config.storage.databaseUrl) return { connectionString: config.storage.databaseUrl, stop: async () => {} };
  log.warn(
    { dataDir: config.storage.dataDir, port: config.storage.embeddedPort },
    'DATABASE_URL is not set: starting an embedded PostgreSQL (set DATABASE_URL in production)',
  );
  return startEmbeddedPostgres({ dataDir: config.storage.dataDir, port: config.storage.embeddedPort, log });
}

export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const database = await resolveDatabase(config, log);
  const stack: Array<() => Promise<void>> = [database.stop];
  try {
    await migrate(database.connectionString, log.child({ stage: 'migrate' }));
    const storage = await createStorage(
      { ...config.storage, connectionString: database.connectionString },
      log.child({ stage: 'storage' }),
    );
    stack.push(() => storage.stop());
    const metrics = createMetrics(new Registry());
    const maintenance = new PartitionMaintenance(storage, config.storage, metrics, log.child({ stage: 'maintenance' }));
    await maintenance.start();
    stack.push(() => maintenance.stop());
    const statistics = new PartitionStatistics(storage, log.child({ stage: 'statistics' }));
    statistics.start();
    stack.push(() => statistics.stop());
    const app = await buildApp(config, { storage, metrics, log });
    const address = await app.listen({ host: config.server.host, port: config.server.port });
    app.tracehouse.state.started = true;
    log.info({ address }, 'tracehouse listening');

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> => (stopping ??= shutdown(app, config, log, stack));
    return { app, address, stop };
  } catch (err) {
    await unwind(stack, log);
    throw err;
  }
}

async function shutdown(
  app: FastifyInstance,
  config: Config,
  log: Logger,
  stack: Array<() => Promise<void>>,
): Promise<void> {
  const startedAt = Date.now();
  app.tracehouse.state.draining = true;
  log.info({ shutdownDelayMs: config.lifecycle.shutdownDelayMs }, 'draining: /ready is now 503');
  if (config.lifecycle.shutdownDelayMs > 0) {
    await new Promise((resolve) => setTimeout(resolve, config.lifecycle.shutdownDelayMs));
  }
  const deadline = setTimeout(() => {
    log.warn('drain deadline passed: closing remaining connections');
    app.server.closeAllConnections();
  }, config.lifecycle.drainTimeoutMs + 1000);
  try {
    await app.close();
  } finally {
    clearTimeout(deadline);
  }
  await unwind(stack, log);
  log.info({ durationMs: Date.now() - startedAt }, 'stopped');
}

async function unwind(stack: Array<() => Promise<void>>, log: Logger): Promise<void> {
  while (stack.length > 0) {
    const stop = stack.pop()!;
    await stop().catch((err: unknown) => log.error({ err }, 'error while stopping'));
  }
}
