/**
 * `tracehouse restore --from DIR --partition DAY`: day partitions back into a live database, e.g. a
 * day that retention already dropped, while ingest keeps running.
 *
 * Under the maintenance lock: for each day, create the partition if it is missing
 * (PartitionManager.ensureRange), then stream the dump's rows (pg_restore --file=-, the COPY block)
 * in chunks through the writer's staging path: INSERT … ON CONFLICT DO NOTHING into `spans`, the
 * operations catalog upserted, and the summaries of the chunk's traces recomputed exactly from their
 * spans, one transaction per chunk. A day that already holds rows is refused unless it is identical
 * (nothing to do), or --merge (add what is missing) or --replace (delete the day's rows first) says
 * what to do. Afterwards each day is counted and checksummed against the manifest.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import type { StorageConfig } from '../../config.js';
import type { PartitionMeasure, SnapshotPartition } from '../../storage/backup-queries.js';
import { createStorage } from '../../storage/index.js';
import type { RestoreTarget } from '../../storage/restore-queries.js';
import { CATALOG_TABLES, type Catalog } from '../../storage/write-catalog.js';
import type { Manifest, ManifestPartition } from './manifest.js';
import { streamArchiveSql, type PgTool } from './pg-tools.js';
import { formatCount, formatTable, OpsError, refusal, type Reporter } from './reporter.js';
import type { RestoreOutcome } from './restore.js';
import { knownSchemaVersion } from './versions.js';

const MS_PER_DAY = 86_400_000;
/** Rows per transaction when loading a day. */
const CHUNK_ROWS = 5000;

export interface DayRestoreContext {
  databaseUrl: string;
  from: string;
  replace: boolean;
  merge: boolean;
  dryRun: boolean;
  lockWaitMs: number;
  storage: StorageConfig;
  log: Logger;
  now?: () => number;
  manifest: Manifest;
  selected: ManifestPartition[];
  pgRestore: PgTool;
  target: RestoreTarget;
  databaseName: string;
}

type Action = 'create' | 'load' | 'skip' | 'merge' | 'replace';

interface DayPlan {
  partition: ManifestPartition;
  action: Action;
  before?: PartitionMeasure;
  note: string;
}

export async function restoreDays(ctx: DayRestoreContext, reporter: Reporter): Promise<RestoreOutcome> {
  const { target, manifest } = ctx;
  const migrations = await target.migrations();
  const version = Math.max(0, ...migrations);
  if (!(await target.hasSpansTable())) {
    throw refusal([
      `database ${ctx.databaseName} has no tracehouse schema: restore the whole backup into it, or run \`tracehouse migrate\` first`,
    ]);
  }
  if (version > knownSchemaVersion()) {
    throw refusal([
      `database ${ctx.databaseName} has schema version ${version}, newer than this tracehouse knows (${knownSchemaVersion()})`,
    ]);
  }
  // Days load through this tracehouse's writer, which needs its own schema (a backup is never newer).
  if (version < knownSchemaVersion()) {
    throw refusal([
      `database ${ctx.databaseName} has schema version ${version}, older than this tracehouse's ${knownSchemaVersion()}: run \`tracehouse migrate\` on it first`,
    ]);
  }
  if (!(await target.lockMaintenance(ctx.lockWaitMs))) {
    throw refusal(['partition maintenance (or a backup) holds the maintenance lock; try again in a minute']);
  }

  const existing = new Map((await target.partitions()).map((p) => [p.name, p]));
  const plans: DayPlan[] = [];
  const refusals: string[] = [];
  for (const partition of ctx.selected) {
    const present = existing.get(partition.name);
    if (!present) {
      plans.push({ partition, action: 'create', note: 'partition missing: create it and load the backup' });
      continue;
    }
    reporter.progress(`measuring ${partition.name} in the target`);
    const before = await target.measure(present);
    if (before.rows === 0) {
      plans.push({ partition, action: 'load', before, note: 'partition empty: load the backup' });
    } else if (before.rows === partition.rows && before.checksum === partition.checksum) {
      plans.push({ partition, action: 'skip', before, note: 'already identical to the backup: nothing to do' });
    } else if (ctx.merge) {
      plans.push({
        partition,
        action: 'merge',
        before,
        note: `holds ${formatCount(before.rows)} spans: add the backup's missing ones, keep the rest`,
      });
    } else if (ctx.replace) {
      plans.push({
        partition,
        action: 'replace',
        before,
        note: `holds ${formatCount(before.rows)} spans: DELETE them, then load the backup`,
      });
    } else {
      refusals.push(
        `${partition.name} already holds ${formatCount(before.rows)} spans that differ from the backup's ` +
          `${formatCount(partition.rows)}: pass --merge to add the backup's missing spans and keep the others, ` +
          "or --replace to delete the day's spans and load the backup's",
      );
      plans.push({ partition, action: 'skip', before, note: 'REFUSED: differs from the backup' });
    }
  }
  const retentionCutoff = (ctx.now ?? Date.now)() - ctx.storage.retentionDays * MS_PER_DAY;
  for (const plan of plans) {
    if (Date.parse(plan.partition.to) <= retentionCutoff && plan.action !== 'skip') {
      reporter.warn(
        `${plan.partition.name} is older than RETENTION_DAYS (${ctx.storage.retentionDays}): the next partition ` +
          'maintenance run drops it again. Raise RETENTION_DAYS on every tracehouse instance first if it must stay.',
      );
    }
  }
  reporter.print(
    `${ctx.dryRun ? 'dry run: nothing was written. The restore would bring back' : 'restoring'} ${plans.length} day(s) from ${ctx.from} ` +
      `(snapshot ${manifest.snapshot.at}) into the live database ${ctx.databaseName}:\n` +
      formatTable(
        ['partition', 'backup rows', 'target rows', 'action'],
        plans.map((p) => [p.partition.name, p.partition.rows, p.before ? p.before.rows : 0, p.note]),
      ),
  );
  if (refusals.length > 0) throw refusal(refusals);
  if (ctx.dryRun) return { verified: 0, problems: [] };

  const storage = await createStorage({ ...ctx.storage, connectionString: ctx.databaseUrl }, ctx.log);
  const problems: string[] = [];
  try {
    const resources = await mergeBackupCatalog(ctx, 'resources');
    if (resources > 0) reporter.print(`added ${formatCount(resources)} resource(s) from the backup's catalog`);
    const sets = await mergeBackupCatalog(ctx, 'attributeSets');
    if (sets > 0) reporter.print(`added ${formatCount(sets)} attribute set(s) from the backup's catalog`);
    for (const plan of plans) {
      if (plan.action === 'skip') continue;
      problems.push(
        ...(await restoreOneDay(ctx, plan, storage.partitions.ensureRange.bind(storage.partitions), reporter)),
      );
    }
  } finally {
    await storage.stop();
  }
  if (problems.length > 0) {
    throw new OpsError(`the restore finished but VERIFICATION FAILED:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  return { verified: plans.length, problems };
}

/**
 * The restored days' spans point at resources (migrations/000005) and attribute sets (000006) by
 * id: the backup's rows of those tables that the target lacks come first, from the catalog dump.
 * A backup made before 000005 has no `resources`; its span rows carry their resources themselves
 * and the staging INSERT stores them. One made before 000006 has no `attribute_sets`; its span
 * rows hold all their attributes.
 */
async function mergeBackupCatalog(ctx: DayRestoreContext, catalog: Catalog): Promise<number> {
  let columns: string[] | undefined;
  let done = false;
  const lines: string[] = [];
  const args = [
    '--data-only',
    `--table=${CATALOG_TABLES[catalog].table}`,
    path.join(ctx.from, ctx.manifest.catalog.file),
  ];
  await streamArchiveSql(ctx.pgRestore, args, (line) => {
    if (done) return;
    if (!columns) {
      const m = /^COPY (\S+) \((.+)\) FROM stdin;$/.exec(line);
      if (m) columns = parseColumnList(m[2]);
      return;
    }
    if (line === '\\.') done = true;
    else lines.push(line);
  });
  if (!columns || lines.length === 0) return 0;
  return ctx.target.mergeCatalogRows(catalog, columns, lines);
}

async function restoreOneDay(
  ctx: DayRestoreContext,
  plan: DayPlan,
  ensureRange: (from: Date, to: Date) => Promise<string[]>,
  reporter: Reporter,
): Promise<string[]> {
  const { partition } = plan;
  const where: SnapshotPartition = {
    schema: partition.schema,
    name: partition.name,
    fromInclusive: new Date(partition.from),
    toExclusive: new Date(partition.to),
  };
  let step = 'creating the partition';
  let staged = 0;
  let inserted = 0;
  let deleted = 0;
  try {
    await ensureRange(where.fromInclusive, new Date(where.toExclusive.getTime() - 1));
    if (plan.action === 'replace') {
      step = 'deleting the day’s spans';
      deleted = await ctx.target.emptyPartition(where);
    }
    step = 'loading the spans';
    let columns: string[] | undefined;
    let done = false;
    let chunk: string[] = [];
    const flush = async (): Promise<void> => {
      if (chunk.length === 0 || !columns) return;
      inserted += await ctx.target.loadStagedRows(columns, chunk);
      staged += chunk.length;
      chunk = [];
      reporter.progress(`${partition.name}: ${formatCount(staged)} / ${formatCount(partition.rows)} spans loaded`);
    };
    await streamArchiveSql(ctx.pgRestore, ['--data-only', path.join(ctx.from, partition.file)], async (line) => {
      if (done) return;
      if (!columns) {
        const m = /^COPY (\S+) \((.+)\) FROM stdin;$/.exec(line);
        if (m) columns = parseColumnList(m[2]);
        return;
      }
      if (line === '\\.') {
        done = true;
        return;
      }
      chunk.push(line);
      if (chunk.length >= CHUNK_ROWS) await flush();
    });
    await flush();
    if (!columns || !done) throw new Error(`${partition.file} holds no complete COPY block`);
  } catch (err) {
    throw new OpsError(
      `restoring ${partition.name} failed while ${step} (${formatCount(staged)} spans loaded so far, in committed chunks): ` +
        `${(err as Error).message}\nRun the same restore again with --merge: spans already loaded are skipped.`,
    );
  }
  const after = await ctx.target.measure(where);
  const problems: string[] = [];
  const already = staged - inserted;
  const summary = `${partition.name}: ${formatCount(inserted)} spans added${already ? `, ${formatCount(already)} already present` : ''}${deleted ? `, ${formatCount(deleted)} deleted first` : ''}`;
  if (staged !== partition.rows) {
    problems.push(`${partition.name}: the dump held ${staged} rows, the manifest says ${partition.rows}`);
  } else if (after.rows === partition.rows && after.checksum === partition.checksum) {
    reporter.print(`VERIFIED ${summary}; count and checksum match the backup (${formatCount(after.rows)} spans)`);
  } else if (after.rows > partition.rows) {
    // Every staged row was inserted or met an identical key: all of the backup's spans are there.
    const extra = after.rows - partition.rows;
    const message = `${summary}; every backup span is present, and the day holds ${formatCount(extra)} more`;
    if (plan.action === 'merge') reporter.print(`VERIFIED ${message} (kept by --merge)`);
    else reporter.warn(`${message}: spans were ingested into this day during the restore`);
  } else {
    problems.push(
      `${partition.name}: ${after.rows} spans, checksum ${after.checksum} after the restore; the backup has ${partition.rows}, ${partition.checksum}`,
    );
  }
  return problems;
}

/** `tenant, trace_id, "odd name"` → names. */
export function parseColumnList(text: string): string[] {
  return text
    .split(', ')
    .map((column) => (column.startsWith('"') ? column.slice(1, -1).replaceAll('""', '"') : column));
}
