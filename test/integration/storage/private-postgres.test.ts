import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate } from '../../../server/storage/migrate.js';
import { isRetryableStorageError } from '../../../server/storage/retryable.js';
import { startPrivatePostgres, type PrivatePostgres } from '../../helpers/private-postgres.js';

let server: PrivatePostgres | undefined;
afterAll(async () => {
  await server?.destroy();
});

async function query(connectionString: string, text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

describe('private PostgreSQL for fault tests', () => {
  it('starts, stops (fast and immediate) and restarts on the same data directory without losing commits', async () => {
    server = await startPrivatePostgres();
    await migrate(server.connectionString);
    await query(server.connectionString, "INSERT INTO schema_migrations (version, name) VALUES (0, 'marker')");

    await server.stop();
    expect(server.running).toBe(false);
    const down = await query(server.connectionString, 'SELECT 1').catch((e: unknown) => e);
    expect(isRetryableStorageError(down)).toBe(true);

    await server.start();
    await query(server.connectionString, "INSERT INTO schema_migrations (version, name) VALUES (-1, 'after restart')");
    await server.stop({ immediate: true });
    await server.start();
    const { rows } = await query(server.connectionString, 'SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual([-1, 0, 1]);
  });
});
