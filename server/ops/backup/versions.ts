/**
 * The compatibility rules between a backup, the tools and the target, in one place:
 * - pg_dump cannot dump a server of a newer major version than its own (it refuses);
 * - pg_restore cannot read an archive written by a newer pg_dump ("unsupported version in file header");
 * - a dump is not guaranteed to load into an older server major;
 * - tracehouse never runs on a schema newer than its migrations (as `migrate` refuses).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listMigrations } from '../../storage/migrate.js';

let toolVersion: string | undefined;

/** This tracehouse's version, from the nearest package.json named tracehouse. */
export function tracehouseVersion(): string {
  if (toolVersion !== undefined) return toolVersion;
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tracehouse' && pkg.version) return (toolVersion = pkg.version);
    }
    if (path.dirname(dir) === dir) return (toolVersion = 'unknown');
  }
}

/** The newest schema version this code ships (its last migration). */
export function knownSchemaVersion(): number {
  return listMigrations().at(-1)?.version ?? 0;
}

export function pgDumpProblem(
  pgDumpMajor: number,
  pgDumpVersion: string,
  serverMajor: number,
  serverVersion: string,
): string | undefined {
  if (pgDumpMajor >= serverMajor) return undefined;
  return (
    `pg_dump ${pgDumpVersion} cannot dump PostgreSQL ${serverVersion} (a newer major version): install ` +
    `postgresql-client-${serverMajor} (or newer) and put it first on PATH, or pass --pg-bin DIR`
  );
}

export function pgRestoreProblem(
  pgRestoreMajor: number,
  pgRestoreVersion: string,
  dumpMajor: number,
): string | undefined {
  if (pgRestoreMajor >= dumpMajor) return undefined;
  return (
    `pg_restore ${pgRestoreVersion} cannot read archives written by pg_dump ${dumpMajor} (a newer format): ` +
    `install postgresql-client-${dumpMajor} (or newer), or pass --pg-bin DIR`
  );
}

export function schemaProblem(backupVersion: number, known: number): string | undefined {
  if (backupVersion <= known) return undefined;
  return (
    `the backup has schema version ${backupVersion}, but this tracehouse (${tracehouseVersion()}) knows schema ` +
    `versions up to ${known}: restore it with a tracehouse at least as new as the one that made the backup ` +
    '(never run old code on a newer schema)'
  );
}

export function serverProblem(
  targetMajor: number,
  targetVersion: string,
  sourceMajor: number,
  sourceVersion: string,
): string | undefined {
  if (targetMajor >= sourceMajor) return undefined;
  return (
    `the backup comes from PostgreSQL ${sourceVersion}; the target runs the older PostgreSQL ${targetVersion}, ` +
    `into which a dump is not guaranteed to load: restore into PostgreSQL ${sourceMajor} or newer`
  );
}
