/**
 * The ONE table of storage failures that mean "transient: nothing was committed, try again later"
 * (answered 503 + Retry-After upstream), and the classes that mean "these rows themselves were
 * refused" (the batcher isolates the request that carried them). Everything else is a bug.
 */

/** SQLSTATE classes (first two characters) that are always transient. */
export const RETRYABLE_SQLSTATE_CLASSES: Readonly<Record<string, string>> = {
  '08': 'connection exception',
  '53': 'insufficient resources (disk full, out of memory, too many connections)',
};

/** Individual SQLSTATEs that are transient. */
export const RETRYABLE_SQLSTATES: Readonly<Record<string, string>> = {
  '25006': 'read-only transaction (a standby, or default_transaction_read_only while failing over)',
  '40001': 'serialization failure',
  '40P01': 'deadlock detected',
  '55P03': 'lock not available (lock_timeout)',
  '57014': 'query canceled (statement_timeout)',
  '57P01': 'admin shutdown (server stopping, backend terminated)',
  '57P02': 'crash shutdown',
  '57P03': 'cannot connect now (server starting or in recovery)',
  '57P05': 'idle session timeout',
};

/** Node.js socket errors that mean the server was unreachable or the connection broke. */
export const RETRYABLE_ERRNO: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'broken pipe',
  ETIMEDOUT: 'connect or socket timeout',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EAI_AGAIN: 'temporary DNS failure',
};

/** Messages node-postgres uses, without a code, when the connection died or never came up. */
export const RETRYABLE_PG_MESSAGES: readonly string[] = [
  'Connection terminated', // also matches '… unexpectedly' and '… due to connection timeout'
  'timeout exceeded when trying to connect',
  'timeout expired',
  'Query read timeout',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
];

/** SQLSTATE classes meaning the data was refused: 22 data exception, 23 integrity violation. */
export const DATA_SQLSTATE_CLASSES: Readonly<Record<string, string>> = {
  '22': 'data exception',
  '23': 'integrity constraint violation',
};

interface ErrorLike {
  code?: unknown;
  message?: unknown;
  errors?: unknown;
  cause?: unknown;
}

function asErrorLike(err: unknown): ErrorLike | undefined {
  return typeof err === 'object' && err !== null ? (err as ErrorLike) : undefined;
}

function isRetryableOne(e: ErrorLike): boolean {
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code !== undefined) {
    if (code in RETRYABLE_ERRNO || code in RETRYABLE_SQLSTATES) return true;
    if (code.length === 5 && code.slice(0, 2) in RETRYABLE_SQLSTATE_CLASSES) return true;
  }
  const message = typeof e.message === 'string' ? e.message : '';
  return RETRYABLE_PG_MESSAGES.some((m) => message.startsWith(m));
}

/**
 * True when the failure is transient: the server is down, restarting, overloaded, timed out,
 * or the connection broke. Looks through `cause` chains and AggregateError (multi-address connect).
 */
export function isRetryableStorageError(err: unknown): boolean {
  for (let depth = 0, e = asErrorLike(err); e && depth < 8; depth++, e = asErrorLike(e.cause)) {
    if (isRetryableOne(e)) return true;
    if (Array.isArray(e.errors) && e.errors.some((inner) => isRetryableStorageError(inner))) return true;
  }
  return false;
}

/** True when PostgreSQL refused the rows themselves (SQLSTATE class 22 or 23). */
export function isDataError(err: unknown): boolean {
  for (let depth = 0, e = asErrorLike(err); e && depth < 8; depth++, e = asErrorLike(e.cause)) {
    if (typeof e.code === 'string' && e.code.length === 5 && e.code.slice(0, 2) in DATA_SQLSTATE_CLASSES) return true;
  }
  return false;
}

/** The row's start time has no partition (SQLSTATE 23514 from partition routing). */
export function isNoPartitionError(err: unknown): boolean {
  const e = asErrorLike(err);
  return e?.code === '23514' && typeof e.message === 'string' && e.message.startsWith('no partition of relation');
}

/**
 * A direct COPY into spans met a key that is already stored, or that a concurrent write holds
 * (23505 unique violation; 40P01 when two writes wait on each other's keys): the rows are fine,
 * the write has to go through the deduplicating path instead.
 */
export function isKeyCollision(err: unknown): boolean {
  const code = asErrorLike(err)?.code;
  return code === '23505' || isDeadlock(err);
}

/** PostgreSQL aborted this transaction to break a deadlock (40P01); it did nothing and may be run again. */
export function isDeadlock(err: unknown): boolean {
  return asErrorLike(err)?.code === '40P01';
}
