/**
 * The data lifecycle commands of the CLI: backup, restore, verify, partitions and `migrate --check`.
 * They work on the PostgreSQL named by --database-url or DATABASE_URL (never an embedded one they
 * would start themselves), print progress to stderr on a terminal and a summary to stdout, and exit
 * 0 when everything is right, 1 on any problem, 2 on a usage error.
 */
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import type { Config } from './config.js';
import { describeBackup, runBackup } from './ops/backup/backup.js';
import { PgToolError, stopRunningTools } from './ops/backup/pg-tools.js';
import { OpsError, Reporter, type CommandIo } from './ops/backup/reporter.js';
import { runRestore } from './ops/backup/restore.js';
import { describeVerify, verifyBackup } from './ops/backup/verify.js';
import { findPgTool } from './ops/backup/pg-tools.js';
import { createPartitions, dropPartitions, listPartitions } from './ops/partitions-command.js';
import { createStorage } from './storage/index.js';
import { migrationStatus } from './storage/migrate.js';

export const OPS_COMMANDS = ['backup', 'restore', 'verify', 'partitions'] as const;

export const OPS_USAGE = `  backup --out DIR [--partition DAY]… [--rotate --keep N]
            consistent backup (pg_dump custom format + manifest) while ingest runs
  restore --from DIR [--partition DAY]… [--replace | --merge] [--dry-run]
            restore a whole backup into an empty database, or days into a live one; verifies
  verify --from DIR
            check a backup's files against its manifest without restoring
  partitions list | create [--ahead N] | drop [--older-than-days N] [--dry-run]
            list, create ahead, or drop day partitions (and apply TENANT_RETENTION_DAYS)
  migrate --check
            exit 1 when migrations are pending or the database is newer than this tracehouse`;

const COMMON = `
common options:
  --database-url URL   the PostgreSQL to use (default: DATABASE_URL)
  --pg-bin DIR         directory of pg_dump / pg_restore (default: PATH)
  --progress           print progress even when stderr is not a terminal
  --help               this text
exit status: 0 success, 1 a problem (the message says which), 2 a usage error`;

const HELP: Record<string, string> = {
  backup: `usage: tracehouse backup --out DIR [options]

Backs up the database (or chosen day partitions) while ingest keeps running: one PostgreSQL
snapshot, pg_dump in custom format (catalog.dump + one <partition>.dump per day), and a manifest
(schema version, tool and server versions, per-partition row counts and span-key checksums, file
sha256s) plus SHA256SUMS. Every file is read back with pg_restore --list before the manifest is written.

options:
  --out DIR            a new or empty directory (with --rotate: the base directory)
  --partition DAY      only this day (YYYY-MM-DD or spans_YYYYMMDD); repeatable. Without it: everything
  --rotate             write into DIR/<UTC timestamp>/ and remove the oldest complete backups beyond --keep
  --keep N             with --rotate: complete backups to keep, this one included
  --jobs N             pg_dump processes at once (default 2)
  --lock-wait-s N      wait at most N s for partition maintenance to finish (default 60)${COMMON}`,
  restore: `usage: tracehouse restore --from DIR [options]

Whole database (no --partition): into an empty database; refuses one that holds data unless
--replace, after listing what it would drop. Days (--partition): into a live database that keeps
ingesting; a missing partition is created, rows go in through the writer's idempotent path, and
trace summaries are recomputed. Both check versions and every needed file before writing anything,
stop at the first error, migrate to the current schema, then verify each restored partition's row
count and checksum against the manifest.

options:
  --from DIR           the backup directory (the one holding manifest.json)
  --partition DAY      restore only this day into the live database (YYYY-MM-DD or spans_YYYYMMDD); repeatable
  --replace            whole database: drop what the target holds first. Days: delete a differing day's spans first
  --merge              days: add the backup's spans a differing day lacks, keep its other spans
  --dry-run            check everything and print what would happen; write nothing
  --jobs N             partitions loaded at once (default 2)
  --lock-wait-s N      wait at most N s for partition maintenance (default 60)${COMMON}`,
  verify: `usage: tracehouse verify --from DIR [options]

Checks a backup without restoring it: manifest.json is well formed, SHA256SUMS matches it, every
dump file has the recorded size and sha256, and pg_restore can read each one and finds what it must
hold. Needs no database.

options:
  --from DIR           the backup directory${COMMON}`,
  partitions: `usage: tracehouse partitions <list | create | drop> [options]

  list [--exact] [--json]
            every day partition with its rows (estimated; --exact counts), size and time range
  create [--ahead N]
            create the partitions from today to N days ahead (default PARTITIONS_AHEAD_DAYS)
  drop [--older-than-days N] [--dry-run]
            drop partitions that end more than N days ago (default RETENTION_DAYS), with their trace
            summaries; tenants in TENANT_RETENTION_DAYS keeping fewer days lose their older spans
            inside the remaining partitions. --dry-run shows what would go.${COMMON}`,
  migrate: `usage: tracehouse migrate [--check] [--database-url URL]

  migrate            apply pending migrations (DATABASE_URL, or the embedded PostgreSQL) and exit
  migrate --check    change nothing; exit 0 when the schema is current, 1 when migrations are
                     pending or the database is newer than this tracehouse`,
};

function logger(): Logger {
  return pino({ level: 'warn', base: { service: 'tracehouse' } }, pino.destination(2));
}

function databaseUrlOf(value: string | undefined, config: Config): string {
  const url = value ?? config.storage.databaseUrl;
  if (!url) {
    throw new OpsError(
      'DATABASE_URL is not set: these commands work on the PostgreSQL named by DATABASE_URL (or --database-url). ' +
        'For the embedded PostgreSQL of `npm start`, while it runs: postgres://postgres:tracehouse@127.0.0.1:5433/tracehouse',
      2,
    );
  }
  return url;
}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new OpsError(`${name} must be a non-negative whole number, got '${value}'`, 2);
  }
  return n;
}

const COMMON_OPTIONS = {
  'database-url': { type: 'string' },
  'pg-bin': { type: 'string' },
  progress: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

/**
 * While a command runs, SIGINT / SIGTERM stop its pg_dump / pg_restore children so that it fails
 * and cleans up (a backup removes its partial files) instead of dying with orphans writing on; a
 * second signal exits at once.
 */
function interruptible(reporter: () => Reporter): () => void {
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    reporter().error(`${signal}: stopping pg_dump / pg_restore and cleaning up (send it again to exit at once)`);
    stopRunningTools();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

/** Runs one ops command; returns the exit code. Never throws for expected problems. */
export async function runOpsCommand(command: string, args: string[], config: Config, io?: CommandIo): Promise<number> {
  const out: CommandIo = io ?? { stdout: process.stdout, stderr: process.stderr };
  let reporter = new Reporter(command, out);
  const release = interruptible(() => reporter);
  try {
    if (args.includes('--help') || args.includes('-h')) {
      reporter.print(HELP[command] ?? 'no help for this command');
      return 0;
    }
    switch (command) {
      case 'backup': {
        const { values } = parseArgs({
          args,
          strict: true,
          options: {
            ...COMMON_OPTIONS,
            out: { type: 'string' },
            partition: { type: 'string', multiple: true },
            rotate: { type: 'boolean' },
            keep: { type: 'string' },
            jobs: { type: 'string' },
            'lock-wait-s': { type: 'string' },
          },
        });
        reporter = new Reporter(command, { ...out, progress: values.progress || out.progress });
        if (!values.out) throw new OpsError('--out DIR is required', 2);
        const result = await runBackup(
          {
            databaseUrl: databaseUrlOf(values['database-url'], config),
            out: values.out,
            partitions: values.partition ?? [],
            rotate: values.rotate ?? false,
            keep: values.keep === undefined ? undefined : positiveInt('--keep', values.keep, 0),
            jobs: Math.max(1, positiveInt('--jobs', values.jobs, 2)),
            pgBin: values['pg-bin'],
            lockWaitMs: positiveInt('--lock-wait-s', values['lock-wait-s'], 60) * 1000,
          },
          reporter,
        );
        reporter.print(describeBackup(result));
        reporter.printWarnings();
        return 0;
      }
      case 'restore': {
        const { values } = parseArgs({
          args,
          strict: true,
          options: {
            ...COMMON_OPTIONS,
            from: { type: 'string' },
            partition: { type: 'string', multiple: true },
            replace: { type: 'boolean' },
            merge: { type: 'boolean' },
            'dry-run': { type: 'boolean' },
            jobs: { type: 'string' },
            'lock-wait-s': { type: 'string' },
          },
        });
        reporter = new Reporter(command, { ...out, progress: values.progress || out.progress });
        if (!values.from) throw new OpsError('--from DIR is required', 2);
        await runRestore(
          {
            databaseUrl: databaseUrlOf(values['database-url'], config),
            from: values.from,
            partitions: values.partition ?? [],
            replace: values.replace ?? false,
            merge: values.merge ?? false,
            dryRun: values['dry-run'] ?? false,
            jobs: Math.max(1, positiveInt('--jobs', values.jobs, 2)),
            pgBin: values['pg-bin'],
            lockWaitMs: positiveInt('--lock-wait-s', values['lock-wait-s'], 60) * 1000,
            storage: config.storage,
            log: logger(),
          },
          reporter,
        );
        reporter.printWarnings();
        return 0;
      }
      case 'verify': {
        const { values } = parseArgs({ args, strict: true, options: { ...COMMON_OPTIONS, from: { type: 'string' } } });
        reporter = new Reporter(command, { ...out, progress: values.progress || out.progress });
        if (!values.from) throw new OpsError('--from DIR is required', 2);
        const pgRestore = await findPgTool('pg_restore', values['pg-bin']);
        const result = await verifyBackup(values.from, { pgRestore }, reporter);
        reporter.print(describeVerify(values.from, result));
        reporter.printWarnings();
        if (result.problems.length > 0) {
          reporter.error(`${values.from} FAILED verification (see above); do not rely on it`);
        }
        return result.problems.length === 0 ? 0 : 1;
      }
      case 'partitions':
        return await runPartitions(args, config, reporter);
      case 'migrate':
        return await runMigrateCheck(args, config, reporter);
      default:
        throw new OpsError(`unknown command '${command}'`, 2);
    }
  } catch (err) {
    return report(err, reporter, command);
  } finally {
    release();
  }
}

function report(err: unknown, reporter: Reporter, command: string): number {
  if (err instanceof OpsError) {
    reporter.error(err.message);
    if (err.exitCode === 2) reporter.print(`see: tracehouse ${command} --help`);
    return err.exitCode;
  }
  if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    reporter.error((err as Error).message);
    reporter.print(`see: tracehouse ${command} --help`);
    return 2;
  }
  if (err instanceof PgToolError) {
    reporter.error(err.message);
    return 1;
  }
  reporter.error(
    `${(err as Error).message ?? String(err)}${(err as { code?: string }).code ? ` (${(err as { code?: string }).code})` : ''}`,
  );
  return 1;
}

async function runPartitions(args: string[], config: Config, reporter: Reporter): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      ...COMMON_OPTIONS,
      exact: { type: 'boolean' },
      json: { type: 'boolean' },
      ahead: { type: 'string' },
      'older-than-days': { type: 'string' },
      'dry-run': { type: 'boolean' },
      'lock-wait-s': { type: 'string' },
    },
  });
  const [action] = positionals;
  if (positionals.length !== 1 || !['list', 'create', 'drop'].includes(action)) {
    throw new OpsError('give one action: list, create or drop', 2);
  }
  const url = databaseUrlOf(values['database-url'], config);
  const storage = await createStorage({ ...config.storage, connectionString: url }, logger());
  const lockWaitMs = positiveInt('--lock-wait-s', values['lock-wait-s'], 30) * 1000;
  try {
    if (action === 'list') {
      await listPartitions(storage, { exact: values.exact ?? false, json: values.json ?? false }, reporter);
    } else if (action === 'create') {
      const aheadDays = positiveInt('--ahead', values.ahead, config.storage.partitionsAheadDays);
      await createPartitions(storage, { aheadDays, lockWaitMs, now: Date.now() }, reporter);
    } else {
      await dropPartitions(
        storage,
        {
          olderThanDays: positiveInt('--older-than-days', values['older-than-days'], config.storage.retentionDays),
          dryRun: values['dry-run'] ?? false,
          tenantRetentionDays: config.storage.tenantRetentionDays,
          lockWaitMs,
          now: Date.now(),
        },
        reporter,
      );
    }
    return 0;
  } finally {
    await storage.stop();
  }
}

async function runMigrateCheck(args: string[], config: Config, reporter: Reporter): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { 'database-url': { type: 'string' }, check: { type: 'boolean' }, help: { type: 'boolean' } },
  });
  if (!values.check) {
    throw new OpsError('the only option of migrate is --check (plain `tracehouse migrate` applies)', 2);
  }
  const status = await migrationStatus(databaseUrlOf(values['database-url'], config));
  const current = Math.max(0, ...status.applied);
  if (status.unknown.length > 0) {
    reporter.error(
      `the database has schema version(s) ${status.unknown.join(', ')} that this tracehouse does not know (it knows up to ` +
        `${status.known}): upgrade tracehouse; never run old code on a newer schema`,
    );
    return 1;
  }
  if (status.pending.length > 0) {
    reporter.print(
      `${status.pending.length} migration(s) pending (database at version ${current}, this tracehouse at ${status.known}):\n` +
        status.pending.map((m) => `  ${String(m.version).padStart(6, '0')}_${m.name}`).join('\n') +
        '\nrun: tracehouse migrate',
    );
    return 1;
  }
  reporter.print(`schema is current: version ${current}`);
  return 0;
}
