/**
 * `tracehouse backup`: a consistent, verifiable backup while ingest keeps running.
 *
 *   1. open the backup snapshot (storage/backup-queries.ts: maintenance lock, REPEATABLE READ,
 *      pg_export_snapshot), check pg_dump can dump this server;
 *   2. run pg_dump --snapshot in custom format: catalog.dump (the whole schema and every table's
 *      data except the span partitions; a `--partition` backup also leaves out the derived
 *      `traces`/`operations`), and one <partition>.dump per day partition (its rows only, loaded
 *      through the partition root on restore). Meanwhile, in the same snapshot, count each
 *      partition's rows and checksum its span keys;
 *   3. hash every file, read it back with pg_restore --list, then write manifest.json and
 *      SHA256SUMS (each through a temporary file and a rename: their presence means complete);
 *   4. with --rotate, remove the oldest complete backups beyond --keep.
 *
 * Any failure removes what this run wrote and exits non-zero.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  openBackupSnapshot,
  CHECKSUM_ALGORITHM,
  type BackupSnapshot,
  type PartitionMeasure,
  type SnapshotPartition,
} from '../../storage/backup-queries.js';
import {
  CATALOG_FILE,
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  SUMS_FILE,
  formatManifest,
  formatSums,
  type Manifest,
  type ManifestPartition,
} from './manifest.js';
import { findPgTool, listArchive, runPgTool } from './pg-tools.js';
import { formatBytes, formatCount, formatTable, OpsError, runLimited, type Reporter } from './reporter.js';
import { makeBackupDir, rotateBackups, type RotationPlan } from './rotation.js';
import { exactTablePattern, partitionNamesFor, pickPartitions } from './selection.js';
import { sha256File } from './verify.js';
import { knownSchemaVersion, pgDumpProblem, tracehouseVersion } from './versions.js';

export interface BackupOptions {
  databaseUrl: string;
  /** The backup directory (new or empty), or with `rotate` the base directory. */
  out: string;
  /** Days (YYYY-MM-DD) or partition names; empty: the whole database. */
  partitions: string[];
  rotate: boolean;
  /** With rotate: complete backups to keep, this one included. */
  keep?: number;
  /** Concurrent pg_dump processes. */
  jobs: number;
  pgBin?: string;
  /** How long to wait for the maintenance lock (and, in pg_dump, for table locks). */
  lockWaitMs: number;
}

export interface BackupResult {
  dir: string;
  manifest: Manifest;
  rotation?: RotationPlan;
}

interface DumpTask {
  file: string;
  args: string[];
  partition?: SnapshotPartition;
}

export async function runBackup(options: BackupOptions, reporter: Reporter): Promise<BackupResult> {
  const startedAt = new Date();
  if (options.rotate && !(options.keep !== undefined && options.keep >= 1)) {
    throw new OpsError('--rotate needs --keep N (N ≥ 1): how many complete backups to keep', 2);
  }
  const wanted = partitionNamesFor(options.partitions);
  const pgDump = await findPgTool('pg_dump', options.pgBin);
  const pgRestore = await findPgTool('pg_restore', options.pgBin);
  const { dir, created } = options.rotate
    ? { dir: await makeBackupDir(options.out, startedAt), created: true }
    : await prepareOutDir(options.out);
  const written: string[] = [];
  let snapshot: BackupSnapshot | undefined;
  try {
    reporter.progress('taking the maintenance lock and a snapshot');
    snapshot = await openBackupSnapshot(options.databaseUrl, { lockWaitMs: options.lockWaitMs });
    const problem = pgDumpProblem(pgDump.major, pgDump.version, snapshot.server.major, snapshot.server.version);
    if (problem) throw new OpsError(problem);
    if (!snapshot.hasSpans) {
      throw new OpsError(
        `database ${snapshot.database} has no tracehouse schema (no spans table): nothing to back up; is DATABASE_URL right?`,
      );
    }
    const schemaVersion = Math.max(0, ...snapshot.migrations);
    if (schemaVersion > knownSchemaVersion()) {
      reporter.warn(
        `the database has schema version ${schemaVersion}, newer than this tracehouse knows (${knownSchemaVersion()}); ` +
          'only a tracehouse that new can restore this backup',
      );
    }
    const selected =
      wanted.length > 0
        ? pickPartitions(snapshot.partitions, wanted, `database ${snapshot.database}`)
        : snapshot.partitions;
    const kind = wanted.length > 0 ? 'partitions' : 'full';
    const tasks = dumpTasks(snapshot, selected, kind, dir, options.lockWaitMs);
    written.push(...tasks.map((t) => t.file));

    const measures = new Map<string, PartitionMeasure>();
    const open = snapshot;
    let dumped = 0;
    const [dumping, measuring] = await Promise.allSettled([
      runLimited(tasks, options.jobs, async (task) => {
        await runPgTool(pgDump, task.args, options.databaseUrl);
        dumped += 1;
        reporter.progress(`[${dumped}/${tasks.length}] dumped ${task.file}`);
      }),
      (async () => {
        for (const [i, partition] of selected.entries()) {
          measures.set(partition.name, await open.measure(partition));
          reporter.progress(
            `[${i + 1}/${selected.length}] counted ${partition.name}: ${formatCount(measures.get(partition.name)!.rows)} spans`,
          );
        }
        return open.countTables();
      })(),
    ]);
    if (dumping.status === 'rejected') throw dumping.reason;
    if (measuring.status === 'rejected') throw measuring.reason;
    const tables = measuring.value;
    await snapshot.close();

    reporter.progress('hashing the files and reading them back with pg_restore --list');
    const files = new Map<string, { bytes: number; sha256: string; archiveVersion: string }>();
    await runLimited(tasks, options.jobs, async (task) => {
      const full = path.join(dir, task.file);
      const toc = await listArchive(pgRestore, full);
      files.set(task.file, {
        bytes: (await fs.stat(full)).size,
        sha256: await sha256File(full),
        archiveVersion: toc.archiveVersion,
      });
    });
    const finishedAt = new Date();
    const partitions: ManifestPartition[] = selected.map((p) => ({
      file: `${p.name}.dump`,
      bytes: files.get(`${p.name}.dump`)!.bytes,
      sha256: files.get(`${p.name}.dump`)!.sha256,
      schema: p.schema,
      name: p.name,
      from: p.fromInclusive.toISOString(),
      to: p.toExclusive.toISOString(),
      rows: measures.get(p.name)!.rows,
      checksum: measures.get(p.name)!.checksum,
    }));
    const catalog = files.get(CATALOG_FILE)!;
    if (kind === 'partitions') {
      delete tables.traces;
      delete tables.operations;
      delete tables.red_minute;
    }
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      formatVersion: MANIFEST_VERSION,
      kind,
      tool: {
        name: 'tracehouse',
        version: tracehouseVersion(),
        pgDump: pgDump.version,
        pgDumpMajor: pgDump.major,
        archiveVersion: catalog.archiveVersion || 'unknown',
      },
      server: snapshot.server,
      database: snapshot.database,
      schemaVersion,
      migrations: snapshot.migrations,
      snapshot: { id: snapshot.id, at: snapshot.takenAt.toISOString() },
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime(),
      checksumAlgorithm: CHECKSUM_ALGORITHM,
      catalog: { file: CATALOG_FILE, bytes: catalog.bytes, sha256: catalog.sha256, tables, summaries: kind === 'full' },
      partitions,
      totals: {
        rows: partitions.reduce((sum, p) => sum + p.rows, 0),
        bytes: [...files.values()].reduce((sum, f) => sum + f.bytes, 0),
      },
    };
    written.push(MANIFEST_FILE, SUMS_FILE);
    const manifestText = formatManifest(manifest);
    await writeAtomically(path.join(dir, MANIFEST_FILE), manifestText);
    const sums = [
      { file: MANIFEST_FILE, sha256: createHash('sha256').update(manifestText).digest('hex') },
      ...tasks.map((t) => ({ file: t.file, sha256: files.get(t.file)!.sha256 })),
    ];
    await writeAtomically(path.join(dir, SUMS_FILE), formatSums(sums));

    const rotation = options.rotate
      ? await rotate(options.out, options.keep!, path.basename(dir), reporter)
      : undefined;
    return { dir, manifest, rotation };
  } catch (err) {
    await snapshot?.close();
    await removeWritten(dir, written, created);
    reporter.error(`the backup failed; removed the partial files in ${dir}`);
    throw err;
  }
}

function dumpTasks(
  snapshot: BackupSnapshot,
  selected: readonly SnapshotPartition[],
  kind: Manifest['kind'],
  dir: string,
  lockWaitMs: number,
): DumpTask[] {
  const common = ['--format=custom', `--snapshot=${snapshot.id}`, `--lock-wait-timeout=${lockWaitMs}`, '--no-password'];
  const excluded = snapshot.partitions.map((p) => `--exclude-table-data=${exactTablePattern(p.schema, p.name)}`);
  if (kind === 'partitions') {
    excluded.push('--exclude-table-data=traces', '--exclude-table-data=operations', '--exclude-table-data=red_minute');
  }
  return [
    { file: CATALOG_FILE, args: [...common, ...excluded, `--file=${path.join(dir, CATALOG_FILE)}`] },
    ...selected.map((partition) => ({
      file: `${partition.name}.dump`,
      partition,
      args: [
        ...common,
        '--data-only',
        '--load-via-partition-root',
        `--table=${exactTablePattern(partition.schema, partition.name)}`,
        `--file=${path.join(dir, `${partition.name}.dump`)}`,
      ],
    })),
  ];
}

async function prepareOutDir(out: string): Promise<{ dir: string; created: boolean }> {
  try {
    const entries = await fs.readdir(out);
    if (entries.length > 0) {
      throw new OpsError(
        `${out} is not empty: a backup goes into a new or empty directory (or use --rotate --keep N to write ` +
          'timestamped subdirectories of it)',
        2,
      );
    }
    return { dir: out, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await fs.mkdir(out, { recursive: true });
    return { dir: out, created: true };
  }
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`;
  const handle = await fs.open(tmp, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
}

async function removeWritten(dir: string, written: readonly string[], created: boolean): Promise<void> {
  if (created) {
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    return;
  }
  for (const name of written) {
    await fs.rm(path.join(dir, name), { force: true }).catch(() => undefined);
    await fs.rm(path.join(dir, `${name}.tmp`), { force: true }).catch(() => undefined);
  }
}

async function rotate(base: string, keep: number, current: string, reporter: Reporter): Promise<RotationPlan> {
  const plan = await rotateBackups(base, keep, current);
  if (plan.incomplete.length > 0) {
    reporter.warn(
      `incomplete backup directories in ${base} were left alone (no manifest or SHA256SUMS): ${plan.incomplete.join(', ')}; ` +
        'remove them once you know why they are incomplete',
    );
  }
  return plan;
}

export function describeBackup(result: BackupResult): string {
  const m = result.manifest;
  const lines = [
    `backup complete: ${result.dir}`,
    `  database ${m.database} on PostgreSQL ${m.server.version}, schema version ${m.schemaVersion}, ${m.kind === 'full' ? 'whole database' : 'chosen partitions'}`,
    `  snapshot at ${m.snapshot.at}; ${m.partitions.length} partition(s), ${formatCount(m.totals.rows)} spans, ` +
      `${formatBytes(m.totals.bytes)} in ${(m.durationMs / 1000).toFixed(1)} s (pg_dump ${m.tool.pgDump})`,
    formatTable(
      ['partition', 'rows', 'checksum', 'bytes'],
      m.partitions.map((p) => [p.name, p.rows, p.checksum, p.bytes]),
    ),
    `  other tables: ${
      Object.entries(m.catalog.tables)
        .map(([t, n]) => `${t} ${formatCount(n)}`)
        .join(', ') || 'none'
    }`,
  ];
  if (result.rotation) {
    lines.push(
      `  rotation: keeping ${result.rotation.keep.length} (${result.rotation.keep.join(', ')}), ` +
        `removed ${result.rotation.remove.length}${result.rotation.remove.length ? ` (${result.rotation.remove.join(', ')})` : ''}`,
    );
  }
  lines.push(`check it any time with: tracehouse verify --from ${result.dir}`);
  return lines.join('\n');
}
