/**
 * Catalog row 11: PostgreSQL refuses writes while it stays reachable, as far as that can be
 * simulated on one machine without touching anything shared.
 *
 * - Disk full: the span partitions the clients write to are moved to a tablespace on a small tmpfs
 *   mounted for the scenario (we run as root); once it fills, every write fails with SQLSTATE
 *   53100 (could not extend file: No space left on device). The fault clears by growing the tmpfs
 *   (`mount -o remount,size=…`), as an operator freeing space would. The mount is removed at the end.
 * - Read-only: the database's default_transaction_read_only is turned on and tracehouse's sessions
 *   are ended (their replacements are read-only, as after a failover to a replica), then off again.
 *
 * Promised: only retryable answers (503 + Retry-After), the failures counted as storage errors,
 * the alert expressions of deploy/prometheus/rules move, the process stays up (no crash loop), and
 * ingest resumes by itself when the fault clears, with nothing acknowledged lost or duplicated.
 */
import { execFileSync } from 'node:child_process';
import { statfsSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { postgresOsUser } from '../../../server/storage/embedded.js';
import { dayOf, partitionName } from '../../../server/storage/partitions.js';
import { readyStatus } from '../../../test/helpers/otlp-load.js';
import { sleep } from '../harness.js';
import { ingestUnderFault, waitFor, type FaultRun } from '../ingest-under-fault.js';
import { setReadOnly, withAdmin } from '../postgres-admin.js';
import type { Scenario, ScenarioContext } from '../scenario.js';
import { probeStatus, scrapeMetrics, type MetricsSnapshot } from '../server-probe.js';

const TABLESPACE = 'th_faults_tiny';
/** Room left on the tmpfs beyond what the partitions already use when they move there. */
const HEADROOM_MB = 3;

/** Holds the fault for `holdMs` once storage errors appear, watching the probes and the alert inputs. */
async function holdFault(run: FaultRun, holdMs: number): Promise<void> {
  const { stack, load, result } = run;
  const before = await scrapeMetrics(stack.url);
  const errorsBefore = before.sum('tracehouse_storage_errors_total');
  const noticedMs = await waitFor(
    async () => (await scrapeMetrics(stack.url)).sum('tracehouse_storage_errors_total') > errorsBefore,
    30_000,
    'storage errors to appear',
  );
  const faultAt = Date.now();
  const ready = new Map<number, number>();
  let healthFailures = 0;
  while (Date.now() - faultAt < holdMs) {
    const status = await readyStatus(stack.url);
    ready.set(status, (ready.get(status) ?? 0) + 1);
    if ((await probeStatus(stack.url, '/health')) !== 200) healthFailures += 1;
    await sleep(250);
  }
  const after = await scrapeMetrics(stack.url);
  const refused = load.attempts.filter((a) => a.status === 503 && a.startedAt >= faultAt).length;
  result.check(refused > 0, 'no request was refused with 503 during the fault');
  result.check(healthFailures === 0, `/health failed ${healthFailures} times during the fault`);
  result.figure('storage errors appeared after (s)', noticedMs / 1000);
  result.figure('fault held (s)', (Date.now() - faultAt) / 1000);
  result.figure('503 answers during the fault', refused);
  result.figure('/ready answers during the fault', [...ready].map(([s, n]) => `${s} ×${n}`).join(', '));
  result.figure('tracehouse_storage_up during the fault', after.sum('tracehouse_storage_up'));
  const exportFailures = exportFailureRatio(before, after);
  result.figure('alert input tracehouse:client_export_failures:ratio (threshold 0.05)', exportFailures);
  result.check(exportFailures > 0.05, `the client-export-failures alert would not fire (ratio ${exportFailures})`);
}

/** The ratio deploy/prometheus/rules/recording.yml records: 429/503 answers to /v1/traces over all of them. */
function exportFailureRatio(before: MetricsSnapshot, after: MetricsSnapshot): number {
  const name = 'tracehouse_http_request_duration_seconds_count';
  const count = (m: MetricsSnapshot, status?: string): number =>
    m.samples
      .filter((s) => s.name === name && s.labels.route === '/v1/traces')
      .filter((s) => status === undefined || s.labels.status_code === status)
      .reduce((sum, s) => sum + s.value, 0);
  const all = count(after) - count(before);
  const failed = count(after, '503') + count(after, '429') - count(before, '503') - count(before, '429');
  return all > 0 ? failed / all : 0;
}

function mountTmpfs(dir: string, sizeMb: number, remount = false): void {
  const options = `${remount ? 'remount,' : ''}size=${sizeMb}m,mode=0700`;
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'pipe' });
}

const diskFull: Scenario = {
  id: 'postgres-disk-full',
  title: 'The tablespace of the span partitions fills up (tmpfs), then space is freed',
  catalogRows: [11],
  run: async (context: ScenarioContext) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'th-faults-tbs-'));
    let mounted = false;
    try {
      mountTmpfs(dir, 64);
      mounted = true;
      const owner = postgresOsUser();
      if (owner) await chown(dir, owner.uid, owner.gid);
      return await ingestUnderFault(diskFull, context, {}, async (run) => {
        const { connectionString } = run.stack.postgres;
        const days = new Set([dayOf(Date.now()), dayOf(Date.now() - 10 * 60_000)]);
        const moved = await withAdmin(connectionString, async (client) => {
          await client.query(`CREATE TABLESPACE ${TABLESPACE} LOCATION '${dir}'`);
          const moved: string[] = [];
          for (const day of days) {
            const table = partitionName(day);
            const exists = await client.query('SELECT to_regclass($1) IS NOT NULL AS found', [table]);
            if (!exists.rows[0].found) continue;
            const { rows } = await client.query<{ index: string }>(
              'SELECT indexrelid::regclass::text AS index FROM pg_index WHERE indrelid = $1::regclass',
              [table],
            );
            await client.query(`ALTER TABLE ${table} SET TABLESPACE ${TABLESPACE}`);
            for (const { index } of rows) await client.query(`ALTER INDEX ${index} SET TABLESPACE ${TABLESPACE}`);
            moved.push(table);
          }
          return moved;
        });
        const stats = statfsSync(dir);
        const sizeMb = Math.ceil(((stats.blocks - stats.bfree) * stats.bsize) / 2 ** 20) + HEADROOM_MB;
        mountTmpfs(dir, sizeMb, true); // shrink: only about HEADROOM_MB left for new rows
        run.log(`partitions ${moved.join(', ')} moved to a tmpfs shrunk to ${sizeMb} MB`);
        run.result.check(moved.length > 0, 'no span partition found to move');
        run.result.figure('tablespace size (MB)', sizeMb);
        await holdFault(run, context.mode === 'full' ? 20_000 : 1500);
        mountTmpfs(dir, 512, true);
        return { clearedAt: Date.now() };
      });
    } finally {
      if (mounted) execFileSync('umount', [dir], { stdio: 'pipe' });
      await rm(dir, { recursive: true, force: true });
    }
  },
};

const readOnly: Scenario = {
  id: 'postgres-read-only',
  title: 'The database turns read-only (default_transaction_read_only, sessions ended), then writable again',
  catalogRows: [11],
  run: (context) =>
    ingestUnderFault(readOnly, context, {}, async (run) => {
      const { connectionString } = run.stack.postgres;
      const database = new URL(connectionString).pathname.slice(1);
      await setReadOnly(connectionString, database, true);
      await holdFault(run, context.mode === 'full' ? 20_000 : 1500);
      await setReadOnly(connectionString, database, false);
      return { clearedAt: Date.now() };
    }),
};

export default [diskFull, readOnly];
