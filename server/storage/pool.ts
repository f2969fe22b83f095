/**
 * The PostgreSQL connection pool and the one safe way to borrow a connection from it.
 * Every connection runs with synchronous_commit=on (a commit we acknowledge is on disk), UTC
 * session time zone, a statement timeout, and application_name=tracehouse (visible in
 * pg_stat_activity).
 */
import pg from 'pg';
import type { Logger } from 'pino';

export interface PoolOptions {
  connectionString: string;
  max: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  /** How long a client may sit idle inside a transaction before the server ends it. Default 60 s. */
  idleInTransactionTimeoutMs?: number;
}

export function createPool(options: PoolOptions, log: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max,
    connectionTimeoutMillis: options.connectTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? 60_000,
    application_name: 'tracehouse',
    // temp_buffers: room for the writer's staging table in memory (allocated only as used).
    options: '-c synchronous_commit=on -c TimeZone=UTC -c temp_buffers=64MB',
    keepAlive: true,
    idleTimeoutMillis: 30_000,
  });
  // An idle client whose server went away emits 'error'; without a listener that crashes the
  // process. The pool already discards the client; the next checkout reconnects.
  pool.on('error', (err) => log.warn({ err }, 'idle PostgreSQL connection failed; it will be replaced'));
  return pool;
}

/**
 * Runs `fn` with a client checked out of `pool`. While it is checked out, a connection-level error
 * cannot crash the process (it surfaces through the query that was running instead), and a client
 * whose connection broke is destroyed on release rather than returned to the pool.
 */
export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error): void => {
    broken = err;
  };
  client.on('error', onError);
  try {
    return await fn(client);
  } catch (err) {
    if (!broken && isConnectionUnusable(client)) broken = err as Error;
    throw err;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

/** Runs `fn` inside BEGIN … COMMIT on one client; ROLLBACK (or destroy the client) on failure. */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return withClient(pool, async (client) => {
    await client.query('BEGIN');
    try {
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await rollbackQuietly(client);
      throw err;
    }
  });
}

/**
 * Rolls back after a failure; call it only inside withClient(). If even that fails the connection
 * is unusable: mark it so that withClient destroys it instead of pooling a client stuck in a
 * transaction.
 */
export async function rollbackQuietly(client: pg.PoolClient): Promise<void> {
  try {
    await client.query('ROLLBACK');
  } catch (err) {
    client.emit('error', err as Error);
  }
}

function isConnectionUnusable(client: pg.PoolClient): boolean {
  // node-postgres marks a client that lost its connection as not queryable.
  return (client as unknown as { _queryable?: boolean })._queryable === false;
}
