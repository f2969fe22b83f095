import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { findMigrationsDir, listMigrations, migrate, SchemaTooNewError } from '../../../server/storage/migrate.js';
import { createDatabase, databaseUrl, dropDatabase, newDatabaseName, useTestDatabase } from '../../helpers/db.js';

const fresh = useTestDatabase({ empty: true });
const extraDatabases: string[] = [];

afterAll(async () => {
  for (const name of extraDatabases) await dropDatabase(name);
});

async function emptyDatabase(): Promise<string> {
  const name = newDatabaseName();
  extraDatabases.push(name);
  await createDatabase(name, { empty: true });
  return databaseUrl(name);
}

describe('migrations', () => {
  it('lists the shipped migrations in version order', () => {
    const migrations = listMigrations();
    expect(migrations[0]).toMatchObject({ version: 1, name: 'spans' });
    expect(migrations.map((m) => m.version)).toEqual([...migrations.map((m) => m.version)].sort((a, b) => a - b));
  });

  it('finds migrations/ from the compiled location dist/storage as well as from server/storage', () => {
    const fromSource = findMigrationsDir();
    const root = path.dirname(fromSource);
    expect(fromSource).toBe(path.join(root, 'migrations'));
    expect(findMigrationsDir(path.join(root, 'dist', 'storage'))).toBe(fromSource);
  });

  it('migrates a fresh database, records the version, and a re-run is a no-op', async () => {
    const shipped = listMigrations();
    const latest = shipped.at(-1)!.version;
    const first = await migrate(fresh.connectionString);
    expect(first.applied.map((m) => m.version)).toEqual(shipped.map((m) => m.version));
    expect(first.version).toBe(latest);

    const { rows } = await fresh.query<{ version: number; name: string }>(
      'SELECT version, name FROM schema_migrations',
    );
    expect(rows).toEqual(shipped.map(({ version, name }) => ({ version, name })));
    const tables = await fresh.query<{ relname: string; relkind: string }>(
      "SELECT relname, relkind FROM pg_class WHERE relname IN ('spans', 'traces') ORDER BY relname",
    );
    expect(tables.rows).toEqual([
      { relname: 'spans', relkind: 'p' },
      { relname: 'traces', relkind: 'r' },
    ]);

    const second = await migrate(fresh.connectionString);
    expect(second.applied).toEqual([]);
    expect(second.version).toBe(latest);
  });

  it('lets four instances migrate the same empty database at once: one applies, none fails', async () => {
    const url = await emptyDatabase();
    const pools = Array.from({ length: 4 }, () => new pg.Pool({ connectionString: url, max: 2 }));
    try {
      const shipped = listMigrations().map((m) => m.version);
      const results = await Promise.all(pools.map((pool) => migrate(pool)));
      expect(results.flatMap((r) => r.applied.map((m) => m.version)).sort((a, b) => a - b)).toEqual(shipped);
      expect(results.every((r) => r.version === shipped.at(-1))).toBe(true);
      const { rows } = await pools[0].query('SELECT count(*)::int AS n FROM schema_migrations');
      expect(rows[0].n).toBe(shipped.length);
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });

  it('refuses a database that has a schema version newer than this code knows', async () => {
    const url = await emptyDatabase();
    await migrate(url);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query("INSERT INTO schema_migrations (version, name) VALUES (999999, 'from_the_future')");
    } finally {
      await client.end();
    }
    const refusal = migrate(url);
    await expect(refusal).rejects.toBeInstanceOf(SchemaTooNewError);
    await expect(refusal).rejects.toThrow(/999999.*upgrade tracehouse/);
  });
});
