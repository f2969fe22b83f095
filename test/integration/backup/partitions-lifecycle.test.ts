/**
 * `tracehouse partitions list | create | drop` and per-tenant retention (TENANT_RETENTION_DAYS),
 * through the CLI entry and through the maintenance loop: a tenant keeping fewer days than
 * RETENTION_DAYS loses its older spans (and their summaries) inside the partitions that stay;
 * other tenants keep theirs. A dry run changes nothing.
 */
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOpsCommand } from '../../../server/cli-ops.js';
import { DEFAULTS, loadConfig } from '../../../server/config.js';
import { PartitionMaintenance } from '../../../server/ops/maintenance.js';
import { createMetrics } from '../../../server/ops/metrics.js';
import { dayOf, partitionName } from '../../../server/storage/partitions.js';
import { useTestDatabase } from '../../helpers/db.js';
import { readStoredSpans } from '../../helpers/stored-spans.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { captureIo, dayStart, queryOnce, readPartitions, writeSpansAt } from './backup-helpers.js';

const db = useTestDatabase();
let server: TestServer;
const nameOf = (ms: number): string => partitionName(dayOf(ms));

async function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo();
  const code = await runOpsCommand('partitions', args, loadConfig({ DATABASE_URL: db.connectionString, ...env }), io);
  return { code, out: io.out(), err: io.err() };
}

async function spansByTenantAndDay(): Promise<Record<string, number>> {
  const rows = await queryOnce<{ tenant: string; day: string; n: number }>(
    db.connectionString,
    `SELECT tenant, to_char(start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, count(*)::int AS n
       FROM spans GROUP BY 1, 2 ORDER BY 1, 2`,
  );
  return Object.fromEntries(rows.map((row) => [`${row.tenant} ${row.day}`, row.n]));
}

const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

beforeAll(async () => {
  server = await startTestServer(db.connectionString);
  for (const daysAgo of [10, 4, 1]) {
    await writeSpansAt(server.storage, dayStart(daysAgo) + 3_600_000, { traces: 3, perTrace: 4, tenant: 'brief' });
    await writeSpansAt(server.storage, dayStart(daysAgo) + 3_600_000, { traces: 2, perTrace: 4, tenant: 'steady' });
  }
});
afterAll(async () => {
  await server?.close();
});

describe('tracehouse partitions', () => {
  it('lists partitions with rows, sizes and time ranges; creates partitions ahead', async () => {
    const created = await run(['create', '--ahead', '3']);
    expect(created.code, created.err).toBe(0);
    expect(created.out).toContain(nameOf(dayStart(-3)));
    const list = await run(['list', '--exact', '--json']);
    expect(list.code, list.err).toBe(0);
    const parsed = JSON.parse(list.out) as Array<{
      name: string;
      from: string;
      to: string;
      rows: number;
      bytes: number;
    }>;
    const byName = new Map(parsed.map((p) => [p.name, p]));
    expect(byName.get(nameOf(dayStart(10)))).toMatchObject({
      rows: 20,
      from: new Date(dayStart(10)).toISOString(),
      to: new Date(dayStart(9)).toISOString(),
    });
    expect(byName.get(nameOf(dayStart(-3)))?.rows).toBe(0);
    expect(parsed.every((p) => p.bytes > 0)).toBe(true);
    const table = await run(['list']);
    expect(table.out).toMatch(new RegExp(`${nameOf(dayStart(10))}\\s+${iso(dayStart(10))}T00:00:00Z`));
  });

  it('drop --dry-run shows what would go and changes nothing; drop removes it and applies tenant retention', async () => {
    const before = await readPartitions(db.connectionString);
    const dry = await run(['drop', '--older-than-days', '7', '--dry-run'], { TENANT_RETENTION_DAYS: 'brief=2' });
    expect(dry.code, dry.err).toBe(0);
    expect(dry.out).toContain(`would drop 1 partition(s)`);
    expect(dry.out).toContain(nameOf(dayStart(10)));
    expect(dry.out).toContain(
      'would delete 12 spans of tenant brief in the partitions that stay (keeps 2 days, TENANT_RETENTION_DAYS)',
    );
    expect(dry.out).toContain('dry run: nothing was changed');
    expect(await readPartitions(db.connectionString)).toEqual(before);

    const dropped = await run(['drop', '--older-than-days', '7'], { TENANT_RETENTION_DAYS: 'brief=2' });
    expect(dropped.code, dropped.err).toBe(0);
    expect(dropped.out).toContain(`dropped 1 partition(s): ${nameOf(dayStart(10))}`);
    expect(dropped.out).toContain('deleted 12 spans of tenant brief older than 2 days');
    expect(await spansByTenantAndDay()).toEqual({
      [`brief ${iso(dayStart(1))}`]: 12,
      [`steady ${iso(dayStart(4))}`]: 8,
      [`steady ${iso(dayStart(1))}`]: 8,
    });
    const summaries = await queryOnce<{ tenant: string; n: number }>(
      db.connectionString,
      'SELECT tenant, count(*)::int AS n FROM traces GROUP BY 1 ORDER BY 1',
    );
    expect(summaries).toEqual([
      { tenant: 'brief', n: 3 },
      { tenant: 'steady', n: 4 },
    ]);
    expect((await readStoredSpans(db.connectionString)).summaryMismatches).toEqual([]);
  });

  it('refuses bad input with a usage error', async () => {
    expect((await run(['drop', '--older-than-days', '0'])).code).toBe(2);
    expect((await run(['shrink'])).code).toBe(2);
    const bad = await run(['list'], { TENANT_RETENTION_DAYS: 'brief=30' }).catch((err: Error) => err.message);
    expect(String(bad)).toContain('TENANT_RETENTION_DAYS.brief must be between 1 and RETENTION_DAYS (7)');
  });
});

describe('maintenance applies TENANT_RETENTION_DAYS', () => {
  it("deletes a short-retention tenant's older spans inside kept partitions, and nobody else's", async () => {
    await writeSpansAt(server.storage, dayStart(3) + 3_600_000, { traces: 2, perTrace: 5, tenant: 'brief' });
    await writeSpansAt(server.storage, dayStart(3) + 3_600_000, { traces: 2, perTrace: 5, tenant: 'steady' });
    const config = { ...DEFAULTS.storage, retentionDays: 7, tenantRetentionDays: { brief: 2, steady: 7 } };
    const maintenance = new PartitionMaintenance(
      server.storage,
      config,
      createMetrics(new Registry()),
      pino({ level: 'silent' }),
    );
    const result = await maintenance.runOnce();
    expect(result).toMatchObject({ ran: true, tenantSpansDeleted: { brief: 10 } });
    const counts = await spansByTenantAndDay();
    expect(counts[`brief ${iso(dayStart(3))}`]).toBeUndefined();
    expect(counts[`steady ${iso(dayStart(3))}`]).toBe(10);
    expect(counts[`brief ${iso(dayStart(1))}`]).toBe(12);
    expect((await readStoredSpans(db.connectionString)).summaryMismatches).toEqual([]);
  });
});
