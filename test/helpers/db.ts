/**
 * One real PostgreSQL database per test file, cloned from the migrated template that
 * global-setup.ts built, and dropped (connections terminated) after the file. Pools made through
 * pool() are closed by the helper; a pool that still has a client checked out at the end fails
 * the file (a leaked client).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';
import './provided.js';

export interface TestDatabase {
  readonly name: string;
  readonly connectionString: string;
  /** A new pool on this database, closed after the file. */
  pool(config?: Omit<pg.PoolConfig, 'connectionString'>): pg.Pool;
  /** A query on a shared small pool of this database. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

export function adminUrl(): string {
  return inject('thAdminUrl');
}

export function databaseUrl(database: string): string {
  const url = new URL(adminUrl());
  url.pathname = `/${database}`;
  return url.toString();
}

/** A fresh database name for this run: th_test_<vitest pid>_<random>. */
export function newDatabaseName(): string {
  return `${inject('thTestDatabasePrefix')}${randomBytes(5).toString('hex')}`;
}

export async function adminQuery(text: string, params?: unknown[]): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: adminUrl(), application_name: 'tracehouse-tests' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.query(text, params);
  } finally {
    await client.end();
  }
}

/** Creates a database: a clone of the migrated template, or an empty one (`empty: true`). */
export async function createDatabase(name: string, options: { empty?: boolean } = {}): Promise<void> {
  const template = options.empty ? 'template0' : inject('thTemplateDatabase');
  for (let attempt = 0; ; attempt++) {
    try {
      await adminQuery(
        `CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE ${pg.escapeIdentifier(template)} ENCODING 'UTF8'`,
      );
      return;
    } catch (err) {
      // 55006: the template is briefly in use by a concurrent CREATE DATABASE in another worker.
      if ((err as { code?: string }).code !== '55006' || attempt >= 20) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
    }
  }
}

export async function dropDatabase(name: string): Promise<void> {
  await adminQuery(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
}

/** Registers beforeAll/afterAll hooks for a database private to the calling test file. */
export function useTestDatabase(options: { empty?: boolean } = {}): TestDatabase {
  const name = newDatabaseName();
  const connectionString = databaseUrl(name);
  const pools: pg.Pool[] = [];
  let shared: pg.Pool | undefined;

  const makePool = (config: Omit<pg.PoolConfig, 'connectionString'> = {}): pg.Pool => {
    const pool = new pg.Pool({ max: 4, application_name: 'tracehouse-tests', ...config, connectionString });
    pool.on('error', () => undefined); // idle clients terminated by DROP DATABASE … FORCE
    pools.push(pool);
    return pool;
  };

  beforeAll(async () => {
    await createDatabase(name, options);
  });

  afterAll(async () => {
    const leaked = pools.filter((p) => p.totalCount > p.idleCount);
    await Promise.all(pools.filter((p) => !leaked.includes(p) && !p.ended).map((p) => p.end()));
    await dropDatabase(name);
    if (leaked.length > 0) {
      throw new Error(`${leaked.length} pool(s) of ${name} still had clients checked out at the end of the file`);
    }
  });

  return {
    name,
    connectionString,
    pool: makePool,
    query: (text, params) => {
      shared ??= makePool({ max: 2 });
      return shared.query(text, params);
    },
  };
}
