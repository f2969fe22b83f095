/**
 * `tracehouse partitions list | create | drop`: the day partitions by hand, with the same rules as
 * the maintenance loop (ops/maintenance.ts). create and drop run under the maintenance advisory
 * lock, so they never race maintenance or a backup; drop applies per-tenant retention
 * (TENANT_RETENTION_DAYS) for tenants keeping less than the cutoff, by deleting inside partitions.
 */
import type { Storage } from '../storage/types.js';
import { formatBytes, formatCount, formatTable, OpsError, type Reporter } from './backup/reporter.js';

const MS_PER_DAY = 86_400_000;

export async function listPartitions(
  storage: Storage,
  options: { exact: boolean; json: boolean },
  reporter: Reporter,
): Promise<void> {
  const stats = await storage.partitions.stats({ exact: options.exact });
  if (options.json) {
    reporter.print(
      JSON.stringify(
        stats.map((p) => ({
          name: p.name,
          from: p.fromInclusive.toISOString(),
          to: p.toExclusive.toISOString(),
          rows: p.rows ?? null,
          rowsExact: p.exact,
          bytes: p.bytes,
        })),
        null,
        2,
      ),
    );
    return;
  }
  if (stats.length === 0) {
    reporter.print(
      'no partitions (maintenance creates them when tracehouse starts; or run `tracehouse partitions create`)',
    );
    return;
  }
  const rowsText = (rows: number | undefined, exact: boolean): string =>
    rows === undefined ? '?' : `${exact ? '' : '~'}${formatCount(rows)}`;
  reporter.print(
    formatTable(
      ['partition', 'from (UTC)', 'to (UTC)', 'rows', 'size'],
      stats.map((p) => [
        p.name,
        p.fromInclusive.toISOString().replace('.000Z', 'Z'),
        p.toExclusive.toISOString().replace('.000Z', 'Z'),
        rowsText(p.rows, p.exact),
        formatBytes(p.bytes),
      ]),
    ),
  );
  const total = stats.reduce((sum, p) => sum + (p.rows ?? 0), 0);
  reporter.print(
    `${stats.length} partition(s), ${rowsText(total, options.exact)} spans, ${formatBytes(stats.reduce((sum, p) => sum + p.bytes, 0))}` +
      (options.exact ? '' : ' (~: estimates from PostgreSQL statistics; --exact counts)'),
  );
}

/** Runs `fn` under the maintenance lock, retrying for up to waitMs while someone else holds it. */
async function underMaintenanceLock<T>(storage: Storage, waitMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const outcome = await storage.withMaintenanceLock(fn);
    if (outcome.ran) return outcome.result as T;
    if (Date.now() >= deadline) {
      throw new OpsError(
        'partition maintenance or a backup holds the maintenance lock; nothing was changed. Try again when it has finished.',
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

export async function createPartitions(
  storage: Storage,
  options: { aheadDays: number; lockWaitMs: number; now: number },
  reporter: Reporter,
): Promise<void> {
  if (!(options.aheadDays >= 0 && options.aheadDays <= 366)) {
    throw new OpsError('--ahead must be between 0 and 366 days', 2);
  }
  const from = new Date(options.now);
  const to = new Date(options.now + options.aheadDays * MS_PER_DAY);
  const created = await underMaintenanceLock(storage, options.lockWaitMs, () =>
    storage.partitions.ensureRange(from, to),
  );
  reporter.print(
    created.length === 0
      ? `every partition from today to ${options.aheadDays} day(s) ahead already exists`
      : `created ${created.length} partition(s): ${created.join(', ')}`,
  );
}

export async function dropPartitions(
  storage: Storage,
  options: {
    olderThanDays: number;
    dryRun: boolean;
    tenantRetentionDays: Record<string, number> | undefined;
    lockWaitMs: number;
    now: number;
  },
  reporter: Reporter,
): Promise<void> {
  if (!(Number.isSafeInteger(options.olderThanDays) && options.olderThanDays >= 1)) {
    throw new OpsError('--older-than-days must be a whole number of days, at least 1', 2);
  }
  const cutoff = new Date(options.now - options.olderThanDays * MS_PER_DAY);
  const tenants = Object.entries(options.tenantRetentionDays ?? {}).filter(([, days]) => days < options.olderThanDays);
  const doomed = (await storage.partitions.stats({ exact: options.dryRun })).filter(
    (p) => p.toExclusive.getTime() <= cutoff.getTime(),
  );
  const verb = options.dryRun ? 'would drop' : 'dropping';
  reporter.print(
    doomed.length === 0
      ? `no partition ends before ${cutoff.toISOString()} (${options.olderThanDays} days ago)`
      : `${verb} ${doomed.length} partition(s) that end before ${cutoff.toISOString()} (${options.olderThanDays} days ago):\n` +
          formatTable(
            ['partition', 'rows', 'size'],
            doomed.map((p) => [p.name, p.rows ?? 0, formatBytes(p.bytes)]),
          ),
  );
  if (options.dryRun) {
    for (const [tenant, days] of tenants) {
      const n = await storage.partitions.deleteTenantBefore(tenant, new Date(options.now - days * MS_PER_DAY), {
        dryRun: true,
        skipEndingBy: cutoff,
      });
      reporter.print(
        `would delete ${formatCount(n)} spans of tenant ${tenant} in the partitions that stay (keeps ${days} days, TENANT_RETENTION_DAYS)`,
      );
    }
    reporter.print('dry run: nothing was changed');
    return;
  }
  const result = await underMaintenanceLock(storage, options.lockWaitMs, async () => {
    const dropped = await storage.partitions.dropBefore(cutoff);
    const deleted: Array<[string, number, number]> = [];
    for (const [tenant, days] of tenants) {
      deleted.push([
        tenant,
        days,
        await storage.partitions.deleteTenantBefore(tenant, new Date(options.now - days * MS_PER_DAY)),
      ]);
    }
    return { dropped, deleted };
  });
  reporter.print(
    `dropped ${result.dropped.length} partition(s)${result.dropped.length ? `: ${result.dropped.join(', ')}` : ''}; ` +
      'trace summaries and catalog rows past the cutoff removed',
  );
  for (const [tenant, days, n] of result.deleted) {
    reporter.print(
      `deleted ${formatCount(n)} spans of tenant ${tenant} older than ${days} days (TENANT_RETENTION_DAYS)`,
    );
  }
}
