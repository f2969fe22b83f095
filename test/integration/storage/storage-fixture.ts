/** Builds the storage stage on a test database, and tracks it so the file stops it. */
import { afterAll } from 'vitest';
import { DEFAULTS } from '../../../server/config.js';
import { createStorage } from '../../../server/storage/index.js';
import type { Storage } from '../../../server/storage/types.js';
import type { TestDatabase } from '../../helpers/db.js';
import { silentLog } from './span-rows.js';

export function useStorage(db: TestDatabase): () => Promise<Storage> {
  const made: Storage[] = [];
  afterAll(async () => {
    await Promise.all(made.map((s) => s.stop()));
  });
  return async () => {
    const storage = await createStorage(
      { ...DEFAULTS.storage, poolSize: 4, connectionString: db.connectionString },
      silentLog,
    );
    made.push(storage);
    return storage;
  };
}

/**
 * Resolves with the pid of a tracehouse session of `db` that waits for a lock (the writer's pool
 * names itself 'tracehouse'); throws when none does within ~5 s.
 */
export async function waitForBlockedWriter(db: TestDatabase): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await db.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE application_name = 'tracehouse' AND datname = current_database() AND wait_event_type = 'Lock'`,
    );
    if (rows.length > 0) return rows[0].pid;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('no tracehouse session waited for a lock');
}
