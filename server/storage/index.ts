/**
 * The storage stage: the only code that talks to PostgreSQL. createStorage() wires the pool, the
 * span writer and the partition manager; migrations (migrate.ts) and the embedded server
 * (embedded.ts) are separate steps that run before it.
 *
 * State: the pool, and one dedicated session that holds the maintenance advisory lock while
 * maintenance runs (a session-level lock cannot live on a pooled connection that others reuse).
 */
import pg from 'pg';
import type { Logger } from 'pino';
import type { StorageConfig } from '../config.js';
import { PgPartitionManager } from './partitions.js';
import { createPool } from './pool.js';
import { PgSpanWriter } from './span-writer.js';
import { PgTraceReader } from './trace-reader.js';
import { PING, TRY_MAINTENANCE_LOCK, UNLOCK_MAINTENANCE } from './sql.js';
import type { TraceReader } from './reader-types.js';
import type { PartitionManager, SpanWriter, Storage } from './types.js';

export { isDataError, isRetryableStorageError } from './retryable.js';
export type {
  PartitionInfo,
  PartitionManager,
  SpanBatch,
  SpanWriter,
  Storage,
  WriteOutcome,
  WritePath,
  WriteResult,
} from './types.js';
export { InvalidSearchError } from './trace-reader.js';

export type StorageOptions = StorageConfig & { connectionString: string };

class PgStorage implements Storage {
  readonly writer: SpanWriter;
  readonly reader: TraceReader;
  readonly partitions: PartitionManager;
  readonly #pool: pg.Pool;
  readonly #options: StorageOptions;
  readonly #log: Logger;
  #lockSession: pg.Client | undefined;
  #maintenanceRunning = false;
  #stopping: Promise<void> | undefined;

  constructor(options: StorageOptions, log: Logger) {
    this.#options = options;
    this.#log = log;
    this.#pool = createPool(
      {
        connectionString: options.connectionString,
        max: options.poolSize,
        connectTimeoutMs: options.connectTimeoutMs,
        statementTimeoutMs: options.statementTimeoutMs,
      },
      log,
    );
    this.partitions = new PgPartitionManager(this.#pool, log.child({ component: 'partitions' }));
    this.writer = new PgSpanWriter(this.#pool, this.partitions, log.child({ component: 'writer' }));
    this.reader = new PgTraceReader(this.#pool);
  }

  async ping(): Promise<void> {
    await this.#pool.query({ text: PING, query_timeout: this.#options.connectTimeoutMs } as pg.QueryConfig);
  }

  async withMaintenanceLock<T>(fn: () => Promise<T>): Promise<{ ran: boolean; result?: T }> {
    if (this.#maintenanceRunning || this.#stopping) return { ran: false };
    this.#maintenanceRunning = true;
    try {
      const session = await this.#getLockSession();
      const { rows } = await session.query<{ locked: boolean }>(TRY_MAINTENANCE_LOCK);
      if (!rows[0].locked) return { ran: false };
      try {
        return { ran: true, result: await fn() };
      } finally {
        await session.query(UNLOCK_MAINTENANCE).catch((err: unknown) => {
          this.#log.warn({ err }, 'could not release the maintenance lock; dropping its session');
          this.#dropLockSession();
        });
      }
    } finally {
      this.#maintenanceRunning = false;
    }
  }

  async #getLockSession(): Promise<pg.Client> {
    if (this.#lockSession) return this.#lockSession;
    const session = new pg.Client({
      connectionString: this.#options.connectionString,
      connectionTimeoutMillis: this.#options.connectTimeoutMs,
      statement_timeout: this.#options.statementTimeoutMs,
      application_name: 'tracehouse-maintenance',
      keepAlive: true,
    });
    // A broken session loses its lock with it; forget it and open a new one next time.
    session.on('error', (err) => {
      this.#log.warn({ err }, 'maintenance lock session failed');
      if (this.#lockSession === session) this.#lockSession = undefined;
    });
    await session.connect();
    this.#lockSession = session;
    return session;
  }

  #dropLockSession(): void {
    const session = this.#lockSession;
    this.#lockSession = undefined;
    session?.end().catch(() => undefined);
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const session = this.#lockSession;
      this.#lockSession = undefined;
      await session?.end().catch(() => undefined);
      await this.#pool.end();
    })();
    return this.#stopping;
  }
}

/** Opens the pool and builds the storage stage. Does not migrate and does not connect eagerly. */
export async function createStorage(options: StorageOptions, log: Logger): Promise<Storage> {
  return new PgStorage(options, log);
}
