/**
 * vitest globalSetup: checks that the test PostgreSQL is reachable (a missing database is a
 * failure, never a skip), builds one migrated template database for this run, and drops it at the
 * end. Test files clone it with useTestDatabase() (test/helpers/db.ts).
 *
 * Database names carry the pid of this vitest process (th_template_<pid>, th_test_<pid>_<random>):
 * several runs can share one server, and the leftovers of a run that died are dropped by the next.
 */
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { migrate } from '../../server/storage/migrate.js';
import './provided.js';

const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const OURS = /^th_(?:template|test)_(\d+)(?:_[a-z0-9]+)?$/;

export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function dropDatabase(admin: pg.Client, name: string): Promise<void> {
  const ident = pg.escapeIdentifier(name);
  await admin.query(`ALTER DATABASE ${ident} WITH IS_TEMPLATE false`).catch(() => undefined);
  await admin.query(`DROP DATABASE IF EXISTS ${ident} WITH (FORCE)`);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const adminUrl = process.env.TEST_DATABASE_URL || DEFAULT_ADMIN_URL;
  const admin = new pg.Client({
    connectionString: adminUrl,
    connectionTimeoutMillis: 5000,
    application_name: 'tracehouse-tests',
  });
  admin.on('error', () => undefined);
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${redact(adminUrl)} (${(err as Error).message}). ` +
        'Integration tests need a real PostgreSQL: start one or set TEST_DATABASE_URL.',
      { cause: err },
    );
  }

  // Leftovers of runs whose vitest process is gone.
  const { rows } = await admin.query<{ datname: string }>(
    "SELECT datname FROM pg_database WHERE datname LIKE 'th\\_%'",
  );
  for (const { datname } of rows) {
    const m = OURS.exec(datname);
    if (m && Number(m[1]) !== process.pid && !isAlive(Number(m[1]))) await dropDatabase(admin, datname);
  }

  const template = `th_template_${process.pid}`;
  await dropDatabase(admin, template);
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(template)} TEMPLATE template0 ENCODING 'UTF8'`);
  await migrate(databaseUrl(adminUrl, template));
  await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(template)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);

  project.provide('thAdminUrl', adminUrl);
  project.provide('thTemplateDatabase', template);
  project.provide('thTestDatabasePrefix', `th_test_${process.pid}_`);

  return async () => {
    try {
      const { rows: mine } = await admin.query<{ datname: string }>(
        'SELECT datname FROM pg_database WHERE datname LIKE $1',
        [`th\\_test\\_${process.pid}\\_%`],
      );
      for (const { datname } of mine) await dropDatabase(admin, datname);
      await dropDatabase(admin, template);
    } finally {
      await admin.end();
    }
  };
}
