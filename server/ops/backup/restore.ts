/**
 * `tracehouse restore --from DIR`: the whole database into an empty one (or over an existing one
 * with --replace), or chosen day partitions back into a live database (restore-day.ts).
 *
 * Order, for both: read the manifest and check versions (schema, pg_restore, server) → verify every
 * needed file against the manifest (size, sha256, pg_restore --list) → inspect the target and
 * refuse what would lose data → (--dry-run stops here and prints the plan) → write, stopping at
 * the first error → migrate to the current schema → count and checksum every restored partition
 * against the manifest, and say so. Nothing is written before every check has passed.
 *
 * Whole-database order: catalog pre-data (tables, partitions; ACLs apart) → catalog data →
 * partition data (COPY through the spans root, --jobs at once) → post-data (primary keys, indexes,
 * row-level security; built once, after the data) → ACLs (a GRANT to a role this cluster lacks is a
 * warning) → summaries rebuilt if the backup did not carry them → migrate → ANALYZE → verify.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { StorageConfig } from '../../config.js';
import { migrate } from '../../storage/migrate.js';
import { RestoreTarget, type TargetContents, type TargetObject } from '../../storage/restore-queries.js';
import { manifestFiles, type Manifest } from './manifest.js';
import { findPgTool, listArchive, runPgTool, streamArchiveSql, type PgTool } from './pg-tools.js';
import { formatCount, formatTable, OpsError, refusal, runLimited, type Reporter } from './reporter.js';
import { restoreDays } from './restore-day.js';
import { partitionNamesFor, pickPartitions } from './selection.js';
import { readManifest, verifyBackup } from './verify.js';
import { knownSchemaVersion, pgRestoreProblem, schemaProblem, serverProblem } from './versions.js';

export interface RestoreOptions {
  databaseUrl: string;
  from: string;
  /** Days (YYYY-MM-DD) or partition names to restore into a live database; empty: the whole database. */
  partitions: string[];
  /** Whole database: drop what the target holds first. Days: make a day that differs exactly the backup's. */
  replace: boolean;
  /** Days only: add the backup's rows that are missing, keep the rest. */
  merge: boolean;
  dryRun: boolean;
  jobs: number;
  pgBin?: string;
  lockWaitMs: number;
  storage: StorageConfig;
  log: Logger;
  now?: () => number;
}

export interface RestoreOutcome {
  /** Partitions whose count and checksum were compared after the restore. */
  verified: number;
  problems: string[];
}

/** The tracehouse objects a migrated-but-empty database holds; those alone may be replaced silently. */
const TRACEHOUSE_OBJECTS = new Set([
  'spans',
  'traces',
  'operations',
  'resources',
  'attribute_sets',
  'tenant_readers',
  'schema_migrations',
  'tracehouse_create_tenant_reader',
  'red_minute',
  'span_view',
  'trace_summary_view',
  'red_minute_view',
  'service_graph_edges',
  'tracehouse_red_bucket_bounds_ms',
  'tracehouse_add_buckets',
  'tracehouse_sum_buckets',
  'tracehouse_histogram_quantile',
  'tracehouse_resource_id',
  'tracehouse_nanos_to_timestamptz',
]);

export async function runRestore(options: RestoreOptions, reporter: Reporter): Promise<RestoreOutcome> {
  if (options.replace && options.merge) throw new OpsError('--replace and --merge exclude each other', 2);
  if (options.merge && options.partitions.length === 0) {
    throw new OpsError(
      '--merge applies to day restores (--partition); a whole-database restore needs an empty target or --replace',
      2,
    );
  }
  const pgRestore = await findPgTool('pg_restore', options.pgBin);
  const { manifest } = await readManifest(options.from);
  const wanted = partitionNamesFor(options.partitions);
  const selected =
    wanted.length > 0 ? pickPartitions(manifest.partitions, wanted, `the backup ${options.from}`) : manifest.partitions;

  const versionProblems = [
    schemaProblem(manifest.schemaVersion, knownSchemaVersion()),
    pgRestoreProblem(pgRestore.major, pgRestore.version, manifest.tool.pgDumpMajor),
  ].filter((p): p is string => p !== undefined);
  if (versionProblems.length > 0) throw refusal(versionProblems);

  const target = await RestoreTarget.open(options.databaseUrl);
  try {
    const server = await target.server();
    const tooOld = serverProblem(server.major, server.version, manifest.server.major, manifest.server.version);
    if (tooOld) throw refusal([tooOld]);

    reporter.progress('verifying the backup files against the manifest');
    const needed = new Set(
      wanted.length > 0 ? selected.map((p) => p.file) : manifestFiles(manifest).map((f) => f.file),
    );
    const verified = await verifyBackup(options.from, { pgRestore, only: needed }, reporter);
    if (verified.problems.length > 0) throw refusal(verified.problems, 'the backup failed verification');

    if (wanted.length > 0) {
      return await restoreDays(
        { ...options, manifest, selected, pgRestore, target, databaseName: server.database },
        reporter,
      );
    }
    return await restoreWhole(options, manifest, pgRestore, target, server.database, reporter);
  } finally {
    await target.close();
  }
}

async function restoreWhole(
  options: RestoreOptions,
  manifest: Manifest,
  pgRestore: PgTool,
  target: RestoreTarget,
  databaseName: string,
  reporter: Reporter,
): Promise<RestoreOutcome> {
  const contents = await target.describe();
  const known = knownSchemaVersion();
  const unknownVersions = contents.migrations.filter((v) => v > known);
  // A database where tracehouse only ran its migrations: its tables are there, without a row of data.
  const onlyEmptyTracehouse =
    unknownVersions.length === 0 &&
    contents.objects.every((o) => TRACEHOUSE_OBJECTS.has(o.name) && (o.name === 'schema_migrations' || !o.rows));
  const toDrop = contents.objects;
  if (toDrop.length > 0 && !options.replace && !onlyEmptyTracehouse) {
    throw refusal([
      `database ${databaseName} is not empty. It holds:\n${describeContents(contents)}\n` +
        'Restore into an empty database (createdb a new one and point DATABASE_URL at it), or pass --replace to ' +
        'DROP all of the above and restore the backup in its place',
    ]);
  }
  if (unknownVersions.length > 0 && !options.replace) {
    throw refusal([
      `database ${databaseName} has schema version(s) ${unknownVersions.join(', ')}, newer than this tracehouse`,
    ]);
  }
  const plan = [
    `restore the whole ${manifest.kind === 'full' ? 'database' : 'set of chosen partitions'} from ${options.from} ` +
      `(snapshot ${manifest.snapshot.at}, schema version ${manifest.schemaVersion}) into database ${databaseName}`,
  ];
  if (toDrop.length > 0) {
    plan.push(
      onlyEmptyTracehouse
        ? `replace the empty tracehouse schema it holds (no rows in any table):\n${describeContents(contents)}`
        : `OVERWRITE: drop everything it holds first:\n${describeContents(contents)}`,
    );
  }
  plan.push(
    `load the catalog (${Object.entries(manifest.catalog.tables)
      .map(([t, n]) => `${t} ${formatCount(n)}`)
      .join(', ')})`,
    `load ${manifest.partitions.length} partition(s), ${formatCount(manifest.totals.rows)} spans, ${options.jobs} at a time`,
    'build primary keys, indexes and row-level security; apply grants',
    manifest.catalog.summaries
      ? 'keep the trace summaries from the backup'
      : 'rebuild the trace summaries from the spans',
    `migrate to schema version ${known}; verify every partition's count and checksum against the manifest`,
  );
  if (contents.tracehouseSessions > 0) {
    throw refusal([
      `${contents.tracehouseSessions} connection(s) of a running tracehouse server are open to database ${databaseName}: ` +
        'stop every tracehouse instance that uses it first (spans written during a whole-database restore would ' +
        'collide with the restored ones), then run the restore again',
    ]);
  }
  if (options.dryRun) {
    reporter.print(
      `dry run: nothing was written. The restore would:\n${plan.map((step, i) => `  ${i + 1}. ${step}`).join('\n')}`,
    );
    return { verified: 0, problems: [] };
  }
  reporter.print(`restoring:\n${plan.map((step, i) => `  ${i + 1}. ${step}`).join('\n')}`);

  let step = 'dropping the existing objects';
  try {
    if (toDrop.length > 0) await target.dropObjects(toDrop);
    step = 'restoring the schema (pre-data)';
    await restoreCatalogPreData(pgRestore, options, manifest);
    step = 'restoring the catalog tables';
    await runPgTool(
      pgRestore,
      [...RESTORE_FLAGS, '--single-transaction', '--section=data', catalogPath(options, manifest)],
      options.databaseUrl,
    );
    step = 'restoring the partitions';
    let done = 0;
    await runLimited(manifest.partitions, options.jobs, async (p) => {
      await runPgTool(
        pgRestore,
        [...RESTORE_FLAGS, '--single-transaction', '--data-only', path.join(options.from, p.file)],
        options.databaseUrl,
      );
      done += 1;
      reporter.progress(`[${done}/${manifest.partitions.length}] loaded ${p.name} (${formatCount(p.rows)} spans)`);
    });
    step = 'building keys, indexes and row-level security (post-data)';
    reporter.progress(step);
    await runPgTool(
      pgRestore,
      [...RESTORE_FLAGS, '--section=post-data', `--jobs=${options.jobs}`, catalogPath(options, manifest)],
      options.databaseUrl,
    );
    step = 'applying grants';
    await applyAcls(pgRestore, options, manifest, target, reporter);
    step = 'migrating to the current schema';
    const migrated = await migrate(options.databaseUrl);
    if (migrated.applied.length > 0) {
      reporter.progress(`applied migrations ${migrated.applied.map((m) => m.version).join(', ')}`);
    }
    // After migrating: the rebuild's SQL is this tracehouse's, written for the current schema.
    if (!manifest.catalog.summaries) {
      step = 'rebuilding the trace summaries';
      reporter.progress(step);
      const rebuilt = await target.rebuildSummaries();
      reporter.progress(
        `rebuilt ${formatCount(rebuilt.traces)} trace summaries, ${formatCount(rebuilt.operations)} operations`,
      );
    }
    step = 'ANALYZE';
    await target.analyze();
  } catch (err) {
    throw new OpsError(
      `the restore failed while ${step}: ${(err as Error).message}\nThe target database is partly restored. ` +
        'Fix the cause, then run the same restore again with --replace.',
    );
  }
  return verifyWhole(manifest, target, reporter);
}

/** pg_restore flags for every load: stop at the first error, objects owned by the restoring role. */
const RESTORE_FLAGS = ['--exit-on-error', '--no-owner', '--no-password'];

function catalogPath(options: RestoreOptions, manifest: Manifest): string {
  return path.join(options.from, manifest.catalog.file);
}

function isAclEntry(text: string): boolean {
  return text.startsWith('ACL ') || text.startsWith('DEFAULT ACL ');
}

async function withListFile<T>(lines: readonly string[], fn: (file: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tracehouse-restore-'));
  try {
    const file = path.join(dir, 'toc.list');
    await fs.writeFile(file, `${lines.join('\n')}\n`);
    return await fn(file);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function restoreCatalogPreData(pgRestore: PgTool, options: RestoreOptions, manifest: Manifest): Promise<void> {
  const toc = await listArchive(pgRestore, catalogPath(options, manifest), ['pre-data']);
  const lines = toc.entries.filter((e) => !isAclEntry(e.text)).map((e) => e.line);
  await withListFile(lines, (list) =>
    runPgTool(
      pgRestore,
      [...RESTORE_FLAGS, '--single-transaction', `--use-list=${list}`, catalogPath(options, manifest)],
      options.databaseUrl,
    ),
  );
}

/** GRANT / REVOKE statements of the dump, one by one; grants to roles this cluster lacks are skipped with a warning. */
async function applyAcls(
  pgRestore: PgTool,
  options: RestoreOptions,
  manifest: Manifest,
  target: RestoreTarget,
  reporter: Reporter,
): Promise<void> {
  const toc = await listArchive(pgRestore, catalogPath(options, manifest));
  const acl = toc.entries.filter((e) => isAclEntry(e.text)).map((e) => e.line);
  if (acl.length === 0) return;
  const statements: string[] = [];
  await withListFile(acl, (list) =>
    streamArchiveSql(pgRestore, [`--use-list=${list}`, catalogPath(options, manifest)], (line) => {
      if (/^(GRANT|REVOKE|ALTER DEFAULT PRIVILEGES) /.test(line)) statements.push(line);
    }),
  );
  const missing = new Set<string>();
  await target.begin();
  try {
    for (const statement of statements) {
      const outcome = await target.applyAcl(statement);
      if (outcome.missingRole) missing.add(outcome.missingRole);
    }
    await target.commit();
  } catch (err) {
    await target.rollback();
    throw err;
  }
  if (missing.size > 0) {
    reporter.warn(
      `grants to role(s) that do not exist in this PostgreSQL were skipped: ${[...missing].join(', ')}. ` +
        'Recreate tenant reader roles with `tracehouse tenant-role <tenant> --role <name>`.',
    );
  }
}

async function verifyWhole(manifest: Manifest, target: RestoreTarget, reporter: Reporter): Promise<RestoreOutcome> {
  const problems: string[] = [];
  const present = new Map((await target.partitions()).map((p) => [p.name, p]));
  const rows: Array<Array<string | number>> = [];
  for (const [i, p] of manifest.partitions.entries()) {
    reporter.progress(`[${i + 1}/${manifest.partitions.length}] verifying ${p.name}`);
    const actual = present.get(p.name);
    if (!actual) {
      problems.push(`${p.name} is missing after the restore`);
      rows.push([p.name, p.rows, '-', 'MISSING']);
      continue;
    }
    const measured = await target.measure(actual);
    const ok = measured.rows === p.rows && measured.checksum === p.checksum;
    if (!ok) {
      problems.push(
        `${p.name}: ${measured.rows} spans, checksum ${measured.checksum}; the backup has ${p.rows}, ${p.checksum}`,
      );
    }
    rows.push([p.name, p.rows, measured.rows, ok ? 'ok' : 'MISMATCH']);
  }
  const migrations = await target.migrations();
  const tables = await target.countTables();
  const unchangedSchema = Math.max(0, ...migrations) === manifest.schemaVersion;
  for (const [table, expected] of Object.entries(manifest.catalog.tables)) {
    if (table === 'schema_migrations' || (!unchangedSchema && table !== 'tenant_readers')) continue;
    if (tables[table] !== expected) {
      problems.push(`table ${table}: ${tables[table] ?? 'missing'} rows, the backup has ${expected}`);
    }
  }
  reporter.print(formatTable(['partition', 'backup rows', 'restored rows', 'count+checksum'], rows));
  if (problems.length > 0) {
    throw new OpsError(`the restore finished but VERIFICATION FAILED:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  reporter.print(
    `VERIFIED: ${manifest.partitions.length} partition(s), ${formatCount(manifest.totals.rows)} spans: every count and ` +
      `checksum matches the backup (snapshot ${manifest.snapshot.at}); schema version now ${Math.max(0, ...migrations)}`,
  );
  return { verified: manifest.partitions.length, problems };
}

export function describeContents(contents: TargetContents): string {
  const lines: string[] = [];
  const version = Math.max(0, ...contents.migrations);
  if (version > 0) lines.push(`    schema version ${version}`);
  for (const object of contents.objects) lines.push(`    ${object.kind} ${object.name}${rowsText(object)}`);
  if (contents.partitions.length > 0) {
    const total = contents.partitions.reduce((sum, p) => sum + p.rows, 0);
    const estimated = contents.partitions.some((p) => p.estimated);
    const first = contents.partitions[0].name;
    const last = contents.partitions.at(-1)!.name;
    lines.push(
      `    ${contents.partitions.length} span partition(s) ${first} … ${last}, ${estimated ? '~' : ''}${formatCount(total)} spans`,
    );
  }
  return lines.join('\n');
}

function rowsText(object: TargetObject): string {
  if (object.rows === undefined) return '';
  return `: ${object.estimated ? '~' : ''}${formatCount(object.rows)} rows`;
}
