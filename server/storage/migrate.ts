/**
 * Forward-only migrations: migrations/NNNNNN_name.sql, applied in version order, each in its own
 * transaction under a transaction-scoped advisory lock, so any number of instances may start at
 * once: one applies, the others wait and then find nothing left to do. A database that already
 * has a version this code does not know is refused (never run old code on a newer schema).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Logger } from 'pino';
import { withTransaction } from './pool.js';
import { CREATE_SCHEMA_MIGRATIONS, INSERT_MIGRATION, LOCK_MIGRATIONS, SELECT_APPLIED_MIGRATIONS } from './sql.js';

export interface Migration {
  version: number;
  name: string;
  file: string;
}

export interface MigrateResult {
  applied: Migration[];
  /** The database's schema version after the run. */
  version: number;
}

type MigrateLogger = Pick<Logger, 'info' | 'warn'>;

const FILE_PATTERN = /^(\d+)_([A-Za-z0-9_.-]+)\.sql$/;

/**
 * The migrations folder: the nearest `migrations/` walking up from this module, so the same code
 * works from server/storage/ (vitest, tsx) and from dist/storage/ (compiled).
 */
export function findMigrationsDir(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'migrations');
    if (existsSync(candidate) && statSync(candidate).isDirectory()) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`no migrations/ folder found above ${from}`);
  }
}

/** The migrations shipped with this code, ordered by version. */
export function listMigrations(dir: string = findMigrationsDir()): Migration[] {
  const migrations: Migration[] = [];
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.sql')) continue;
    const m = FILE_PATTERN.exec(file);
    if (!m) throw new Error(`migration file name must look like 000001_name.sql: ${file}`);
    migrations.push({ version: Number(m[1]), name: m[2], file: path.join(dir, file) });
  }
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i].version === migrations[i - 1].version) {
      throw new Error(
        `two migrations share version ${migrations[i].version}: ${migrations[i - 1].file}, ${migrations[i].file}`,
      );
    }
  }
  return migrations;
}

export class SchemaTooNewError extends Error {
  constructor(dbVersions: number[], known: number) {
    super(
      `the database has schema version(s) ${dbVersions.join(', ')} that this tracehouse does not know ` +
        `(it knows up to ${known}); refusing to start — upgrade tracehouse instead of downgrading it`,
    );
    this.name = 'SchemaTooNewError';
  }
}

/** Applies the pending migrations. Accepts a pool (not ended) or a connection string. */
export async function migrate(
  target: pg.Pool | string,
  log?: MigrateLogger,
  options: { dir?: string } = {},
): Promise<MigrateResult> {
  const migrations = listMigrations(options.dir);
  const ownPool = typeof target === 'string';
  const pool = ownPool
    ? new pg.Pool({ connectionString: target, max: 1, application_name: 'tracehouse-migrate' })
    : target;
  if (ownPool) pool.on('error', (err) => log?.warn({ err }, 'idle migration connection failed'));
  try {
    const known = migrations.at(-1)?.version ?? 0;
    let appliedVersions = await withTransaction(pool, async (client) => {
      await client.query(LOCK_MIGRATIONS);
      await client.query(CREATE_SCHEMA_MIGRATIONS);
      return readApplied(client);
    });
    refuseUnknown(appliedVersions, migrations, known);

    const applied: Migration[] = [];
    for (const migration of migrations) {
      if (appliedVersions.has(migration.version)) continue;
      const sql = readFileSync(migration.file, 'utf8');
      const ran = await withTransaction(pool, async (client) => {
        await client.query(LOCK_MIGRATIONS);
        // Another instance may have applied it while we waited for the lock.
        appliedVersions = await readApplied(client);
        refuseUnknown(appliedVersions, migrations, known);
        if (appliedVersions.has(migration.version)) return false;
        await client.query(sql);
        await client.query(INSERT_MIGRATION, [migration.version, migration.name]);
        return true;
      });
      if (ran) {
        applied.push(migration);
        log?.info({ version: migration.version, name: migration.name }, 'migration applied');
      }
    }
    const version = Math.max(0, ...appliedVersions, ...applied.map((m) => m.version));
    if (applied.length === 0) log?.info({ version }, 'schema up to date');
    return { applied, version };
  } finally {
    if (ownPool) await pool.end();
  }
}

async function readApplied(client: pg.ClientBase): Promise<Set<number>> {
  const { rows } = await client.query<{ version: number }>(SELECT_APPLIED_MIGRATIONS);
  return new Set(rows.map((r) => r.version));
}

function refuseUnknown(applied: Set<number>, migrations: Migration[], known: number): void {
  const knownVersions = new Set(migrations.map((m) => m.version));
  const unknown = [...applied].filter((v) => !knownVersions.has(v));
  if (unknown.length > 0) throw new SchemaTooNewError(unknown, known);
}

export interface MigrationStatus {
  /** The newest migration this code ships. */
  known: number;
  /** Versions recorded in the database, ascending. */
  applied: number[];
  /** Shipped migrations the database has not applied yet. */
  pending: Migration[];
  /** Versions in the database that this code does not ship (the database is newer). */
  unknown: number[];
}

/** What `migrate` would do, without doing it or taking any lock. */
export async function migrationStatus(
  connectionString: string,
  options: { dir?: string } = {},
): Promise<MigrationStatus> {
  const migrations = listMigrations(options.dir);
  const client = new pg.Client({ connectionString, application_name: 'tracehouse-migrate' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ present: boolean }>(
      "SELECT to_regclass('schema_migrations') IS NOT NULL AS present",
    );
    const applied = rows[0].present ? [...(await readApplied(client))].sort((a, b) => a - b) : [];
    const appliedSet = new Set(applied);
    const shipped = new Set(migrations.map((m) => m.version));
    return {
      known: migrations.at(-1)?.version ?? 0,
      applied,
      pending: migrations.filter((m) => !appliedSet.has(m.version)),
      unknown: applied.filter((v) => !shipped.has(v)),
    };
  } finally {
    await client.end();
  }
}
