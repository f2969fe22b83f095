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
