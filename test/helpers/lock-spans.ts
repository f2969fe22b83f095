/**
 * Stalls commits for real: holds a SHARE lock on `spans` in an open transaction, so reads pass and
 * the writer's INSERT waits until release(). Lets a test observe what happens while spans are
 * admitted but not yet committed (no ack yet, queue full, shutdown with frames in flight).
 */
import type { TestDatabase } from './db.js';

export interface SpansLock {
  release(): Promise<void>;
}

export async function lockSpans(db: TestDatabase): Promise<SpansLock> {
  const client = await db.pool({ max: 1 }).connect();
  try {
    await client.query('BEGIN');
    await client.query('LOCK TABLE spans IN SHARE MODE');
  } catch (err) {
    client.release(err as Error);
    throw err;
  }
  let released = false;
  return {
    release: async () => {
      if (released) return;
      released = true;
      try {
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
    },
  };
}
